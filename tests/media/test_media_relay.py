"""The relay trunk end to end: origin mixer on A, relay rooms on B and C, real UDP + WebRTC.

The control channel (keys, stream announcements) is done by hand here; the node wires it
over signed federation requests.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from media_harness import Harness, band_energy, loopback_config, write_tone
from nacl.public import PrivateKey

from media.engine import MediaEngine, RoomMedia, SendToParticipant
from media.port import open_port
from media.relay import OriginTrunk, RelayRoom
from media.trunk import Direction, Frame, Kind, Sealer, new_keypair

pytestmark = pytest.mark.timeout(60)


async def link(origin: Harness, trunk_id: int) -> tuple[Harness, OriginTrunk]:
    """A relay side wired to ORIGIN's room by a fresh trunk (keys swapped by hand)."""
    a_key, _ = new_keypair()
    b_key, _ = new_keypair()
    await origin.engine.start()
    a_port = origin.engine.port  # every trunk and session of A on its one port
    assert isinstance(origin.room, RoomMedia)
    trunk = OriginTrunk(origin.room, trunk_id, a_key, b_key.public_key, a_port)

    def make(send: SendToParticipant, engine: MediaEngine) -> RelayRoom:
        return RelayRoom(
            "r1",
            loopback_config(),
            send,
            trunk_id,
            b_key,
            a_key.public_key,
            engine.port,
            a_port.address,
        )

    engine = MediaEngine(loopback_config())
    await engine.start()  # B's keepalives go out from the first one
    return Harness(make, engine), trunk


async def test_origin_to_two_relays_and_remote_speaker(tmp_path: Path) -> None:
    a = Harness()
    b, trunk_b = await link(a, 11)
    c, trunk_c = await link(a, 12)
    try:
        host = await a.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        b_listener = await b.join("bob")
        c_listener = await c.join("carol")
        start = time.monotonic()
        await asyncio.sleep(1.5)
        for bot in (b_listener, c_listener):
            heard = bot.heard_since(start + 0.5)
            assert len(heard) > 0.6 * 48_000
            assert band_energy(heard, 440) > 0.8
        # the origin sends one mix stream per remote node, whatever the listeners
        sent_before, ticks_before = trunk_b.packets_sent, a.room.ticks
        extra = [await b.join(f"b{i}") for i in range(3)]
        await asyncio.sleep(1.0)
        sent = trunk_b.packets_sent - sent_before
        ticks = a.room.ticks - ticks_before
        # one mix packet per mixer tick, however many listeners B has (load-independent)
        assert ticks > 10 and sent <= ticks + 1, (sent, ticks)
        assert all(x.packets_received > 20 for x in extra)

        # dave on B becomes a speaker: A's mixer hears him through the trunk
        relay = b.room
        assert isinstance(relay, RelayRoom)
        dave = await b.join("dave", play=write_tone(tmp_path / "d.wav", 880))
        trunk_b.add_stream(relay.stream_for("dave"), "dave@b")
        a.room.set_can_speak("dave@b", True)
        relay.set_can_speak("dave", True)
        await asyncio.sleep(2.0)
        t = time.monotonic()
        await asyncio.sleep(1.2)
        at_host = host.heard_since(t)
        at_c = c_listener.heard_since(t)
        at_dave = dave.heard_since(t)
        assert band_energy(at_host, 880) > 0.8, "A's host hears B's speaker"
        assert band_energy(at_c, 880) > 0.2 and band_energy(at_c, 440) > 0.2
        assert band_energy(at_dave, 440) > 0.8 and band_energy(at_dave, 880) < 0.01
        # A cuts dave at the origin: B cannot make him heard
        a.room.set_can_speak("dave@b", False)
        t = time.monotonic()
        await asyncio.sleep(1.0)
        assert band_energy(host.heard_since(t + 0.2), 880) < 0.01
    finally:
        for side in (b, c):
            await side.close()
        await trunk_b.close()
        await trunk_c.close()
        await a.close()


async def test_forged_and_replayed_datagrams_are_dropped() -> None:
    a = Harness()
    b, trunk = await link(a, 21)
    try:
        relay = b.room
        assert isinstance(relay, RelayRoom)
        await asyncio.sleep(1.2)  # a keepalive has told A where B is
        assert trunk.peer is not None
        # a stranger with its own keys cannot inject audio
        stranger = Sealer(
            21, PrivateKey.generate(), PrivateKey.generate().public_key, Direction.RELAY_TO_ORIGIN
        )
        sock = await open_port("127.0.0.1", tcp_port=None)
        try:
            before = trunk.rejected
            datagram = stranger.seal(Frame(Kind.UPLINK, 1, 1, 0, 127, b"x"))
            sock.send_trunk(datagram, relay.sock.address)
            sock.send_trunk(datagram, trunk.sock.address)
            await asyncio.sleep(0.2)
            assert trunk.rejected == before + 1
            assert relay.rejected >= 1
            assert trunk.peer != sock.address
        finally:
            await sock.close()
    finally:
        await b.close()
        await trunk.close()
        await a.close()
