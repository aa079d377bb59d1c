"""ActivityPub and discovery endpoints (docs/federation.md): WebFinger, NodeInfo, actors,
collections, inboxes, and the AS2 form of ``/rooms/{id}``."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from federation.actors import parse_acct
from federation.as2 import ActivityError, host_of
from federation.fetch import AS2_MEDIA_TYPE
from federation.inbox import SignatureRejected
from federation.service import FEDERATION, Federation
from node.rooms.model import JoinMode, RoomRuleError
from node.rooms.service import RoomService
from node.store.users import User

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
PAGE_SIZE = 50
NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def wants_as2(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "").lower()
    return AS2_MEDIA_TYPE in accept or (
        "application/ld+json" in accept and "activitystreams" in accept
    )


def as2(document: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(document).encode("utf-8"),
        status=status,
        content_type=AS2_MEDIA_TYPE,
        headers={"Vary": "Accept"},
    )


def problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _authorized(request: web.Request, fed: Federation) -> web.Response | None:
    """With authorized fetch on, AS2 documents go only to signed GETs (Mastodon's option)."""
    if not fed.settings.authorized_fetch:
        return None
    signed = fed.signed.request("GET", request.raw_path, request.headers.items(), b"")
    try:
        actor = await fed.signed.actor(signed, None)
    except SignatureRejected as exc:
        return problem(401, f"authorized fetch: {exc}")
    if fed.policies.refused(host_of(actor.id)):
        return problem(403, "this node does not federate with your domain")
    return None


def _local_user(fed: Federation, name: str) -> User:
    user = fed.users.by_name(name)
    if user is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no user named {name!r}"}), content_type="application/json"
        )
    return user


# ---- discovery -----------------------------------------------------------------------
@routes.get("/.well-known/webfinger")
async def webfinger(request: web.Request) -> web.Response:
    fed = request.app[FEDERATION]
    urls = fed.urls
    resource = request.query.get("resource", "").strip()
    if not resource:
        return problem(400, "the resource parameter is required")
    if resource.startswith(("http://", "https://")):
        name = urls.username_of(resource)
        if resource == urls.node_actor:
            name = urls.host
    else:
        try:
            name, host = parse_acct(resource)
        except ActivityError as exc:
            return problem(400, str(exc))
        if host != urls.host.lower():
            return problem(404, f"{host} is not this node")
    if name == urls.host:
        subject, href = f"acct:{urls.host}@{urls.host}", urls.node_actor
    else:
        user = fed.users.by_name(name) if name else None
        if user is None:
            return problem(404, "no such user")
        subject, href = f"acct:{user.username}@{urls.host}", urls.actor(user.username)
    body = {
        "subject": subject,
        "aliases": [href],
        "links": [
            {"rel": "self", "type": AS2_MEDIA_TYPE, "href": href},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": href},
        ],
    }
    return web.Response(
        body=json.dumps(body).encode("utf-8"),
        content_type="application/jrd+json",
        headers={"Access-Control-Allow-Origin": "*"},
    )


@routes.get("/.well-known/nodeinfo")
async def nodeinfo_links(request: web.Request) -> web.Response:
    base = request.app[FEDERATION].urls.base
    return web.json_response({"links": [{"rel": NODEINFO_SCHEMA, "href": f"{base}/nodeinfo/2.1"}]})


@routes.get("/nodeinfo/2.1")
async def nodeinfo(request: web.Request) -> web.Response:
    fed = request.app[FEDERATION]
    users = fed.users.count_local()
    body = {
        "version": "2.1",
        "software": {
            "name": "salon",
            "version": "0.1.0",
            "repository": "https://w3id.org/salon",
            "homepage": fed.urls.base,
        },
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": fed.settings.open_registration,
        "usage": {"users": {"total": users}, "localPosts": 0},
        "metadata": {"nodeName": fed.settings.node_name},
    }
    return web.Response(
        body=json.dumps(body).encode("utf-8"),
        content_type="application/json",
        headers={"Content-Profile": f"{NODEINFO_SCHEMA}#"},
    )


# ---- actors and collections -------------------------------------------------------------
@routes.get("/actor")
async def application_actor(request: web.Request) -> web.Response:
    """Never behind authorized fetch: peers need it to verify our signed fetches."""
    return as2(request.app[FEDERATION].documents.node().serialize())


@routes.get("/users/{name}")
async def person(request: web.Request) -> web.StreamResponse:
    fed = request.app[FEDERATION]
    user = _local_user(fed, request.match_info["name"])
    if user.suspended:
        return problem(410, "this account is suspended")
    if not wants_as2(request):
        # Browsers go to the web client's profile page (node/web/pages.py).
        raise web.HTTPFound(f"/@{user.username}", headers={"Vary": "Accept"})
    denied = await _authorized(request, fed)
    return denied or as2(fed.documents.local(user).serialize())


