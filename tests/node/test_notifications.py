"""Notifications on one real node: room starts, stage invitations, moderators, pings,
the REST API, the per-user socket, bounds and deduplication."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from cli.app import NODE
from tests.support.nodes import ApiUser, Node, NodeFactory

pytestmark = pytest.mark.timeout(60)


async def notes(user: ApiUser, **query: Any) -> dict[str, Any]:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    status, body = await user.call("GET", "/api/notifications" + (f"?{params}" if params else ""))
    assert status == 200, body
    return dict(body)


async def kinds(user: ApiUser) -> list[str]:
    return [n["kind"] for n in (await notes(user))["items"]]


async def follow(user: ApiUser, name: str) -> None:
    status, body = await user.call("POST", f"/api/users/{name}/follow")
    assert status == 200 and body["state"] == "accepted", body


async def live_room(host: ApiUser, title: str = "Morning", mode: str = "open") -> dict[str, Any]:
    status, room = await host.call("POST", "/api/rooms", {"title": title, "join_mode": mode})
    assert status == 201, room
    status, room = await host.call("POST", f"/api/rooms/{room['id']}/join")
    assert status == 200, room
    return dict(room)


async def test_followers_hear_a_room_start_live_over_their_socket(node: Node) -> None:
    alice, bob, carol = await node.user("alice"), await node.user("bob"), await node.user("carol")
    await follow(bob, "alice")
    ws = await bob.http.ws_connect(f"{node.url}/api/notifications/ws")
    assert await ws.receive_json(timeout=5) == {"type": "unread", "count": 0}
    room = await live_room(alice, "Café ☕ talk")
    msg = await ws.receive_json(timeout=5)
    assert msg["type"] == "notification" and msg["unread"] == 1
    note = msg["notification"]
    assert note["kind"] == "room_started" and note["actor"] == "alice"
    assert note["title"] == "Café ☕ talk" and note["read"] is False
    assert note["room_url"] == room["url"] and note["link"] == f"/rooms/{room['id']}"
    # the link works: it is the room, and bob can join it
    status, body = await bob.call("POST", f"/api/rooms/{room['id']}/join")
    assert status == 200 and body["title"] == "Café ☕ talk"
    assert await kinds(carol) == []  # carol follows nobody
    assert await kinds(alice) == []  # nobody notifies the host of her own room
    status, body = await bob.call("POST", "/api/notifications/read", {"ids": [note["id"]]})
    assert status == 200 and body == {"marked": 1, "unread": 0}
    assert await ws.receive_json(timeout=5) == {"type": "unread", "count": 0}
    assert (await notes(bob))["items"][0]["read"] is True
    await ws.close()


async def test_scheduled_room_started_notifies_once(node: Node) -> None:
    alice, bob = await node.user("alice"), await node.user("bob")
    await follow(bob, "alice")
    status, room = await alice.call(
        "POST", "/api/rooms", {"title": "Later", "start_time": time.time() + 3600}
    )
    assert status == 201
    assert await kinds(bob) == []  # scheduled is not live
    status, _ = await alice.call("POST", f"/api/rooms/{room['id']}/start")
    assert status == 200
    assert await kinds(bob) == ["room_started"]
    await alice.call("PATCH", f"/api/rooms/{room['id']}", {"title": "Later, renamed"})
    assert await kinds(bob) == ["room_started"]


async def test_closed_rooms_are_not_announced_to_followers(node: Node) -> None:
    alice, bob = await node.user("alice"), await node.user("bob")
    await follow(bob, "alice")
    await live_room(alice, "Secret", "closed")
    assert await kinds(bob) == []


async def test_invited_to_speak_and_made_moderator(node: Node) -> None:
    alice, bob = await node.user("alice"), await node.user("bob")
    room = await live_room(alice)
    status, _ = await bob.call("POST", f"/api/rooms/{room['id']}/join")
    assert status == 200
    status, body = await alice.call(
        "POST", f"/api/rooms/{room['id']}/invite_to_speak", {"user": "bob"}
    )
    assert status == 200, body
    items = (await notes(bob))["items"]
    assert [n["kind"] for n in items] == ["invited_to_speak"]
    assert items[0]["actor"] == "alice" and items[0]["link"] == f"/rooms/{room['id']}"
    status, body = await alice.call(
        "POST", f"/api/rooms/{room['id']}/make_moderator", {"user": "bob"}
    )
    assert status == 200, body
    assert await kinds(bob) == ["made_moderator", "invited_to_speak"]
    assert (await notes(bob))["unread"] == 2
    status, body = await bob.call("POST", "/api/notifications/read", {"all": True})
    assert status == 200 and body == {"marked": 2, "unread": 0}


async def test_local_ping_needs_a_follow_and_a_seat(node: Node) -> None:
    alice, bob, carol = await node.user("alice"), await node.user("bob"), await node.user("carol")
    room = await live_room(alice, "Ping me")
    # alice and bob have no follow relation yet
    status, body = await alice.call("POST", f"/api/rooms/{room['id']}/ping", {"user": "bob"})
    assert status == 403
    assert body == {"error": "you can ping people you follow or who follow you"}
    await follow(bob, "alice")  # bob follows alice: alice may ping bob
    status, body = await alice.call("POST", f"/api/rooms/{room['id']}/ping", {"user": "bob"})
    assert status == 200 and body == {"pinged": "bob"}
    items = (await notes(bob))["items"]
    assert [(n["kind"], n["actor"], n["title"]) for n in items] == [("ping", "alice", "Ping me")]
    # a second ping into the same room by the same person is stored once
    status, _ = await alice.call("POST", f"/api/rooms/{room['id']}/ping", {"user": "bob"})
    assert status == 200 and len((await notes(bob))["items"]) == 1
    # carol is not in the room: she cannot ping anyone into it
    await follow(carol, "bob")
    status, body = await carol.call("POST", f"/api/rooms/{room['id']}/ping", {"user": "bob"})
    assert status == 403 and body == {"error": "join the room before pinging people into it"}
    status, body = await alice.call("GET", "/api/me/ping-candidates")
    assert status == 200 and [p["user"] for p in body["items"]] == ["bob"]


async def test_closed_room_ping_by_moderator_invites(node: Node) -> None:
    alice, bob, carol = await node.user("alice"), await node.user("bob"), await node.user("carol")
    await follow(bob, "alice")
    await follow(carol, "bob")
    room = await live_room(alice, "Closed", "closed")
    status, body = await alice.call("POST", f"/api/rooms/{room['id']}/ping", {"user": "bob"})
    assert status == 200, body
    # the ping put bob on the invitation list: the link lets him in without the token
    status, body = await bob.call("POST", f"/api/rooms/{room['id']}/join")
    assert status == 200, body
    status, body = await bob.call("POST", f"/api/rooms/{room['id']}/ping", {"user": "carol"})
    assert status == 403
    assert body == {"error": "only the host and moderators can ping people into a closed room"}


async def test_paging_bounds_and_dedupe(node_factory: NodeFactory) -> None:
    node = await node_factory(notifications_per_user=5)
    bob = await node.user("bob")
    assert node.app is not None
    notifications = node.app[NODE].notifications
    user_id = node.app[NODE].accounts.by_name("bob").id
    for i in range(8):
        notifications.notify(
            user_id, "ping", room_url=f"http://x.example/rooms/{i}", title=f"R{i}", key=f"k{i}"
        )
    again = "http://x.example/rooms/7"
    notifications.notify(user_id, "ping", room_url=again, title="dup", key="k7")
    body = await notes(bob, limit=3)
    assert [n["title"] for n in body["items"]] == ["R7", "R6", "R5"] and body["unread"] == 5
    more = await notes(bob, limit=3, before=body["next_before"])
    assert [n["title"] for n in more["items"]] == ["R4", "R3"] and more["next_before"] is None
    assert more["items"][0]["link"] == "/remote?url=http%3A%2F%2Fx.example%2Frooms%2F4"
    for bad in ("limit=0x1", "limit=51", "before=-1"):
        status, err = await bob.call("GET", f"/api/notifications?{bad}")
        assert status == 400 and "error" in err


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": []},
        {"ids": ["1"]},
        {"ids": [True]},
        {"all": False},
        {"ids": [1], "all": True},
        {"ids": [1], "extra": 1},
        {"ids": list(range(501))},
    ],
)
async def test_mark_read_bad_input(node: Node, body: dict[str, Any]) -> None:
    bob = await node.user("bob")
    status, err = await bob.call("POST", "/api/notifications/read", body)
    assert status == 400 and "error" in err


async def test_socket_needs_sign_in_and_same_origin(node: Node) -> None:
    await node.user("bob")
    async with aiohttp.ClientSession() as anon:
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await anon.ws_connect(f"{node.url}/api/notifications/ws")
        assert exc.value.status == 401
