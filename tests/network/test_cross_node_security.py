"""Cross-node rooms refuse forgery: Joins for other nodes' users, trunk control about
users the trunk's node does not host, unsigned trunks and blocked nodes."""

from __future__ import annotations

import base64

import aiohttp
from nacl.public import PrivateKey

from federation.as2 import host_of
from federation.service import FEDERATION
from tests.support.federation import signed_join
from tests.support.network import FAST
from tests.support.nodes import Node, NodeFactory


async def three(node_factory: NodeFactory) -> tuple[Node, Node, Node]:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    c = await node_factory("c", **FAST)
    await a.user("alice")
    await b.user("bob")
    await c.user("carol")
    return a, b, c


async def participants(node: Node, room_id: str) -> list[str]:
    viewer = node.users[0]
    _, view = await viewer.call("GET", f"/api/rooms/{room_id}")
    return [p["user"] for p in view["speakers"] + view["listeners"]]


async def test_forged_join_for_another_nodes_user_is_401(node_factory: NodeFactory) -> None:
    a, b, c = await three(node_factory)
    _, room = await a.users[0].call("POST", "/api/rooms", {"title": "Guarded"})
    assert b.app is not None
    fed_b = b.app[FEDERATION]
    bob = fed_b.users.by_name("bob")
    assert bob is not None
    carol_uri = f"{c.url}/users/carol"
    forged = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{b.url}/activities/forged-1",
        "type": "Join",
        "actor": carol_uri,  # carol lives on C; B signs with bob's key
        "object": room["url"],
    }
    status, body = await fed_b.client.post_json(f"{a.url}/inbox", forged, fed_b.signers.user(bob))
    assert status == 401, body
    assert await participants(a, room["id"]) == []
    # the same Join with bob's own identity is admitted: the refusal was about forgery
    honest = dict(forged, id=f"{b.url}/activities/honest-1", actor=f"{b.url}/users/bob")
    status, body = await fed_b.client.post_json(f"{a.url}/inbox", honest, fed_b.signers.user(bob))
    assert status == 202, body
    assert await participants(a, room["id"]) == [f"bob@{host_of(b.url)}"]


async def open_trunk(from_node: Node, room_url: str) -> aiohttp.ClientWebSocketResponse:
    assert from_node.app is not None
    fed = from_node.app[FEDERATION]
    url = f"{room_url}/trunk"
    headers = fed.client.signed_get_headers(url, fed.signers.node)
    ws = await fed.client.session.ws_connect(url, headers=headers)
    key = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
    await ws.send_json({"type": "hello", "key": key})
    media = await ws.receive_json(timeout=5)
    assert media["type"] == "media"
    return ws


async def test_trunk_control_about_foreign_users_is_refused(node_factory: NodeFactory) -> None:
    a, b, c = await three(node_factory)
    alice = a.users[0]
    _, room = await alice.call("POST", "/api/rooms", {"title": "Guarded"})
    # carol (on C) joins honestly through C
    carol = c.users[0]
    status, _ = await carol.call("POST", "/api/remote-rooms", {"url": room["url"]})
    assert status == 200
    carol_handle = f"carol@{host_of(c.url)}"
    assert carol_handle in await participants(a, room["id"])
    # B, with bob admitted, opens its own trunk and tries to act for carol
    assert await signed_join(b, room["url"]) == 202
    ws = await open_trunk(b, room["url"])
    carol_uri = f"{c.url}/users/carol"
    await ws.send_json({"type": "users", "streams": {carol_uri: 7}})
    seats = await ws.receive_json(timeout=5)
    assert seats == {"type": "seats", "missing": [carol_uri]}
    for action in ("raise_hand", "leave"):
        await ws.send_json({"type": "command", "id": 1, "actor": carol_uri, "action": action})
        while True:
            reply = await ws.receive_json(timeout=5)
            if reply.get("id") == 1:
                break
        assert reply["type"] == "error" and reply["status"] == 403
        assert "is not a user of" in reply["error"]
    await ws.send_json({"type": "get_state", "id": 2, "actor": carol_uri})
    while True:
        reply = await ws.receive_json(timeout=5)
        if reply.get("id") == 2:
            break
    assert reply["type"] == "error"
    _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    me = [p for p in view["listeners"] if p["user"] == carol_handle]
    assert me and me[0]["hand_raised"] is False, "nothing changed for carol"
    await ws.close()


async def test_unsigned_and_blocked_trunks_are_refused(node_factory: NodeFactory) -> None:
    a, b, _c = await three(node_factory)
    _, room = await a.users[0].call("POST", "/api/rooms", {"title": "Guarded"})
    async with aiohttp.ClientSession() as http, http.get(f"{room['url']}/trunk") as resp:
        assert resp.status == 401
    assert a.app is not None
    a.app[FEDERATION].policies.set_policy(host_of(b.url), "suspend", 0.0)
    assert b.app is not None
    fed_b = b.app[FEDERATION]
    url = f"{room['url']}/trunk"
    async with fed_b.client.session.get(
        url, headers=fed_b.client.signed_get_headers(url, fed_b.signers.node)
    ) as resp:
        assert resp.status == 403
    bob = b.users[0]
    status, body = await bob.call("POST", "/api/remote-rooms", {"url": room["url"]})
    assert status in (403, 409) and body["error"]
    # an ended room opens no trunk
    a.app[FEDERATION].policies.remove_policy(host_of(b.url))
    await a.users[0].call("POST", f"/api/rooms/{room['id']}/end")
    async with fed_b.client.session.get(
        url, headers=fed_b.client.signed_get_headers(url, fed_b.signers.node)
    ) as resp:
        assert resp.status == 404


async def test_low_order_trunk_key_is_refused_cleanly(node_factory: NodeFactory) -> None:
    a, b, _c = await three(node_factory)
    _, room = await a.users[0].call("POST", "/api/rooms", {"title": "Guarded"})
    assert await signed_join(b, room["url"]) == 202
    assert b.app is not None
    fed = b.app[FEDERATION]
    url = f"{room['url']}/trunk"
    ws = await fed.client.session.ws_connect(
        url, headers=fed.client.signed_get_headers(url, fed.signers.node)
    )
    await ws.send_json({"type": "hello", "key": base64.b64encode(bytes(32)).decode()})
    msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 4400
