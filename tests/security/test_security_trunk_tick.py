"""Attacks on a mixer whose trunk datagrams leave from its tick thread (media/relay.py
``OriginTrunk.send_tick``, ``MediaPort.send_trunk_now``): a stranger forging and replaying
trunk datagrams from its own address while the mixer sends, and a relay end that stops
reading. Neither moves the stream, raises in the tick, or stops the mixer's clock."""

from __future__ import annotations

import asyncio
import socket

import pytest

from media.trunk import Frame, Kind
from tests.support.trunk_end import open_trunk_origin

pytestmark = pytest.mark.timeout(60)


async def test_forged_and_replayed_trunk_datagrams_while_the_tick_sends() -> None:
    origin = await open_trunk_origin(trunk_id=41)
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.1", 0))
    try:
        real_peer = origin.trunk.peer
        captured = origin.sealer.seal(Frame(Kind.KEEPALIVE, 0, 0, 0, 127, bytes([0])))
        rejected = origin.trunk.rejected
        for n in range(200):  # a flood: garbage after the trunk header, replays, a huge id
            attacker.sendto(captured[:9] + bytes(60), origin.port_address)
            attacker.sendto(captured, origin.port_address)
            attacker.sendto(
                b"\x08" + (0xFFFFFFFF).to_bytes(4, "big") + bytes(n), origin.port_address
            )
        ticks = origin.room.ticks
        await asyncio.sleep(0.5)
        assert origin.trunk.peer == real_peer, "the stream still goes to the relay"
        # (a flood: the kernel may drop some of it before the port reads it)
        assert origin.trunk.rejected - rejected >= 10
        assert origin.engine.port.stats.dropped["unknown_trunk"] >= 1
        assert origin.room.ticks - ticks >= 5
        assert origin.engine.stats()["tick_errors"] == 0
        # the attacker got nothing; the relay still gets the mix
        attacker.setblocking(False)
        with pytest.raises(BlockingIOError):
            attacker.recv(2048)
        origin.drain()
        assert any(True for _ in origin.receive_mix(2.0))
    finally:
        attacker.close()
        await origin.close()


async def test_a_relay_end_that_stops_reading_does_not_stall_the_mixer() -> None:
    """Its receive buffer fills and the kernel drops what comes next: the tick thread's
    sends never block (a non-blocking socket) and never raise into the tick."""
    origin = await open_trunk_origin(trunk_id=42, far_rcvbuf=1024)
    try:
        ticks = origin.room.ticks
        await asyncio.sleep(1.5)  # nobody reads the far end meanwhile
        assert origin.room.ticks - ticks >= 25
        assert origin.engine.stats()["tick_errors"] == 0
        assert origin.trunk.packets_sent >= 25
        origin.drain()
        assert any(True for _ in origin.receive_mix(2.0)), "it hears the mix once it reads"
    finally:
        await origin.close()
