"""Pass-through (media/passthrough.py): a lone speaker's own packets reach listeners as sent.

Real node and aiortc bots on loopback (media_harness); what the speaker's packets were is
read where they enter the node (the uplink's ``push``, fed by the receive tap after SRTP),
what listeners get at their receive hook (test_media_red.capture).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
from media_harness import Harness, band_energy, loopback_config, write_tone
from test_media_relay import link

from media.codec import OpusEncoder
from media.engine import MediaEngine, RoomMedia
from media.passthrough import FRAME_SAMPLES, MAX_PASSED, PassThrough, opus_samples
from tests.support.packets import capture, record_uplink
from tests.support.packets import payloads as opus_payloads

pytestmark = pytest.mark.timeout(60)


# Passed-through packets a listener must get in a 1.5-2 s window (75-100 ticks): enough to
# show pass-through at work. The rest is checked against the room's counters (every packet
# not alice's was a tick the room mixed), not as a share, which a busy machine moves.
PASSED_AT_LEAST = 20


def counters(room: RoomMedia) -> dict[str, int]:
    assert room.passthrough is not None
    stats = room.conceal_stats
    return {**dataclasses.asdict(room.passthrough.stats), "rebuilt": stats.fec + stats.plc}


# ---- pure ---------------------------------------------------------------------------------


def test_opus_samples_reads_the_toc_byte() -> None:
    encoder = OpusEncoder(32_000)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(960) / 48_000)).astype(np.float32)
    assert opus_samples(encoder.encode(tone)) == FRAME_SAMPLES
    # RFC 6716 §3.1: config 1 = SILK 20 ms, config 0 = SILK 10 ms, config 31 = CELT 20 ms
    assert opus_samples(bytes([1 << 3, 0])) == 960
    assert opus_samples(bytes([0 << 3, 0])) == 480
    assert opus_samples(bytes([(0 << 3) | 1, 0])) == 960  # two 10 ms frames
    assert opus_samples(bytes([(31 << 3) | 3, 2])) == 1920  # code 3: two 20 ms frames
    assert opus_samples(bytes([(3 << 3) | 3, 2])) == 5760  # two 60 ms frames: 120 ms
    assert opus_samples(bytes([(3 << 3) | 3, 3])) == 0  # 180 ms: not a valid packet
    assert opus_samples(bytes([(31 << 3) | 3])) == 0  # code 3 without its count byte
    assert opus_samples(b"") == 0


def test_choose_passes_only_a_lone_real_20ms_packet_under_the_bitrate_bound() -> None:
    chooser = PassThrough(max_bitrate=48_000)  # the default: 120 bytes a packet on average
    packet = bytes([1 << 3]) + bytes(99)  # SILK 20 ms, 100 bytes
    assert chooser.choose({}) is None  # nobody speaks: the room's encoding of silence
    assert chooser.choose({"alice": packet}) == packet
    assert chooser.choose({"alice": packet, "dave": packet}) is None  # two: the mix
    assert chooser.choose({"alice": None}) is None  # rebuilt or concealed: the mix
    assert chooser.choose({"alice": bytes([0 << 3]) + bytes(99)}) is None  # 10 ms
    assert chooser.stats.passed == 1 and chooser.stats.mixed == 3
    big = bytes([1 << 3]) + bytes(299)  # 300 bytes a packet: 120 kbit/s
    assert chooser.choose({"bob": big}) is None  # above the bound from the first packet
    assert chooser.stats.too_fast == 1
    # the bound is on a moving average: one large packet of a modest speaker passes
    assert chooser.choose({"alice": big}) == big
    for _ in range(60):  # a second of large ones does not
        chooser.choose({"alice": big})
    assert chooser.choose({"alice": big}) is None
    chooser.forget("alice")
    assert chooser.choose({"alice": packet}) == packet  # a fresh start after a cut
    # never a packet too large for the trunk's and RED's redundancy, whatever the average
    huge = bytes([1 << 3]) + bytes(MAX_PASSED)
    assert chooser.choose({"carol": huge}) is None
    assert PassThrough(510_000).choose({"carol": huge}) is None
    with pytest.raises(ValueError):
        PassThrough(0)


# ---- real connections ---------------------------------------------------------------------


async def test_a_lone_speakers_packets_reach_the_listener_byte_identical(tmp_path: Path) -> None:
    h = Harness()
    try:
        alice = await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        bob = await h.join("bob")
        room = h.room
        assert isinstance(room, RoomMedia)
        sent = record_uplink(room, "alice")
        await asyncio.sleep(0.5)  # alice's stream is flowing
        bob_session = room.session("bob")
        assert bob_session is not None and bob_session.downlink is not None
        seen, before, start = capture(bob), counters(room), time.monotonic()
        await asyncio.sleep(1.5)
        after = counters(room)
        got = opus_payloads(seen, bob_session.downlink.payload_type)
        identical = [p for p in got if p in sent]
        # every packet bob got is one of alice's, but for ticks the room had to mix (a late
        # uplink packet on a busy machine: concealed, then the room's encoding). How many
        # ticks a busy machine makes late is not this test's business: the counters are.
        assert len(got) > 40 and len(identical) >= PASSED_AT_LEAST
        assert len(got) - len(identical) <= after["mixed"] - before["mixed"] + 2
        assert after["passed"] - before["passed"] >= len(identical) - 2
        # alice herself hears her mix-minus (silence), never her own packets
        alice_session = room.session("alice")
        assert alice_session is not None and alice_session.downlink is not None
        alice_seen = capture(alice)
        await asyncio.sleep(0.3)
        alice_hears = opus_payloads(alice_seen, alice_session.downlink.payload_type)
        assert len(alice_hears) > 5 and not any(p in sent for p in alice_hears)
        # the same loudness as the room's own encoding: the mixer applies no gain
        heard = bob.heard_since(start + 0.2)
        assert band_energy(heard, 440) > 0.8
        amplitude = np.sqrt(2 * np.mean((heard.astype(np.float64) / 32768.0) ** 2))
        assert 0.8 < amplitude / (0.3 * 0.7071) < 1.2  # the tone as the bot played it
    finally:
        await h.close()


async def test_two_speakers_the_listener_gets_the_mix(tmp_path: Path) -> None:
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        await h.join("dave", play=write_tone(tmp_path / "d.wav", 880), can_speak=True)
        bob = await h.join("bob")
        room = h.room
        assert isinstance(room, RoomMedia)
        alice_sent = record_uplink(room, "alice")
        dave_sent = record_uplink(room, "dave")
        await asyncio.sleep(0.5)
        bob_session = room.session("bob")
        assert bob_session is not None and bob_session.downlink is not None
        seen, start = capture(bob), time.monotonic()
        await asyncio.sleep(1.2)
        got = opus_payloads(seen, bob_session.downlink.payload_type)
        assert len(got) > 40
        sent = alice_sent | dave_sent
        assert len(alice_sent) > 40 and len(dave_sent) > 40
        # while both are heard, no packet of either goes out as it is: the room's mix
        assert not any(p in sent for p in got)
        heard = bob.heard_since(start + 0.2)
        assert band_energy(heard, 440) > 0.3 and band_energy(heard, 880) > 0.3
    finally:
        await h.close()


async def test_a_lossy_listener_without_red_gets_the_rooms_own_encoding(tmp_path: Path) -> None:
    """While alice's packets pass, carol — who reports loss and never offered RED — gets the
    room's own encoding (its FEC sized by her reports); bob, clean, still gets alice's
    packets; when carol's reports are clean again she gets them too."""
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        bob = await h.join("bob")
        carol = await h.join("carol", protect=False)  # offers no RED
        room = h.room
        assert isinstance(room, RoomMedia)
        sent = record_uplink(room, "alice")
        await asyncio.sleep(0.5)
        bob_session, carol_session = room.session("bob"), room.session("carol")
        assert bob_session is not None and bob_session.downlink is not None
        assert carol_session is not None and carol_session.downlink is not None
        assert carol_session.downlink.red_type is None
        carol_session.loss.add(26)  # a receiver report: 10 % lost
        bob_seen, carol_seen, start = capture(bob), capture(carol), time.monotonic()
        await asyncio.sleep(1.5)
        bob_got = opus_payloads(bob_seen, bob_session.downlink.payload_type)
        carol_got = opus_payloads(carol_seen, carol_session.downlink.payload_type)
        assert len(bob_got) > 40 and len(carol_got) > 40
        assert sum(p in sent for p in bob_got) >= PASSED_AT_LEAST  # passed through
        assert not any(p in sent for p in carol_got)  # the room's encoding, every tick
        heard = carol.heard_since(start + 0.2)
        assert len(heard) > 48_000 and band_energy(heard, 440) > 0.8
        for _ in range(10):  # ten clean reports: no longer lossy
            carol_session.loss.add(0)
        carol_seen = capture(carol)
        await asyncio.sleep(0.5)
        carol_got = opus_payloads(carol_seen, carol_session.downlink.payload_type)
        assert len(carol_got) > 10 and sum(p in sent for p in carol_got) >= 8
    finally:
        await h.close()


