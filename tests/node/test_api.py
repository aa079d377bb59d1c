"""The client API through real HTTP: happy paths and bad input for every endpoint family."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.nodes import Node, NodeFactory


def soon_iso() -> str:
    return datetime.fromtimestamp(time.time() + 86400, UTC).isoformat()


async def test_signup_signin_me_signout(node: Node) -> None:
    alice = await node.user("alice")
    status, me = await alice.call("GET", "/api/me")
    assert status == 200 and me["username"] == "alice"
    status, _ = await alice.call("POST", "/api/auth/signout")
    assert status == 200
    status, body = await alice.call("GET", "/api/me")
    assert status == 401 and body == {"error": "sign in first"}
    status, body = await alice.signin("alice", "wrong-password")
    assert status == 401 and body["error"] == "wrong username or password"
    status, _ = await alice.signin("alice")
    assert status == 200


async def test_session_cookie_is_httponly_and_samesite(node: Node) -> None:
    client = await node.user()
    async with client.http.post(
        node.url + "/api/auth/signup", json={"username": "carol", "password": "password123"}
    ) as resp:
        assert resp.status == 201
        cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"username": "Bad Name", "password": "password123"}, 400, "username must be"),
        ({"username": "x" * 31, "password": "password123"}, 400, "username must be"),
        ({"username": "ok", "password": "short"}, 400, "password must be"),
        ({"username": 5, "password": "password123"}, 400, "username must be"),
        ({"username": "alice", "password": "password123"}, 409, "is taken"),
        ([1, 2], 400, "must be a JSON object"),
    ],
)
async def test_signup_bad_input(node: Node, body: Any, status: int, message: str) -> None:
    await node.user("alice")
    client = await node.user()
    got, err = await client.call("POST", "/api/auth/signup", body)
    assert got == status and message in err["error"]
    admin = await node.user()
    # nothing half-written: only alice exists
    assert (await admin.call("GET", "/api/users/ok"))[0] == 404


async def test_malformed_json_and_wrong_content_type(node: Node) -> None:
    client = await node.user()
    async with client.http.post(
        node.url + "/api/auth/signin", data=b"{nope", headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"].startswith("malformed JSON")
    async with client.http.post(
        node.url + "/api/auth/signin", data=b"username=a", headers={"Content-Type": "text/plain"}
    ) as resp:
        assert resp.status == 415


async def test_oversized_body_is_413(node: Node) -> None:
    alice = await node.user("alice")
    status, body = await alice.call("POST", "/api/rooms", {"title": "x" * 70_000})
    assert status == 413 and body == {"error": "request body too large"}
    async with alice.http.post(
        node.url + "/api/rooms", data=b"x" * 2_000_000, headers={"X-CSRF-Token": alice.csrf}
    ) as resp:
        assert resp.status == 413
    assert (await alice.call("GET", "/api/hallway"))[1]["rooms"] == []


async def test_csrf_required_for_cookie_writes_but_not_bearer(node: Node) -> None:
    alice = await node.user("alice")
    alice.csrf = "forged"
    status, body = await alice.call("POST", "/api/rooms", {"title": "x"})
    assert status == 403 and "X-CSRF-Token" in body["error"]
    bot = await node.user()
    status, tok = await bot.call(
        "POST", "/api/auth/token", {"username": "alice", "password": "password123"}
    )
    assert status == 201
    status, room = await bot.call(
        "POST",
        "/api/rooms",
        {"title": "bot room"},
        headers={"Authorization": f"Bearer {tok['token']}"},
    )
    assert status == 201 and room["host"] == "alice"
    status, body = await bot.call("GET", "/api/me", headers={"Authorization": "Bearer nope"})
    assert status == 401


async def test_signin_rate_limited_per_account(node_factory: NodeFactory) -> None:
    node = await node_factory(signin_attempts=3)
    await node.user("alice")
    client = await node.user()
    for _ in range(3):
        assert (await client.signin("alice", "wrong-password"))[0] == 401
    status, body = await client.signin("alice", "password123")
    assert status == 429 and "too many" in body["error"]


async def test_registration_can_be_closed(node_factory: NodeFactory) -> None:
    node = await node_factory(open_registration=False)
    client = await node.user()
    status, body = await client.call(
        "POST", "/api/auth/signup", {"username": "eve", "password": "password123"}
    )
    assert status == 403 and body["error"] == "registration is closed on this node"


async def test_profile_edit(node: Node) -> None:
    alice = await node.user("alice")
    status, me = await alice.call("PATCH", "/api/me", {"display_name": "Alice A.", "bio": "hi"})
    assert status == 200 and me["display_name"] == "Alice A." and me["bio"] == "hi"
    for bad in ({"display_name": 3}, {"bio": "x" * 3000}, {"admin": True}, {"locked": "yes"}):
        status, _body = await alice.call("PATCH", "/api/me", bad)
        assert status == 400, bad
    assert (await alice.call("GET", "/api/users/alice"))[1]["display_name"] == "Alice A."


async def test_follow_unfollow_counts_and_locked_accounts(node: Node) -> None:
    alice = await node.user("alice")
    bob = await node.user("bob")
    status, body = await bob.call("POST", "/api/users/alice/follow")
    assert status == 200 and body["state"] == "accepted"
    assert body["user"]["followers_count"] == 1
    status, page = await alice.call("GET", "/api/users/alice/followers")
    assert [u["username"] for u in page["items"]] == ["bob"]
    assert (await bob.call("DELETE", "/api/users/alice/follow"))[0] == 200
    assert (await bob.call("DELETE", "/api/users/alice/follow"))[0] == 404
    await alice.call("PATCH", "/api/me", {"locked": True})
    status, body = await bob.call("POST", "/api/users/alice/follow")
    assert body["state"] == "pending" and body["user"]["followers_count"] == 0
    status, reqs = await alice.call("GET", "/api/me/follow-requests")
    assert [u["username"] for u in reqs["items"]] == ["bob"]
    assert (await alice.call("POST", "/api/me/follow-requests/bob/approve"))[0] == 200
    assert (await alice.call("GET", "/api/users/alice"))[1]["followers_count"] == 1
    assert (await bob.call("POST", "/api/users/bob/follow"))[0] == 400
    assert (await bob.call("POST", "/api/users/nobody/follow"))[0] == 404
    assert (await bob.call("GET", "/api/users/alice/followers?page=0"))[0] == 400


async def test_room_create_validation(node: Node) -> None:
    alice = await node.user("alice")
    for bad, message in (
        ({}, "title is required"),
        ({"title": "  "}, "title is required"),
        ({"title": 5}, "title is required"),
        ({"title": "t", "join_mode": "secret"}, "join_mode must be"),
        ({"title": "t", "start_time": "tomorrow"}, "ISO 8601"),
        ({"title": "t", "start_time": "2020-01-01T00:00:00Z"}, "in the past"),
        ({"title": "t", "start_time": "2030-01-01T00:00:00"}, "time zone"),
        ({"title": "t", "colour": "red"}, "unknown field"),
    ):
        status, body = await alice.call("POST", "/api/rooms", bad)
        assert status == 400 and message in body["error"], (bad, body)
    assert (await alice.call("GET", "/api/hallway"))[1]["rooms"] == []
    assert (await alice.call("GET", "/api/rooms/nope"))[0] == 404


async def test_room_actions_over_http(node: Node) -> None:
    alice = await node.user("alice")
    bob = await node.user("bob")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Talk", "description": "d"})
    rid = room["id"]
    assert (await alice.call("POST", f"/api/rooms/{rid}/join"))[0] == 200
    assert (await bob.call("POST", f"/api/rooms/{rid}/join"))[0] == 200
    status, view = await bob.call("POST", f"/api/rooms/{rid}/raise_hand")
    assert status == 200 and view["hands"] == ["bob"]
    # a listener may not mute or remove anyone
    status, body = await bob.call("POST", f"/api/rooms/{rid}/mute", {"user": "alice"})
    assert status == 403 and body["error"] == "only the host and moderators can mute others"
    assert (await bob.call("POST", f"/api/rooms/{rid}/remove", {"user": "alice"}))[0] == 403
    assert (await alice.call("POST", f"/api/rooms/{rid}/invite_to_speak", {"user": "bob"}))[
        0
    ] == 200
    status, view = await bob.call("POST", f"/api/rooms/{rid}/accept_invite")
    assert [s["user"] for s in view["speakers"]] == ["alice", "bob"]
    assert (await alice.call("POST", f"/api/rooms/{rid}/mute", {"user": "bob"}))[0] == 200
    status, body = await bob.call("POST", f"/api/rooms/{rid}/unmute")
    assert status == 403
    assert (await alice.call("POST", f"/api/rooms/{rid}/remove", {"user": "bob"}))[0] == 200
    status, body = await bob.call("POST", f"/api/rooms/{rid}/join")
    assert status == 403 and body["error"] == "you were removed from this room"
    # bad input for room actions
    assert (await alice.call("POST", f"/api/rooms/{rid}/dance"))[0] == 404
    assert (await alice.call("POST", f"/api/rooms/{rid}/remove", {"user": 7}))[0] == 400
    assert (await alice.call("POST", f"/api/rooms/{rid}/remove"))[0] == 400
    assert (await alice.call("POST", f"/api/rooms/{rid}/remove", {"user": "ghost"}))[0] == 404
    assert (await alice.call("POST", "/api/rooms/missing/raise_hand"))[0] == 404
    status, view = await alice.call("POST", f"/api/rooms/{rid}/end")
    assert status == 200 and view["status"] == "ended"
    assert (await alice.call("POST", f"/api/rooms/{rid}/end"))[0] == 409


async def test_social_and_closed_rooms(node: Node) -> None:
    alice = await node.user("alice")
    bob = await node.user("bob")
    carol = await node.user("carol")
    await alice.call("POST", "/api/users/bob/follow")
    _, social = await alice.call("POST", "/api/rooms", {"title": "S", "join_mode": "social"})
    assert (await bob.call("POST", f"/api/rooms/{social['id']}/join"))[0] == 200
    status, body = await carol.call("POST", f"/api/rooms/{social['id']}/join")
    assert status == 403 and "social room" in body["error"]
    _, closed = await alice.call("POST", "/api/rooms", {"title": "C", "join_mode": "closed"})
    token = closed["invite_link"].split("invite=")[1]
    assert (await carol.call("POST", f"/api/rooms/{closed['id']}/join"))[0] == 403
    status, _ = await carol.call("POST", f"/api/rooms/{closed['id']}/join", {"invite_token": token})
    assert status == 200
    assert (await alice.call("POST", f"/api/rooms/{closed['id']}/invite", {"user": "bob"}))[
        0
    ] == 200
    assert (await bob.call("POST", f"/api/rooms/{closed['id']}/join"))[0] == 200
    # invite links are only shown to moderators
    assert "invite_link" not in (await bob.call("GET", f"/api/rooms/{closed['id']}"))[1]


async def test_hallway_ranks_followed_first_and_scheduled_after(node: Node) -> None:
    alice = await node.user("alice")
    bob = await node.user("bob")
    viewer = await node.user("viewer")
    await viewer.call("POST", "/api/users/bob/follow")
    _, a = await alice.call("POST", "/api/rooms", {"title": "Alice live"})
    _, b = await bob.call("POST", "/api/rooms", {"title": "Bob live"})
    _, s = await alice.call("POST", "/api/rooms", {"title": "Later", "start_time": soon_iso()})
    assert s["status"] == "scheduled"
    for i in range(2):
        extra = await node.user(f"fan{i}")
        await extra.call("POST", f"/api/rooms/{a['id']}/join")
    _status, hall = await viewer.call("GET", "/api/hallway")
    assert [r["title"] for r in hall["rooms"]] == ["Bob live", "Alice live", "Later"]
    assert hall["rooms"][1]["listener_count"] == 2
    assert (await viewer.call("GET", "/api/rooms/" + b["id"]))[1]["host"] == "bob"


async def test_scheduled_room_start(node: Node) -> None:
    alice = await node.user("alice")
    bob = await node.user("bob")
    _, s = await alice.call(
        "POST", "/api/rooms", {"title": "Later", "start_time": time.time() + 3600}
    )
    status, body = await bob.call("POST", f"/api/rooms/{s['id']}/join")
    assert status == 409 and body["error"] == "the room has not started yet"
    assert (await bob.call("POST", f"/api/rooms/{s['id']}/start"))[0] == 403
    status, view = await alice.call("POST", f"/api/rooms/{s['id']}/start")
    assert status == 200 and view["status"] == "live"
    assert (await bob.call("POST", f"/api/rooms/{s['id']}/join"))[0] == 200


async def test_pages_and_instance(node: Node) -> None:
    client = await node.user()
    status, text = await client.call("GET", "/")
    assert status == 200 and "<html" in text.lower()
    status, info = await client.call("GET", "/api/instance")
    assert info["software"] == "salon" and info["url"] == node.url


async def test_hostile_values_are_4xx_not_500(node: Node) -> None:
    alice = await node.user("alice")
    for page in ("²", "99999999999999999999", "-1"):
        assert (await alice.call("GET", f"/api/users/alice/followers?page={page}"))[0] == 400
    status, body = await alice.call(
        "POST", "/api/rooms", {"title": "t", "start_time": float("nan")}
    )
    assert status == 400 and "finite" in body["error"]
    _, room = await alice.call("POST", "/api/rooms", {"title": "C", "join_mode": "closed"})
    bob = await node.user("bob")
    status, _ = await bob.call("POST", f"/api/rooms/{room['id']}/join", {"invite_token": "ünï"})
    assert status == 403
    async with alice.http.post(
        node.url + "/api/rooms",
        json={"title": "x"},
        headers={"X-CSRF-Token": "ünï".encode().decode("latin-1")},
    ) as resp:
        assert resp.status == 403
    status, body = await alice.call("POST", f"/api/rooms/{room['id']}/raise_hand", {"user": "bob"})
    assert status == 400 and body["error"] == "raise_hand takes no 'user'"


async def test_rest_join_holds_a_disconnected_seat(node: Node) -> None:
    alice = await node.user("alice")
    _, room = await alice.call("POST", "/api/rooms", {"title": "R"})
    _, view = await alice.call("POST", f"/api/rooms/{room['id']}/join")
    assert view["you"]["connected"] is False
