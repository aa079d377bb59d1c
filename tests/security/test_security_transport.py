"""Transport attacks: a cross-site page opening a room socket with a look-alike Origin, and
an attacker replaying a captured authentic trunk datagram from its own address."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from nacl.public import PrivateKey

from media.port import open_port
from media.relay import OriginTrunk
from media.trunk import Direction, Frame, Kind, Sealer
from tests.support.nodes import Node


async def test_websocket_origin_must_match_scheme_host_and_port(node: Node) -> None:
    alice = await node.user("alice")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Live"})
    url = f"{node.url}/api/rooms/{room['id']}/ws"
    port = node.url.rsplit(":", 1)[1]
    for origin in (
        node.url.replace("http://", "https://"),  # same host and port, other scheme
        "http://127.0.0.1",  # other port
        f"http://127.0.0.1:{int(port) + 1}",
        f"http://127.0.0.1.evil.example:{port}",
        f"http://evil.example:{port}",
        "null",
        f"http://127.0.0.1:{port}x",
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await alice.http.ws_connect(url, headers={"Origin": origin})
        assert refused.value.status == 403, origin
    # the page's own origin still connects, and the room is as it was
    ws = await alice.http.ws_connect(url, headers={"Origin": node.url})
    await ws.close()
    ws = await alice.http.ws_connect(url, headers={"Origin": node.url.upper()})
    await ws.close()


class _Room:
    """The part of a room's media an origin trunk talks to."""

    def __init__(self) -> None:
        self.pushed: list[tuple[str, int]] = []
        self.loss_protection = True  # the trunk repeats earlier frames (docs/media.md)

    def attach_trunk(self, trunk: Any) -> None:
        pass

    async def detach_trunk(self, trunk: Any) -> None:
        pass

    def add_remote(self, participant: str, trunk: Any) -> None:
        pass

    def push_remote(
        self, participant: str, seq: int, payload: bytes, redundant: bool = False
    ) -> None:
        self.pushed.append((participant, seq))


async def test_captured_trunk_datagram_replayed_elsewhere_does_not_move_the_stream() -> None:
    origin_key, relay_key = PrivateKey.generate(), PrivateKey.generate()
    origin_sock = await open_port("127.0.0.1", tcp_port=None)
    relay_sock = await open_port("127.0.0.1", tcp_port=None)
    attacker_sock = await open_port("127.0.0.1", tcp_port=None)
    room = _Room()
    trunk = OriginTrunk(room, 7, origin_key, relay_key.public_key, origin_sock)  # type: ignore[arg-type]
    trunk.add_stream(1, "bob@b")
    relay = Sealer(7, relay_key, origin_key.public_key, Direction.RELAY_TO_ORIGIN)
    try:
        relay_sock.send_trunk(
            relay.seal(Frame(Kind.UPLINK, 1, 1, 0, 127, b"a")), origin_sock.address
        )
        await asyncio.sleep(0.2)
        assert trunk.peer == relay_sock.address
        # the attacker captured datagrams on the path; it resends them from its address,
        # the newest first (fresh counters the origin has not seen yet)
        captured = [relay.seal(Frame(Kind.UPLINK, 1, n, 0, 127, b"x")) for n in (2, 3)]
        for datagram in reversed(captured):
            attacker_sock.send_trunk(datagram, origin_sock.address)
        attacker_sock.send_trunk(captured[0], origin_sock.address)  # and an old one again
        await asyncio.sleep(0.2)
        assert trunk.peer == relay_sock.address, "the stream still goes to the relay"
        assert room.pushed == [("bob@b", 1)], "nothing the attacker sent was played"
        # the relay itself goes on as before
        relay_sock.send_trunk(
            relay.seal(Frame(Kind.UPLINK, 1, 4, 0, 127, b"b")), origin_sock.address
        )
        await asyncio.sleep(0.2)
        assert room.pushed == [("bob@b", 1), ("bob@b", 4)]
    finally:
        await trunk.close()
        for sock in (origin_sock, relay_sock, attacker_sock):
            await sock.close()