async def test_a_lost_uplink_frame_falls_back_to_the_rooms_encoding(tmp_path: Path) -> None:
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        bob = await h.join("bob")
        room = h.room
        assert isinstance(room, RoomMedia)
        sent = record_uplink(room, "alice", drop=lambda sequence: sequence % 10 == 0)
        await asyncio.sleep(0.5)
        bob_session = room.session("bob")
        assert bob_session is not None and bob_session.downlink is not None
        seen, before, start = capture(bob), counters(room), time.monotonic()
        await asyncio.sleep(2.0)
        after = counters(room)
        got = opus_payloads(seen, bob_session.downlink.payload_type)
        rebuilt = after["rebuilt"] - before["rebuilt"]
        mixed = after["mixed"] - before["mixed"]
        # ≈ 10 frames of 100 lost: each rebuilt (FEC of the next packet, or PLC) and sent
        # as the room's encoding of what was rebuilt, never as a packet of alice's
        assert rebuilt >= 8
        assert mixed >= rebuilt - 1  # (a tick may fall between the two counter reads)
        others = [p for p in got if p not in sent]
        assert len(others) >= rebuilt - 3
        assert len(others) <= mixed + 3  # the rest: alice's
        assert len(got) - len(others) >= PASSED_AT_LEAST
        heard = bob.heard_since(start + 0.2)
        assert band_energy(heard, 440) > 0.8  # and the switches do not break the tone
    finally:
        await h.close()


