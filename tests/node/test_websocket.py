"""Room events over real WebSockets: initial state, ordered events, commands, slow clients."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.support.nodes import Node, NodeFactory


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    data: dict[str, Any] = msg.json()
    return data


async def recv_until(
    ws: aiohttp.ClientWebSocketResponse, event: str, timeout: float = 5.0
) -> dict[str, Any]:
    while True:
        data = await recv(ws, timeout)
        if data.get("event") == event or data.get("type") == event:
            return data


async def test_two_users_see_each_others_events_in_order(node: Node) -> None:
    alice = await node.user("alice")
    bob = await node.user("bob")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Live"})
    ws_a = await alice.ws(room["id"])
    state = await recv(ws_a)
    assert state["type"] == "state" and state["room"]["you"]["role"] == "host"
    ws_b = await bob.ws(room["id"])
    state_b = await recv(ws_b)
    assert [s["user"] for s in state_b["room"]["speakers"]] == ["alice"]
    joined = await recv(ws_a)
    assert joined["event"] == "joined" and joined["user"] == "bob"
    assert joined["participant"]["role"] == "listener"

    await ws_b.send_json({"type": "command", "id": 1, "action": "raise_hand"})
    assert (await recv_until(ws_b, "reply"))["id"] == 1
    await ws_a.send_json({"type": "command", "id": 2, "action": "invite_to_speak", "user": "bob"})
    seen_a = [await recv(ws_a) for _ in range(3)]
    kinds = [m.get("event") or m["type"] for m in seen_a]
    assert kinds == ["hand_raised", "invited_to_speak", "reply"], seen_a
    await ws_b.send_json({"type": "command", "id": 3, "action": "accept_invite"})
    role = await recv_until(ws_a, "role_changed")
    assert role["user"] == "bob" and role["role"] == "speaker"
    # bob's stream carries the same events with the same increasing sequence numbers
    seqs: list[int] = []
    while not seqs or seqs[-1] != role["seq"]:
        m = await recv(ws_b)
        if m["type"] == "event":
            seqs.append(m["seq"])
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gaps, no reordering

    await ws_a.send_json({"type": "command", "id": 4, "action": "end"})
    ended = await recv_until(ws_b, "room_ended")
    assert ended["by"] == "alice"
    closing = await asyncio.wait_for(ws_b.receive(), 5)
    assert closing.type is aiohttp.WSMsgType.CLOSE
    assert (closing.data, closing.extra) == (1000, "room ended")


async def test_forbidden_command_is_an_error_and_changes_nothing(node: Node) -> None:
    alice = await node.user("alice")
    bob = await node.user("bob")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Live"})
    ws_a = await alice.ws(room["id"])
    await recv(ws_a)
    ws_b = await bob.ws(room["id"])
    await recv(ws_b)
    await ws_b.send_json({"type": "command", "id": 9, "action": "mute", "user": "alice"})
    err = await recv_until(ws_b, "error")
    assert err == {
        "type": "error",
        "id": 9,
        "error": "only the host and moderators can mute others",
    }
    for bad, text in (
        ("not json", "malformed JSON"),
        ("[1]", "JSON objects"),
        ('{"type": "dance"}', "unknown message type"),
        ('{"type": "command"}', "needs an 'action'"),
        ('{"type": "command", "action": "fly"}', "unknown room action"),
    ):
        await ws_b.send_str(bad)
        reply = await recv_until(ws_b, "error")
        assert text in reply["error"], (bad, reply)
    _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert view["speakers"][0]["muted"] is False
    await ws_a.send_json({"type": "ping", "id": 1})
    assert (await recv_until(ws_a, "pong"))["id"] == 1


async def test_removed_user_socket_is_closed_and_rejoin_refused(node: Node) -> None:
    alice = await node.user("alice")
    bob = await node.user("bob")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Live"})
    ws_a = await alice.ws(room["id"])
    await recv(ws_a)
    ws_b = await bob.ws(room["id"])
    await recv(ws_b)
    await ws_a.send_json({"type": "command", "id": 1, "action": "remove", "user": "bob"})
    removed = await recv_until(ws_b, "removed")
    assert removed["user"] == "bob"
    closing = await asyncio.wait_for(ws_b.receive(), 5)
    assert (closing.type, closing.data, closing.extra) == (
        aiohttp.WSMsgType.CLOSE,
        4003,
        "removed from the room",
    )
    async with bob.http.get(f"{node.url}/api/rooms/{room['id']}/ws") as resp:
        assert resp.status == 403
        assert (await resp.json())["error"] == "you were removed from this room"


async def test_websocket_requires_auth_and_same_origin(node: Node) -> None:
    alice = await node.user("alice")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Live"})
    anon = await node.user()
    async with anon.http.get(f"{node.url}/api/rooms/{room['id']}/ws") as resp:
        assert resp.status == 401
    async with alice.http.get(
        f"{node.url}/api/rooms/{room['id']}/ws", headers={"Origin": "https://evil.example"}
    ) as resp:
        assert resp.status == 403
    async with alice.http.get(f"{node.url}/api/rooms/nope/ws") as resp:
        assert resp.status == 404


async def test_disconnect_keeps_seat_then_frees_it(node_factory: NodeFactory) -> None:
    node = await node_factory(reconnect_grace_seconds=0.6, room_empty_grace_seconds=0.6)
    alice = await node.user("alice")
    bob = await node.user("bob")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Live"})
    ws_a = await alice.ws(room["id"])
    await recv(ws_a)
    ws_b = await bob.ws(room["id"])
    await recv(ws_b)
    await ws_b.close()
    assert (await recv_until(ws_a, "disconnected"))["user"] == "bob"
    # reconnecting within the grace period reclaims the seat
    ws_b = await bob.ws(room["id"])
    await recv(ws_b)
    assert (await recv_until(ws_a, "reconnected"))["user"] == "bob"
    await ws_b.close()
    left = await recv_until(ws_a, "left", timeout=5)
    assert left["user"] == "bob"
    # the host leaves too: the room is empty and ends after its grace period
    await ws_a.close()
    for _ in range(50):
        _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
        if view["status"] == "ended":
            break
        await asyncio.sleep(0.1)
    assert view["status"] == "ended"


async def test_leave_command_gets_its_reply_before_the_close(node: Node) -> None:
    alice = await node.user("alice")
    bob = await node.user("bob")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Live"})
    ws_a = await alice.ws(room["id"])
    await recv(ws_a)
    ws_b = await bob.ws(room["id"])
    await recv(ws_b)
    await ws_b.send_json({"type": "command", "id": 5, "action": "leave"})
    assert (await recv_until(ws_b, "reply"))["id"] == 5
    closing = await asyncio.wait_for(ws_b.receive(), 5)
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1000)
    assert (await recv_until(ws_a, "left"))["user"] == "bob"
