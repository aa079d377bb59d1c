"""Hostile nodes against relay trunks: the gate decides on every path into a room.

A trunk opens only while its node has a user admitted to the room, carries the mix only
once one is seated, closes when the last one leaves or is removed, and a node holds at
most one trunk per room (docs/security.md, "Relay trunks").
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import pytest
from nacl.public import PrivateKey

from cli.app import NODE
from federation.as2 import host_of
from federation.service import FEDERATION
from tests.support.federation import signed_join
from tests.support.network import FAST, eventually
from tests.support.nodes import Node, NodeFactory

pytestmark = pytest.mark.timeout(90)


async def pair(node_factory: NodeFactory, **a_settings: object) -> tuple[Node, Node]:
    a = await node_factory("a", **{**FAST, **a_settings})
    b = await node_factory("b", **FAST)
    await a.user("alice")
    await b.user("bob")
    return a, b


async def trunk_ws(b: Node, room_url: str) -> aiohttp.ClientWebSocketResponse:
    assert b.app is not None
    fed = b.app[FEDERATION]
    url = f"{room_url}/trunk"
    return await fed.client.session.ws_connect(
        url, headers=fed.client.signed_get_headers(url, fed.signers.node)
    )


async def hello(ws: aiohttp.ClientWebSocketResponse) -> dict[str, object]:
    key = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
    await ws.send_json({"type": "hello", "key": key})
    return dict(await ws.receive_json(timeout=5))


async def bob_in_alices_room(a: Node, b: Node) -> tuple[dict[str, Any], dict[str, Any]]:
    """alice opens a room on A and sits in it; bob joins it through B (B opens its trunk)."""
    alice, bob = a.users[0], b.users[0]
    _, room = await alice.call("POST", "/api/rooms", {"title": "Open"})
    await alice.call("POST", f"/api/rooms/{room['id']}/join")
    status, joined = await bob.call("POST", "/api/remote-rooms", {"url": room["url"]})
    assert status == 200, joined
    return room, joined


def sessions(a: Node) -> int:
    assert a.app is not None
    return len(a.app[NODE].trunks.sessions())


def attached(a: Node, room_id: str) -> int:
    assert a.app is not None
    media = a.app[NODE].audio.engine.get(room_id)
    return 0 if media is None else len(media.trunks)


async def test_closed_room_trunk_is_refused_without_an_admitted_user(
    node_factory: NodeFactory,
) -> None:
    a, b = await pair(node_factory)
    alice = a.users[0]
    _, room = await alice.call("POST", "/api/rooms", {"title": "Closed", "join_mode": "closed"})
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await trunk_ws(b, room["url"])
    assert refused.value.status == 403
    assert sessions(a) == 0 and attached(a, room["id"]) == 0
    # the uninvited Join is refused too, and still no trunk
    assert await signed_join(b, room["url"]) == 403
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await trunk_ws(b, room["url"])
    # with the invitation the same node gets its trunk: the refusal was the gate's
    _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    token = view["invite_link"].split("invite=")[1]
    assert await signed_join(b, room["url"], token) == 202
    ws = await trunk_ws(b, room["url"])
    assert (await hello(ws))["type"] == "media"
    # no mix flows before a user is seated over the trunk
    assert attached(a, room["id"]) == 0
    await ws.close()


async def test_removed_users_node_loses_its_trunk(node_factory: NodeFactory) -> None:
    a, b = await pair(node_factory)
    alice, bob = a.users[0], b.users[0]
    room, joined = await bob_in_alices_room(a, b)
    bob_handle = f"bob@{host_of(b.url)}"

    async def seated() -> bool:
        return sessions(a) == 1 and attached(a, room["id"]) == 1

    await eventually(seated)
    status, body = await alice.call("POST", f"/api/rooms/{room['id']}/remove", {"user": bob_handle})
    assert status == 200, body

    async def closed() -> bool:
        return sessions(a) == 0 and attached(a, room["id"]) == 0

    await eventually(closed)
    # B ended bob's remote room instead of reconnecting
    status, _ = await bob.call("GET", f"/api/remote-rooms/{joined['id']}")
    assert status == 404
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await trunk_ws(b, room["url"])
    assert refused.value.status == 403


async def test_one_trunk_per_room_and_node(node_factory: NodeFactory) -> None:
    a, b = await pair(node_factory)
    _, room = await a.users[0].call("POST", "/api/rooms", {"title": "Open"})
    assert await signed_join(b, room["url"]) == 202
    opened = []
    for _ in range(30):
        ws = await trunk_ws(b, room["url"])
        assert (await hello(ws))["type"] == "media"
        opened.append(ws)
    assert sessions(a) == 1
    for ws in opened[:-1]:
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 4409
    for ws in opened:
        await ws.close()


async def test_trunks_per_node_are_capped(node_factory: NodeFactory) -> None:
    a, b = await pair(node_factory, trunks_per_node=2)
    alice = a.users[0]
    rooms = [(await alice.call("POST", "/api/rooms", {"title": f"R{i}"}))[1] for i in range(3)]
    for room in rooms:
        assert await signed_join(b, room["url"]) == 202
    held = [await trunk_ws(b, room["url"]) for room in rooms[:2]]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await trunk_ws(b, rooms[2]["url"])
    assert refused.value.status == 429
    await held[0].close()

    async def freed() -> bool:
        return sessions(a) == 1

    await eventually(freed)
    again = await trunk_ws(b, rooms[2]["url"])
    assert (await hello(again))["type"] == "media"
    for ws in [*held, again]:
        await ws.close()


async def test_bad_trunk_frames_are_answered_not_fatal(node_factory: NodeFactory) -> None:
    a, b = await pair(node_factory)
    _, room = await a.users[0].call("POST", "/api/rooms", {"title": "Open"})
    assert await signed_join(b, room["url"]) == 202
    ws = await trunk_ws(b, room["url"])
    assert (await hello(ws))["type"] == "media"
    await ws.send_str("{" * 50_000)
    answer = await ws.receive_json(timeout=5)
    assert answer["type"] == "error" and "nested deeper" in answer["error"]
    await ws.send_bytes(b"\xff" * 10)
    assert "binary" in (await ws.receive_json(timeout=5))["error"]
    await ws.send_json(
        {"type": "users", "streams": {f"{b.url}/users/x{i}": i for i in range(5000)}}
    )
    assert "at most" in (await ws.receive_json(timeout=5))["error"]
    await ws.send_json({"type": "get_state", "id": 3, "actor": f"{b.url}/users/bob"})
    while (answer := await ws.receive_json(timeout=5)).get("id") != 3:
        pass
    assert answer["type"] == "state"
    await asyncio.sleep(0)
    await ws.close()


async def test_suspending_a_nodes_domain_closes_its_open_trunk(node_factory: NodeFactory) -> None:
    a, b = await pair(node_factory)
    room, _ = await bob_in_alices_room(a, b)

    async def seated() -> bool:
        return sessions(a) == 1 and attached(a, room["id"]) == 1

    await eventually(seated)
    assert a.app is not None
    a.app[FEDERATION].policies.set_policy(host_of(b.url), "suspend", 0.0)

    async def closed() -> bool:
        return sessions(a) == 0 and attached(a, room["id"]) == 0

    await eventually(closed, timeout=15)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await trunk_ws(b, room["url"])
    assert refused.value.status == 403
