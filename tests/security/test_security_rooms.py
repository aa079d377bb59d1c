"""Hostile users against one node's rooms: each attack is refused and changes nothing.

Every test drives a real node over HTTP and WebSocket (docs/security.md, "Rooms").
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from tests.support.nodes import ApiUser, Node, NodeFactory

pytestmark = pytest.mark.timeout(60)


async def room_of(user: ApiUser, **fields: object) -> dict[str, object]:
    status, room = await user.call("POST", "/api/rooms", {"title": "Talk", **fields})
    assert status == 201, room
    return dict(room)


async def state_of(user: ApiUser, room_id: object) -> dict[str, object]:
    status, view = await user.call("GET", f"/api/rooms/{room_id}")
    assert status == 200, view
    return dict(view)


async def test_lone_surrogate_title_is_400_and_the_room_keeps_working(node: Node) -> None:
    alice = await node.user("alice")
    room = await room_of(alice)
    # JSON's \ud800 escape decodes to a lone surrogate that UTF-8 cannot hold
    raw = '{"title": "bad \\ud800 title"}'
    async with alice.http.patch(
        f"{node.url}/api/rooms/{room['id']}",
        data=raw,
        headers={"X-CSRF-Token": alice.csrf, "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
        assert "not valid Unicode" in (await resp.json())["error"]
    for bad in ("nul \x00 inside", "bell \x07"):
        status, body = await alice.call("PATCH", f"/api/rooms/{room['id']}", {"title": bad})
        assert status == 400 and "control characters" in body["error"]
    assert (await state_of(alice, room["id"]))["title"] == "Talk"
    bob = await node.user("bob")
    status, _ = await bob.call("POST", f"/api/rooms/{room['id']}/join")
    assert status == 200
    status, ended = await alice.call("POST", f"/api/rooms/{room['id']}/end")
    assert status == 200 and ended["status"] == "ended"


@pytest.mark.parametrize("start", [10**400, -5, 10**12, "99999-01-01T00:00:00Z"])
async def test_absurd_start_times_are_400(node: Node, start: object) -> None:
    alice = await node.user("alice")
    status, body = await alice.call("POST", "/api/rooms", {"title": "Later", "start_time": start})
    assert status == 400, body
    status, hall = await alice.call("GET", "/api/hallway")
    assert hall["rooms"] == []


async def test_rooms_per_user_are_capped(node_factory: NodeFactory) -> None:
    node = await node_factory(rooms_per_user=3)
    alice = await node.user("alice")
    bob = await node.user("bob")
    made = await asyncio.gather(
        *(
            alice.call("POST", "/api/rooms", {"title": f"R{i}", "start_time": time.time() + 3600})
            for i in range(12)
        )
    )
    assert sorted(status for status, _ in made).count(201) == 3
    assert {status for status, _ in made} == {201, 409}
    status, hall = await bob.call("GET", "/api/hallway")
    assert len(hall["rooms"]) == 3
    status, _ = await bob.call("POST", "/api/rooms", {"title": "Mine"})
    assert status == 201, "another user is not limited by alice's rooms"


async def test_room_sockets_per_user_are_capped(node_factory: NodeFactory) -> None:
    node = await node_factory(room_sockets_per_user=3)
    alice = await node.user("alice")
    room = await room_of(alice)
    sockets = [await alice.ws(str(room["id"])) for _ in range(3)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await alice.ws(str(room["id"]))
    assert refused.value.status == 429
    bob = await node.user("bob")
    other = await bob.ws(str(room["id"]))  # other users are not affected
    assert (await other.receive_json(timeout=5))["type"] == "state"
    await sockets[0].close()
    again = await alice.ws(str(room["id"]))  # a closed socket frees its place
    assert (await again.receive_json(timeout=5))["type"] == "state"
    for ws in [*sockets[1:], again, other]:
        await ws.close()


async def test_action_flood_is_refused_without_writes_or_broadcasts(
    node_factory: NodeFactory,
) -> None:
    node = await node_factory(room_actions_per_second=1.0, room_actions_burst=4)
    alice = await node.user("alice")
    room = await room_of(alice)
    mallory = await node.user("mallory")
    flood = await mallory.ws(str(room["id"]))
    watcher = await alice.ws(str(room["id"]))
    assert (await flood.receive_json(timeout=5))["type"] == "state"
    assert (await watcher.receive_json(timeout=5))["type"] == "state"
    seq_before = int((await state_of(alice, room["id"]))["seq"])  # type: ignore[call-overload]
    sent = 120  # under ws_queue_size: the flood is refused, not the socket cut
    for i in range(sent):
        action = "raise_hand" if i % 2 == 0 else "lower_hand"
        await flood.send_json({"type": "command", "id": i, "action": action})
    answers = []
    while len(answers) < sent:
        message = await flood.receive_json(timeout=10)
        if message.get("type") in ("reply", "error"):
            answers.append(message)
    refused = [a for a in answers if a["type"] == "error"]
    assert refused and all("too many room actions" in a["error"] for a in refused)
    accepted = sent - len(refused)
    seq_after = int((await state_of(alice, room["id"]))["seq"])  # type: ignore[call-overload]
    assert seq_after - seq_before == accepted, "only accepted actions were written"
    # leaving is never rate-limited
    await flood.send_json({"type": "command", "id": "bye", "action": "leave"})
    while (message := await flood.receive_json(timeout=5)).get("id") != "bye":
        pass
    assert message["type"] == "reply"
    # the watcher got one event per accepted action, and nothing for the refused ones
    events = []
    while True:
        message = await watcher.receive_json(timeout=10)
        if message.get("type") == "event" and message.get("user") == "mallory":
            events.append(message)
            if message["event"] == "left":
                break
    assert len(events) == accepted + 1  # the accepted actions, then "left"
    await flood.close()
    await watcher.close()


async def test_bad_frames_on_the_room_socket_are_errors_not_crashes(node: Node) -> None:
    alice = await node.user("alice")
    room = await room_of(alice)
    ws = await alice.ws(str(room["id"]))
    assert (await ws.receive_json(timeout=5))["type"] == "state"
    await ws.send_str("[" * 100_000 + "]" * 100_000)
    assert "nested deeper" in (await ws.receive_json(timeout=5))["error"]
    await ws.send_bytes(b"\x00\x01")
    assert "binary" in (await ws.receive_json(timeout=5))["error"]
    await ws.send_str(json.dumps({"type": "command", "id": {"x": 1}, "action": "raise_hand"}))
    assert "id must be" in (await ws.receive_json(timeout=5))["error"]
    await ws.send_str(json.dumps({"type": "x" * 10_000}))
    error = await ws.receive_json(timeout=5)
    assert "unknown message type" in error["error"] and len(error["error"]) < 100
    await ws.send_json({"type": "ping", "id": 7})
    assert await ws.receive_json(timeout=5) == {"type": "pong", "id": 7}
    assert (await state_of(alice, room["id"]))["hands"] == []
    await ws.close()
