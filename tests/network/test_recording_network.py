"""Two real nodes: bob@B in alice@A's recorded room sees ``recording`` in his room state
(through B's remote-room proxy and the relay trunk) and when the host turns it off."""

from __future__ import annotations

import pytest

from tests.support.chat import RoomSocket
from tests.support.network import FAST, eventually, follow_accepted
from tests.support.nodes import Node, NodeFactory

pytestmark = pytest.mark.timeout(120)


async def test_remote_user_sees_recording(node_factory: NodeFactory) -> None:
    a: Node = await node_factory("a", **FAST)
    b: Node = await node_factory("b", **FAST)
    alice, bob = await a.user("alice"), await b.user("bob")
    status, room = await alice.call("POST", "/api/rooms", {"title": "Rec", "record": True})
    assert status == 201 and room["recording"] is True
    status, joined = await bob.call("POST", "/api/remote-rooms", {"url": room["url"]})
    assert status == 200, joined
    sb = await RoomSocket.open(bob.http, f"{b.url}/api/remote-rooms/{joined['id']}/ws")
    assert sb.state["recording"] is True and sb.state["remote"] is True
    status, _ = await alice.call("PATCH", f"/api/rooms/{room['id']}", {"record": False})
    assert status == 200
    off = await sb.wait_for(lambda m: m.get("event") == "recording")
    assert off["recording"] is False
    await sb.ws.close()


async def test_remote_hallway_card_says_recorded(node_factory: NodeFactory) -> None:
    """The Event a host's node announces carries ``recording`` (salon:recording), so bob's
    node can say "This room is recorded" before he joins."""
    a: Node = await node_factory("a", **FAST)
    b: Node = await node_factory("b", **FAST)
    alice, bob = await a.user("alice"), await b.user("bob")
    await follow_accepted(bob, alice, a)
    status, _ = await alice.call("POST", "/api/rooms", {"title": "Taped", "record": True})
    assert status == 201

    async def card() -> dict | None:
        _, hallway = await bob.call("GET", "/api/hallway")
        return next((r for r in hallway["rooms"] if r.get("title") == "Taped"), None)

    found = await eventually(card, 20)
    assert found["remote"] is True and found["recording"] is True
