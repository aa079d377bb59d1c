"""Attacks on pass-through (media/passthrough.py): what a speaker sends that must not pass.

A speaker's packets go to every listener as they are only while they are alone, 20 ms,
decodable and within the node's bitrate bound. Real node, real aiortc bots on loopback; the
hostile speaker is a bot whose encoder is replaced by one that sends what the attack needs
(through its real SRTP uplink).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from media.client import BotPeer
from media.codec import OpusEncoder
from media.engine import MediaEngine, RoomMedia
from media.passthrough import MAX_PASSED, PassThrough
from media.recovery import Redundancy
from media.red import RedStream
from media.trunk import Frame, Kind
from tests.media.media_harness import Harness, loopback_config, write_tone
from tests.support.packets import capture, payloads, record_uplink

pytestmark = pytest.mark.timeout(60)


class Forger:
    """A client's encoder that sends every Nth frame as a packet libopus cannot decode,
    whose TOC byte still says 20 ms (RFC 6716 code 2: a first frame longer than the packet)."""

    def __init__(self, every: int) -> None:
        self._real = OpusEncoder(32_000)
        self._every = every
        self._n = 0
        self.forged: set[bytes] = set()

    def encode(self, frame: np.ndarray) -> bytes:
        self._n += 1
        packet = self._real.encode(frame)
        if self._n % self._every:
            return packet
        forged = bytes([(0 << 3) | 2, 250]) + self._n.to_bytes(4, "big")
        self.forged.add(forged)
        return forged


def swap_encoder(bot: BotPeer, encoder: object) -> None:
    bot._track._encoder = encoder  # type: ignore[assignment]


async def listen_while(h: Harness, listener: BotPeer, name: str, seconds: float) -> list[bytes]:
    session = h.room.session(name)
    assert session is not None and session.downlink is not None
    seen = capture(listener)
    await asyncio.sleep(seconds)
    return payloads(seen, session.downlink.payload_type)


async def test_a_speaker_above_the_bitrate_bound_is_reencoded(tmp_path: Path) -> None:
    # mallory speaks at 64 kbit/s (as the bot did before pass16b, FEC for 10 % loss: its
    # packets differ from tick to tick); the node lets at most 48 kbit/s (its default) through
    assert loopback_config().passthrough_max_bitrate == 48_000
    h = Harness(engine=MediaEngine(loopback_config()))
    try:
        mallory = await h.join("mallory", play=write_tone(tmp_path / "m.wav", 440), can_speak=True)
        fast = OpusEncoder(64_000)
        fast.set_packet_loss(10)
        swap_encoder(mallory, fast)
        bob = await h.join("bob")
        room = h.room
        assert isinstance(room, RoomMedia) and room.passthrough is not None
        sent = record_uplink(room, "mallory")
        # the bound is on a moving average over about a second: the packets mallory sent at
        # 32 kbit/s before the swap pass, and the average crosses 48 kbit/s ≈ 0.7 s after it
        await asyncio.sleep(1.5)
        stats = room.passthrough.stats
        passed, too_fast = stats.passed, stats.too_fast
        got = await listen_while(h, bob, "bob", 1.0)
        assert len(got) > 30 and len(sent) > 30
        assert not any(p in sent for p in got)
        assert stats.too_fast - too_fast > 30 and stats.passed == passed
        # what bob gets is the room's encoding, at the room's bitrate (32 kbit/s ≈ 80 B)
        assert np.mean([len(p) for p in got]) < 0.7 * np.mean([len(p) for p in sent])
    finally:
        await h.close()


async def test_undecodable_packets_are_never_passed_on(tmp_path: Path) -> None:
    h = Harness()
    try:
        mallory = await h.join("mallory", play=write_tone(tmp_path / "m.wav", 440), can_speak=True)
        forger = Forger(every=5)
        swap_encoder(mallory, forger)
        bob = await h.join("bob")
        room = h.room
        assert isinstance(room, RoomMedia)
        sent = record_uplink(room, "mallory")
        await asyncio.sleep(0.5)
        got = await listen_while(h, bob, "bob", 1.5)
        assert forger.forged & sent  # the forged packets did reach the node
        assert not forger.forged & set(got)  # and none went on to a listener
        assert any(p in sent for p in got)  # the decodable ones still pass
    finally:
        await h.close()


async def test_a_listener_cannot_get_packets_passed_through(tmp_path: Path) -> None:
    # eve is a listener (not allowed to speak) whose client sends audio anyway
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        eve = await h.join("eve", play=write_tone(tmp_path / "e.wav", 880), speak=True)
        bob = await h.join("bob")
        room = h.room
        assert isinstance(room, RoomMedia)
        eve_session = room.session("eve")
        assert eve_session is not None
        eve_sent = record_uplink(room, "eve")
        alice_sent = record_uplink(room, "alice")
        await asyncio.sleep(0.5)
        got = await listen_while(h, bob, "bob", 1.0)
        assert not eve_sent  # cut at the tap: nothing of eve's reaches a jitter buffer
        assert eve_session.uplink.jitter.stats.received == 0
        assert len(got) > 30 and sum(p in alice_sent for p in got) > 0.8 * len(got)
        assert eve.errors == []
    finally:
        await h.close()


def test_no_packet_passes_that_the_trunk_or_red_could_not_carry() -> None:
    # a speaker whose average is modest sends one huge packet (libopus allows 1275 bytes)
    chooser = PassThrough(510_000)
    small = bytes([1 << 3]) + bytes(50)
    for _ in range(100):
        assert chooser.choose({"mallory": small}) == small
    huge = bytes([1 << 3]) + bytes(1274)
    assert chooser.choose({"mallory": huge}) is None  # the room's encoding goes instead
    # the largest that passes still fits a trunk datagram with its two predecessors
    largest = bytes([1 << 3]) + bytes(MAX_PASSED - 1)
    assert chooser.choose({"mallory": largest}) == largest
    redundancy = Redundancy()
    for n in range(3):
        earlier = redundancy.blocks(n * 960, largest)
    Frame(Kind.MIX, 0, 2, 1920, 127, largest, earlier).serialize()  # no TrunkError
    assert len(earlier) == 2
    # and a lossy listener's RED packet with its two predecessors (red.RED_DEPTH) stays
    # under the fan-out's packet limit (media/_fastpath.c MAX_PACKET: 1500 - SRTP trailer)
    stream = RedStream()
    for n in range(3):
        stream.push(largest, n * 960)
    assert len(stream.payload(111)) + 12 + 16 <= 1356  # RTP header, header extensions
    # and a TOC that claims anything but one 20 ms of audio never passes
    for toc in (bytes([0 << 3]), bytes([(31 << 3) | 3, 0]), bytes([(2 << 3)])):
        assert chooser.choose({"mallory": toc + bytes(50)}) is None