async def test_a_relay_listener_gets_the_same_packets(tmp_path: Path) -> None:
    a = Harness()
    b, _trunk = await link(a, 21)
    try:
        await a.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        carol = await b.join("carol")
        room = a.room
        assert isinstance(room, RoomMedia)
        sent = record_uplink(room, "alice")
        await asyncio.sleep(0.6)
        relay_session = b.room.session("carol")
        assert relay_session is not None and relay_session.downlink is not None
        seen, before = capture(carol), counters(room)
        await asyncio.sleep(1.5)
        after = counters(room)
        got = opus_payloads(seen, relay_session.downlink.payload_type)
        identical = [p for p in got if p in sent]
        assert len(got) > 40 and len(identical) >= PASSED_AT_LEAST
        assert len(got) - len(identical) <= after["mixed"] - before["mixed"] + 3
    finally:
        await b.close()
        await a.close()


async def test_switched_off_every_packet_is_the_rooms_encoding(tmp_path: Path) -> None:
    config = dataclasses.replace(loopback_config(), speaker_passthrough=False)
    h = Harness(engine=MediaEngine(config))
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        bob = await h.join("bob")
        room = h.room
        assert isinstance(room, RoomMedia) and room.passthrough is None
        sent = record_uplink(room, "alice")
        await asyncio.sleep(0.5)
        bob_session = room.session("bob")
        assert bob_session is not None and bob_session.downlink is not None
        seen = capture(bob)
        await asyncio.sleep(1.0)
        got = opus_payloads(seen, bob_session.downlink.payload_type)
        assert len(got) > 30 and len(sent) > 30
        assert not any(p in sent for p in got)
    finally:
        await h.close()
