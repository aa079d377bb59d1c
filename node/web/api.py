"""The JSON client API under /api/ (documented in docs/api.md)."""

from __future__ import annotations

import re
from typing import Any, Protocol

from aiohttp import web

from node.accounts import AccountError, SignedIn
from node.remote import RemotePeople
from node.rooms.hallway import merge
from node.rooms.model import Room, RoomRuleError
from node.rooms.service import RoomService
from node.settings import Settings
from node.store.users import User
from node.web.http import (
    ACCOUNTS,
    COOKIE,
    USER,
    HttpError,
    client_ip,
    current_session,
    current_user,
    read_json,
)

ROOMS = web.AppKey("rooms", RoomService)
SETTINGS = web.AppKey("settings", Settings)
REMOTE_PEOPLE = web.AppKey("remote_people", RemotePeople)


class HallwayBlocks(Protocol):
    """What blocks and mutes change in a hallway (node/blocks.py)."""

    def hidden_hosts(self, viewer: User) -> set[str]:
        """Handles whose rooms VIEWER's hallway leaves out."""

    def blocked_names(self, viewer: User) -> set[str]:
        """Handles and actor URIs of the people VIEWER blocked."""


HALLWAY_BLOCKS = web.AppKey("hallway_blocks", HallwayBlocks)


class RoomExtras(Protocol):
    """What replays add to rooms (node/replays.py): the view's ``replay``, hallway cards."""

    def room_fields(self, room: Room, viewer: User | None) -> dict[str, Any] | None: ...

    def cards(self, viewer: User) -> list[dict[str, Any]]: ...


class ReplayCards(Protocol):
    """Replay cards of remote rooms (federation/replay_proxy.py)."""

    def cards(self, viewer: User) -> list[dict[str, Any]]: ...


ROOM_EXTRAS = web.AppKey("room_extras", RoomExtras)
REMOTE_REPLAYS = web.AppKey("remote_replays", ReplayCards)
PAGE_SIZE = 50
PAGE_RE = re.compile(r"[0-9]{1,6}")

routes = web.RouteTableDef()


def _signed_in_response(request: web.Request, signed: SignedIn, status: int) -> web.Response:
    accounts = request.app[ACCOUNTS]
    body = {
        "user": {**accounts.profile(signed.user, None), "is_admin": signed.user.is_admin},
        "csrf_token": signed.session.csrf_token,
    }
    response = web.json_response(body, status=status)
    settings = request.app[SETTINGS]
    response.set_cookie(
        COOKIE,
        signed.token,
        max_age=settings.session_days * 86400,
        httponly=True,
        samesite="Lax",
        secure=settings.base_url.startswith("https://"),
        path="/",
    )
    return response


@routes.get("/api/instance")
async def instance(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "name": settings.node_name,
            "url": settings.base_url,
            "software": "salon",
            "open_registration": settings.open_registration,
            "testnet": settings.testnet,
        }
    )


@routes.post("/api/auth/signup")
async def signup(request: web.Request) -> web.Response:
    body = await read_json(request)
    accounts = request.app[ACCOUNTS]
    user = await accounts.signup(body.get("username"), body.get("password"), client_ip(request))
    return _signed_in_response(request, accounts.open_session(user, "cookie"), 201)


@routes.post("/api/auth/signin")
async def signin(request: web.Request) -> web.Response:
    body = await read_json(request)
    accounts = request.app[ACCOUNTS]
    signed = await accounts.signin(
        body.get("username"), body.get("password"), client_ip(request), "cookie"
    )
    return _signed_in_response(request, signed, 200)


@routes.post("/api/auth/token")
async def create_token(request: web.Request) -> web.Response:
    """A bearer token for bots and scripts (no cookie, no CSRF token needed)."""
    body = await read_json(request)
    accounts = request.app[ACCOUNTS]
    label = body.get("label", "")
    if not isinstance(label, str) or len(label) > 100:
        raise AccountError("invalid", "label must be a string of at most 100 characters")
    signed = await accounts.signin(
        body.get("username"), body.get("password"), client_ip(request), "bearer", label
    )
    return web.json_response(
        {"token": signed.token, "user": accounts.profile(signed.user, None)}, status=201
    )


