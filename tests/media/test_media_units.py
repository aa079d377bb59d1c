"""Pure pieces: jitter buffer, mixer math, levels, RTP packing (no network)."""

from __future__ import annotations

import numpy as np
import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media.codec import OpusDecoder, OpusEncoder
from media.jitter import JitterBuffer
from media.mixer import FRAME_SAMPLES, LevelMeter, dbov, level, mix
from media.rtp import (
    AUDIO_LEVEL_URI,
    MID_URI,
    audio_level_byte,
    extension_block,
    one_byte_element,
    pack_header,
    seq_diff,
)


def test_jitter_plays_in_order_after_prefetch() -> None:
    jb = JitterBuffer(prefetch=2, max_depth=5)
    assert jb.pop() is None
    jb.push(11, b"b")
    assert jb.pop() is None  # waiting for prefetch
    jb.push(10, b"a")  # reordered arrival
    assert [jb.pop(), jb.pop()] == [b"a", b"b"]
    jb.push(13, b"d")
    assert jb.pop() == b""  # 12 lost: conceal
    assert jb.pop() == b"d"
    assert jb.stats.lost == 1 and jb.stats.played == 3


def test_jitter_late_packet_dropped_and_wraparound() -> None:
    jb = JitterBuffer(prefetch=1)
    jb.push(65535, b"x")
    assert jb.pop() == b"x"
    jb.push(0, b"y")
    jb.push(65534, b"old")
    assert jb.stats.late == 1
    assert jb.pop() == b"y"


def test_jitter_trims_bursts_and_resets_when_idle() -> None:
    jb = JitterBuffer(prefetch=1, max_depth=3, idle_reset=3)
    for seq in range(100, 110):
        jb.push(seq, bytes([seq]))
    assert len(jb) == 1  # trimmed back to prefetch depth: the newest packet only
    assert jb.stats.dropped == 9
    assert jb.pop() == bytes([109])
    assert [jb.pop(), jb.pop(), jb.pop()] == [b"", b"", None]  # idle → re-prime
    assert not jb.playing
    jb.push(5000, b"new")  # a new talk spurt re-primes from its own sequence
    assert jb.pop() == b"new"


def test_seq_diff() -> None:
    assert seq_diff(1, 65535) == 2
    assert seq_diff(65535, 1) == -2
    assert seq_diff(100, 100) == 0


def test_mix_and_mix_minus() -> None:
    a = np.full(FRAME_SAMPLES, 0.25, dtype=np.float32)
    b = np.full(FRAME_SAMPLES, 0.5, dtype=np.float32)
    c = np.full(FRAME_SAMPLES, 0.75, dtype=np.float32)
    room, minus = mix({"a": a, "b": b, "c": c})
    assert np.allclose(room, 1.0)  # 1.5 clipped
    assert np.allclose(minus["a"], 1.0)  # 1.25 clipped
    assert np.allclose(minus["c"], 0.75)
    room, minus = mix({})
    assert not room.any() and minus == {}


def test_levels() -> None:
    full = np.ones(FRAME_SAMPLES, dtype=np.float32)
    assert dbov(full) == pytest.approx(0.0)
    assert dbov(np.zeros(FRAME_SAMPLES, dtype=np.float32)) == -127.0
    assert level(-55.0) == 0.0 and level(0.0) == 1.0 and level(-30.0) == pytest.approx(0.5)
    meter = LevelMeter(window=2)
    meter.add("a", -30.0)
    assert meter.tick() is None
    assert meter.tick() == {"a": 0.5}
    meter.add("a", -30.0)
    meter.tick()
    assert meter.tick() is None  # unchanged: no event
    meter.tick()
    assert meter.tick() == {}  # stopped speaking


def test_rtp_header_parses_with_aiortc() -> None:
    ext = extension_block(one_byte_element(1, b"0") + one_byte_element(2, audio_level_byte(-30)))
    data = pack_header(111, 65535, 123456, 0xDEADBEEF, True, True) + ext + b"opus"
    params = RTCRtpParameters(
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
            RTCRtpHeaderExtensionParameters(id=2, uri=AUDIO_LEVEL_URI),
        ]
    )
    extensions = HeaderExtensionsMap()
    extensions.configure(params)
    packet = RtpPacket.parse(data, extensions)
    assert (packet.payload_type, packet.sequence_number, packet.timestamp) == (111, 65535, 123456)
    assert packet.ssrc == 0xDEADBEEF and packet.marker == 1 and packet.payload == b"opus"
    assert packet.extensions.mid == "0"
    assert packet.extensions.audio_level == (True, 30)


def test_opus_round_trip_keeps_the_tone() -> None:
    enc, dec = OpusEncoder(32_000), OpusDecoder()
    t = np.arange(FRAME_SAMPLES * 25) / 48_000
    tone = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = [dec.decode(enc.encode(tone[i : i + FRAME_SAMPLES])) for i in range(0, len(t), 960)]
    pcm = np.concatenate(out[5:])
    freqs = np.fft.rfftfreq(len(pcm), 1 / 48_000)
    assert abs(freqs[np.argmax(np.abs(np.fft.rfft(pcm)))] - 440) < 5
    assert dec.decode(b"").shape == (FRAME_SAMPLES,)
    assert dec.decode(b"\xff\xff\xff").shape == (FRAME_SAMPLES,)


def test_jitter_drops_a_standing_excess_packet() -> None:
    jb = JitterBuffer(prefetch=1, max_depth=5, shrink_after=50)
    jb.push(0, b"p0")
    jb.push(1, b"p1")  # one packet more than playout needs, for good
    seq = 2
    for _ in range(49):
        assert jb.pop() is not None
        assert len(jb) == 1
        jb.push(seq, b"x")
        seq += 1
    assert jb.pop() is not None
    assert len(jb) == 0 and jb.stats.dropped == 1  # -20 ms once a full window proved it
    for _ in range(120):  # at target: nothing more is dropped
        jb.push(seq, b"x")
        seq += 1
        assert jb.pop() is not None
    assert jb.stats.dropped == 1