async def _collection(request: web.Request, direction: str) -> web.Response:
    fed = request.app[FEDERATION]
    user = _local_user(fed, request.match_info["name"])
    denied = await _authorized(request, fed)
    if denied:
        return denied
    collection_id = f"{fed.urls.actor(user.username)}/{direction}"
    followers, following = fed.follows.counts(user.id)
    total = followers if direction == "followers" else following
    page_raw = request.query.get("page")
    if page_raw is None:
        return as2(_ordered(collection_id, total))
    if not page_raw.isdigit() or int(page_raw) < 1:
        return problem(400, "page must be a positive integer")
    page = int(page_raw)
    rows = fed.follows.page(user.id, direction, "accepted", PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
    users = fed.users.many([uid for uid, _ in rows[:PAGE_SIZE]])
    items = [fed.directory.actor_uri(users[uid]) for uid, _ in rows[:PAGE_SIZE] if uid in users]
    return as2(_page(collection_id, page, items, len(rows) > PAGE_SIZE))


def _ordered(collection_id: str, total: int) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total,
        "first": f"{collection_id}?page=1",
    }


def _page(collection_id: str, page: int, items: list[Any], more: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{collection_id}?page={page}",
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "orderedItems": items,
    }
    if more:
        out["next"] = f"{collection_id}?page={page + 1}"
    if page > 1:
        out["prev"] = f"{collection_id}?page={page - 1}"
    return out


@routes.get("/users/{name}/followers")
async def followers_collection(request: web.Request) -> web.Response:
    return await _collection(request, "followers")


@routes.get("/users/{name}/following")
async def following_collection(request: web.Request) -> web.Response:
    return await _collection(request, "following")


@routes.get("/users/{name}/outbox")
async def outbox_collection(request: web.Request) -> web.Response:
    fed = request.app[FEDERATION]
    user = _local_user(fed, request.match_info["name"])
    denied = await _authorized(request, fed)
    if denied:
        return denied
    collection_id = f"{fed.urls.actor(user.username)}/outbox"
    page_raw = request.query.get("page")
    if page_raw is None:
        return as2(_ordered(collection_id, fed.deliveries.outbox_count(user.id)))
    if not page_raw.isdigit() or int(page_raw) < 1:
        return problem(400, "page must be a positive integer")
    page = int(page_raw)
    items = fed.deliveries.outbox(user.id, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
    for item in items:
        item.pop("@context", None)
    return as2(_page(collection_id, page, items[:PAGE_SIZE], len(items) > PAGE_SIZE))


# ---- inboxes ---------------------------------------------------------------------------
async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _receive(request: web.Request) -> web.Response:
    fed = request.app[FEDERATION]
    body = await _read_capped(request, fed.settings.max_body_bytes)
    if body is None:
        fed.inbox.outcomes.refuse("too_large")
        return problem(413, "request body too large")
    signed = fed.signed.request("POST", request.raw_path, request.headers.items(), body)
    result = await fed.inbox.receive(signed)
    if result.status == 202:
        return web.json_response({"status": result.message}, status=202)
    return problem(result.status, result.message)


@routes.post("/inbox")
async def shared_inbox(request: web.Request) -> web.Response:
    return await _receive(request)


@routes.post("/users/{name}/inbox")
async def personal_inbox(request: web.Request) -> web.Response:
    _local_user(request.app[FEDERATION], request.match_info["name"])
    return await _receive(request)


# ---- rooms as AS2 Events ------------------------------------------------------------------
def rooms_middleware(rooms: RoomService) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Serve ``/rooms/{id}`` as an AS2 ``Event`` to ActivityPub clients; browsers fall
    through to the HTML room page, which another module owns."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if request.method != "GET" or not path.startswith("/rooms/") or not wants_as2(request):
            return await handler(request)
        room_id = path[len("/rooms/") :]
        if not room_id or "/" in room_id:
            return await handler(request)
        fed = request.app[FEDERATION]
        denied = await _authorized(request, fed)
        if denied:
            return denied
        try:
            room = rooms.get(room_id)
        except RoomRuleError:
            return problem(404, "no such room")
        host = fed.users.get(room.host_id)
        if host is None or room.join_mode is JoinMode.CLOSED:
            return problem(404, "no such room")
        event = fed.room_documents.event(room, host)
        return as2(event.serialize())

    return middleware