@routes.post("/api/auth/signout")
async def signout(request: web.Request) -> web.Response:
    request.app[ACCOUNTS].signout(current_session(request))
    response = web.json_response({"signed_out": True})
    response.del_cookie(COOKIE, path="/")
    return response


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    user = current_user(request)
    data = request.app[ACCOUNTS].profile(user, None)
    data["csrf_token"] = current_session(request).csrf_token
    data["is_admin"] = user.is_admin  # the web client links the moderation desk for admins
    return web.json_response(data)


@routes.patch("/api/me")
async def edit_me(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await read_json(request)
    accounts = request.app[ACCOUNTS]
    updated = accounts.update_profile(user, body)
    return web.json_response(accounts.profile(updated, None))


@routes.get("/api/users/{name}")
async def profile(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    name = request.match_info["name"]
    viewer = request[USER]
    # Signed-in people may name someone we have not met yet (bob@host): found via WebFinger.
    user = await resolve(request, name) if viewer is not None else accounts.by_name(name)
    return web.json_response(accounts.profile(user, viewer))


def _page(request: web.Request) -> int:
    raw = request.query.get("page", "1")
    if not PAGE_RE.fullmatch(raw) or int(raw) < 1:
        raise HttpError(400, "page must be a positive integer")
    return int(raw)


async def _follow_list(request: web.Request, direction: str) -> web.Response:
    accounts = request.app[ACCOUNTS]
    user = accounts.by_name(request.match_info["name"])
    page = _page(request)
    rows = accounts.follows.page(
        user.id, direction, "accepted", PAGE_SIZE + 1, (page - 1) * PAGE_SIZE
    )
    users = accounts.users.many([uid for uid, _ in rows[:PAGE_SIZE]])
    items = [accounts.profile(users[uid], None) for uid, _ in rows[:PAGE_SIZE] if uid in users]
    return web.json_response(
        {"items": items, "page": page, "next_page": page + 1 if len(rows) > PAGE_SIZE else None}
    )


@routes.get("/api/users/{name}/followers")
async def followers(request: web.Request) -> web.Response:
    return await _follow_list(request, "followers")


@routes.get("/api/users/{name}/following")
async def following(request: web.Request) -> web.Response:
    return await _follow_list(request, "following")


async def resolve(request: web.Request, name: str) -> User:
    """A local user, a known remote one, or (``bob@host``) one found through WebFinger."""
    accounts = request.app[ACCOUNTS]
    try:
        return accounts.by_name(name)
    except AccountError:
        people = request.app.get(REMOTE_PEOPLE)
        if people is None or "@" not in name.lstrip("@"):
            raise
    return await people.lookup(name)


@routes.get("/api/lookup")
async def lookup(request: web.Request) -> web.Response:
    """``?acct=@bob@host``: the profile of a local or remote user (WebFinger for remotes)."""
    viewer = current_user(request)
    acct = request.query.get("acct", "").strip()
    if not acct:
        raise HttpError(400, "the acct parameter is required")
    user = await resolve(request, acct)
    return web.json_response(request.app[ACCOUNTS].profile(user, viewer))


@routes.post("/api/users/{name}/follow")
async def follow(request: web.Request) -> web.Response:
    user = current_user(request)
    accounts = request.app[ACCOUNTS]
    target = await resolve(request, request.match_info["name"])
    state = accounts.follow(user, target)
    return web.json_response({"state": state, "user": accounts.profile(target, user)})


@routes.delete("/api/users/{name}/follow")
async def unfollow(request: web.Request) -> web.Response:
    user = current_user(request)
    accounts = request.app[ACCOUNTS]
    target = accounts.by_name(request.match_info["name"])
    if not accounts.unfollow(user, target):
        raise AccountError("not_found", "you do not follow that user")
    return web.json_response({"state": None, "user": accounts.profile(target, user)})


@routes.get("/api/me/follow-requests")
async def follow_requests(request: web.Request) -> web.Response:
    user = current_user(request)
    accounts = request.app[ACCOUNTS]
    rows = accounts.follows.page(user.id, "followers", "pending", PAGE_SIZE, 0)
    users = accounts.users.many([uid for uid, _ in rows])
    return web.json_response({"items": [accounts.profile(users[uid], user) for uid, _ in rows]})


@routes.post("/api/me/follow-requests/{name}/{decision}")
async def decide_follow(request: web.Request) -> web.Response:
    user = current_user(request)
    accounts = request.app[ACCOUNTS]
    follower = accounts.by_name(request.match_info["name"])
    decision = request.match_info["decision"]
    if decision == "approve":
        accounts.approve(user, follower)
    elif decision == "reject":
        accounts.reject(user, follower)
    else:
        raise AccountError("not_found", "decision must be approve or reject")
    return web.json_response({"decision": decision})


@routes.get("/api/hallway")
async def hallway(request: web.Request) -> web.Response:
    user = current_user(request)
    rooms = request.app[ROOMS]
    cards = [rooms.card(r, user) for r in rooms.hallway(user)]
    people = request.app.get(REMOTE_PEOPLE)
    if people is not None:
        cards = merge(cards, people.remote_cards(user))
    blocks = request.app[HALLWAY_BLOCKS]
    hidden, blocked = blocks.hidden_hosts(user), blocks.blocked_names(user)
    shown = [card.to_json() for card in cards if card.host not in hidden]
    for data in shown:  # local cards carry it from the room view; remote ones get it here
        data.setdefault(
            "blocked_on_stage", [s["user"] for s in data["speakers"] if s["user"] in blocked]
        )
    body: dict[str, Any] = {"rooms": shown}
    extras = request.app.get(ROOM_EXTRAS)
    if extras is not None:
        replays = extras.cards(user)
        remote = request.app.get(REMOTE_REPLAYS)
        if remote is not None:
            replays += remote.cards(user)
        body["replays"] = [card for card in replays if card.get("host") not in hidden]
    return web.json_response(body)


@routes.post("/api/rooms")
async def create_room(request: web.Request) -> web.Response:
    user = current_user(request)
    rooms = request.app[ROOMS]
    draft = rooms.parse_draft(await read_json(request))
    room = rooms.create(user, draft)
    return web.json_response(rooms.view(room, user), status=201)


@routes.get("/api/rooms/{id}")
async def get_room(request: web.Request) -> web.Response:
    rooms = request.app[ROOMS]
    room = rooms.get(request.match_info["id"])
    data = rooms.view(room, request[USER])
    extras = request.app.get(ROOM_EXTRAS)
    replay = extras.room_fields(room, request[USER]) if extras is not None else None
    if replay is not None:
        data["replay"] = replay
    return web.json_response(data)


@routes.patch("/api/rooms/{id}")
async def edit_room(request: web.Request) -> web.Response:
    user = current_user(request)
    rooms = request.app[ROOMS]
    body = await read_json(request)
    room = rooms.update_details(request.match_info["id"], user, body)
    return web.json_response(rooms.view(room, user))


@routes.post("/api/rooms/{id}/join")
async def join_room(request: web.Request) -> web.Response:
    user = current_user(request)
    rooms = request.app[ROOMS]
    body = await read_json(request, required=False)
    token = body.get("invite_token")
    if token is not None and not isinstance(token, str):
        raise RoomRuleError("invalid", "invite_token must be a string")
    room = rooms.join(request.match_info["id"], user, token)
    return web.json_response(rooms.view(room, user))


@routes.post("/api/rooms/{id}/{action}")
async def room_action(request: web.Request) -> web.Response:
    user = current_user(request)
    rooms = request.app[ROOMS]
    action = request.match_info["action"]
    body: dict[str, Any] = await read_json(request, required=False)
    target = body.get("user")
    if target is not None and not isinstance(target, str):
        raise RoomRuleError("invalid", "user must be a username string")
    room = rooms.act(request.match_info["id"], user, action, target)
    return web.json_response(rooms.view(room, user))
