"""DTX, pure: the facts behind the decision in docs/media.md ("DTX", measured by bench/dtx.py).

No network, no clock. The room encoder's settings (32 kbit/s, in-band FEC) with libopus'
DTX on; what a listener is sent follows libwebrtc's rule (a ≤ 2-byte packet only when the
one before was not one), with sequence numbers only for packets sent and timestamps on the
tick clock (RFC 3551 §4.1).
"""

from __future__ import annotations

import numpy as np
import pytest

from media.conceal import Timeline
from media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from media.opus import OPUS_SET_DTX_REQUEST, Decoder, Encoder
from tests.support.audio import voiced

SILENCE = np.zeros(FRAME_SAMPLES, dtype=np.float32)


def encode(frames: list[np.ndarray], dtx: bool) -> list[bytes]:
    encoder = Encoder(SAMPLE_RATE, 32_000, fec=True)
    if dtx:
        encoder.ctl(OPUS_SET_DTX_REQUEST, 1)
    return [encoder.encode(frame) for frame in frames]


def sent(packets: list[bytes]) -> list[tuple[int, bytes]]:
    """(tick, packet) a listener gets: the first ≤ 2-byte packet of a run, not the rest."""
    out, previous_empty = [], False
    for tick, packet in enumerate(packets):
        empty = len(packet) <= 2
        if not (empty and previous_empty):
            out.append((tick, packet))
        previous_empty = empty
    return out


def talk_pause_talk() -> list[np.ndarray]:
    pcm = voiced(1.0)
    speech = [pcm[i : i + FRAME_SAMPLES] for i in range(0, len(pcm), FRAME_SAMPLES)]
    return speech + [SILENCE] * 100 + speech  # 1 s, 2 s of digital silence, 1 s


@pytest.mark.timeout(30)
def test_dtx_leaves_about_one_packet_in_ten_of_digital_silence() -> None:
    silence = [SILENCE] * 250  # 5 s
    assert all(len(p) > 2 for p in encode(silence, dtx=False))
    with_dtx = encode(silence, dtx=True)
    assert sum(len(p) <= 2 for p in with_dtx) > 200  # TOC-only packets: the encoder is in DTX
    kept = sent(with_dtx)
    assert len(kept) <= 0.15 * len(silence)  # bench/dtx.py: 5.0 packets/s instead of 50
    assert any(len(p) > 2 for _, p in kept[5:])  # the periodic comfort-noise updates still go


@pytest.mark.timeout(30)
def test_the_bots_timeline_keeps_its_length_across_a_dtx_gap() -> None:
    """Timestamps jump, sequence numbers do not: the Timeline conceals the gap frame by
    frame (PLC), so a recording stays as long as the session and speech comes back."""
    frames = talk_pause_talk()
    kept = sent(encode(frames, dtx=True))
    assert len(kept) < len(frames) - 50
    timeline = Timeline()
    out = []
    for seq, (tick, packet) in enumerate(kept):
        out += timeline.push(seq, tick * FRAME_SAMPLES, packet)
    out += timeline.flush()
    assert kept[-1][0] == len(frames) - 1 and len(out) == len(frames)
    second = np.concatenate(out[150:200])
    reference = Decoder(SAMPLE_RATE, FRAME_SAMPLES)
    plain = [reference.decode(p) for p in encode(frames, dtx=False)]
    expected = np.concatenate(plain[150:200])
    ratio_db = 10 * np.log10(np.sum(second**2) / np.sum(expected**2))
    assert abs(ratio_db) < 1.0  # speech is back at its level after the pause
    # the gap is counted as concealment today: a DTX-aware bot would count it apart
    assert timeline.stats.plc + timeline.stats.fec >= 50


@pytest.mark.timeout(30)
def test_the_first_frame_after_concealment_is_faded_in() -> None:
    """Why plain DTX costs the onset (bench/dtx.py): the receiving decoder conceals the
    suppressed frames and fades the first coded frames in; the same packets with one coded
    silence frame before the onset decode it at full level."""
    frames = talk_pause_talk()
    with_dtx = encode(frames, dtx=True)
    onset = 150
    assert len(with_dtx[onset - 1]) <= 2 and len(with_dtx[onset]) > 2
    silence_frame = encode([SILENCE] * 5, dtx=False)[-1]

    def first_frames(primer: bool) -> float:
        decoder = Decoder(SAMPLE_RATE, FRAME_SAMPLES)
        for packet in with_dtx[: onset - 1]:
            decoder.decode(packet)  # a ≤ 1-byte packet decodes as concealment
        if primer:
            decoder.decode(silence_frame)
        else:
            decoder.conceal()
        pcm = np.concatenate([decoder.decode(p) for p in with_dtx[onset : onset + 2]])
        return float(np.sum(pcm**2))

    assert first_frames(primer=False) < 0.9 * first_frames(primer=True)
