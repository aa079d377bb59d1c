"""Attack (slowloris): a client that opens connections and trickles a request head byte by
byte held each connection, and the memory behind it, for ever. Now the head must be
complete within `header_timeout_seconds`, however the bytes trickle in."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.support.nodes import Node, NodeFactory

TIMEOUT = 0.5  # the test node's header_timeout_seconds


async def _trickle_until_closed(node: Node, head: bytes, drip: bytes = b"a") -> bytes:
    """Open a raw connection, send HEAD, then DRIP again and again until the node closes
    it; returns whatever the node sent back before closing."""
    assert node.server is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", node.server.port)
    writer.write(head)
    received = b""
    try:
        while True:
            try:
                writer.write(drip)
                await writer.drain()
            except ConnectionError:
                return received
            try:
                chunk = await asyncio.wait_for(reader.read(1024), TIMEOUT / 5)
            except TimeoutError:
                continue
            except ConnectionError:
                return received
            if not chunk:
                return received
            received += chunk
    finally:
        writer.close()


async def test_slow_request_heads_are_disconnected(node_factory: NodeFactory) -> None:
    node = await node_factory(header_timeout_seconds=TIMEOUT)
    alice = await node.user("alice")
    slow = [
        asyncio.create_task(_trickle_until_closed(node, b"GET /api/instance HTTP/1.1\r\nX-Slow: ")),
        asyncio.create_task(_trickle_until_closed(node, b"GET /api/inst")),  # partial line
        asyncio.create_task(_trickle_until_closed(node, b"", drip=b"")),  # silent
    ]
    # while they trickle, normal requests on other connections are served
    for _ in range(3):
        status, body = await alice.call("GET", "/api/me")
        assert status == 200 and body["username"] == "alice"
    # each slow connection is closed by the node without any answer
    assert await asyncio.gather(*slow) == [b"", b"", b""]
    assert (await alice.call("GET", "/api/me"))[0] == 200


async def test_open_websocket_outlives_the_header_timeout(node_factory: NodeFactory) -> None:
    """The timer covers waiting for a request head, not a request in progress."""
    node = await node_factory(header_timeout_seconds=TIMEOUT)
    alice = await node.user("alice")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Long"})
    ws = await alice.ws(room["id"])
    assert (await ws.receive_json())["type"] == "state"
    await asyncio.sleep(TIMEOUT * 4)
    await ws.send_json({"type": "command", "id": 1, "action": "raise_hand"})
    while True:
        msg = await ws.receive()
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        if msg.json().get("type") in ("reply", "error"):
            assert msg.json()["id"] == 1
            break
    await ws.close()
