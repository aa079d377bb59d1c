"""Packet loss, pure: concealment and FEC, RED (RFC 2198), trunk redundancy and recovery.

No network, no clock: an encoded stream is cut by hand and put back together.
"""

from __future__ import annotations

import numpy as np
import pytest

from media import red
from media.codec import OpusDecoder, OpusEncoder
from media.conceal import ConcealStats, Timeline, next_frame
from media.jitter import JitterBuffer
from media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from media.recovery import Gap, Redundancy, RedUnpacker, StreamRecovery
from media.trunk import Frame, Kind, TrunkError

FRAMES = 150  # 3 s


def voice(seconds: float = FRAMES * 0.02) -> np.ndarray:
    """A voiced, speech-like signal (gliding 140 Hz pitch, harmonics, syllable rhythm):
    libopus codes it in SILK/hybrid mode, the modes that carry in-band FEC."""
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    x = sum((1 / k) * np.sin(k * phase) for k in range(1, 25))
    x *= 0.5 * (1 + np.sin(2 * np.pi * 3 * t))
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


def encode(pcm: np.ndarray, loss_percent: int = 10) -> list[bytes]:
    encoder = OpusEncoder(32_000)
    encoder.set_packet_loss(loss_percent)
    return [encoder.encode(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(FRAMES)]


def has_lbrr(packet: bytes) -> bool:
    """A mono 20 ms SILK/hybrid packet's LBRR flag: the second bit after the TOC byte
    (RFC 6716 §4.2.3: VAD flag, then LBRR flag, each one bit at probability 1/2)."""
    return (packet[0] >> 3) < 16 and bool((packet[1] >> 6) & 1)


def error(decoded: np.ndarray, original: np.ndarray) -> float:
    """Mean squared error after aligning for the codec's delay (best lag within 10 ms)."""
    best = np.inf
    for lag in range(0, 480, 8):
        a = decoded[lag : lag + len(original) - 480]
        b = original[: len(a)]
        best = min(best, float(np.mean((a - b) ** 2)))
    return best


def through_timeline(
    packets: list[bytes], drop: set[int], protect: bool
) -> tuple[np.ndarray, ConcealStats]:
    timeline = Timeline(protect=protect)
    frames = []
    for i, packet in enumerate(packets):
        if i not in drop:
            frames += timeline.push(1000 + i, 5000 + i * FRAME_SAMPLES, packet)
    frames += timeline.flush()
    return np.concatenate(frames), timeline.stats


def test_every_tenth_packet_lost_keeps_the_length_and_beats_silence() -> None:
    original = voice()
    packets = encode(original)
    assert sum(map(has_lbrr, packets)) > FRAMES // 2  # the encoder did add FEC
    drop = set(range(5, FRAMES - 1, 10))
    concealed, stats = through_timeline(packets, drop, protect=True)
    silent, silent_stats = through_timeline(packets, drop, protect=False)
    assert len(concealed) == len(silent) == FRAMES * FRAME_SAMPLES
    assert stats.fec == len(drop) and stats.plc == 0  # the next packet was always there
    assert silent_stats.silent == len(drop)
    assert error(concealed, original) < 0.8 * error(silent, original)
    # and the lost frames sound: their level is the original's, not a hole
    lost = [slice(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES) for i in sorted(drop)]
    level = np.mean([np.sqrt(np.mean(concealed[s] ** 2)) for s in lost])
    original_level = np.mean([np.sqrt(np.mean(original[s] ** 2)) for s in lost])
    assert 0.5 * original_level < level < 2 * original_level


def test_fec_beats_plc_and_plc_beats_silence() -> None:
    original = voice()
    packets = encode(original)
    drop = set(range(5, FRAMES - 1, 10))

    def decode(mode: str) -> np.ndarray:
        decoder = OpusDecoder()
        out = []
        for i, packet in enumerate(packets):
            if i not in drop:
                out.append(decoder.decode(packet))
            elif mode == "fec":
                out.append(decoder.recover(packets[i + 1]))
            elif mode == "plc":
                out.append(decoder.conceal())
            else:
                out.append(np.zeros(FRAME_SAMPLES, dtype=np.float32))
        return np.concatenate(out)

    fec, plc, silence = (error(decode(m), original) for m in ("fec", "plc", "silence"))
    assert fec < plc < silence


def test_the_mixer_conceals_from_its_jitter_buffer() -> None:
    packets = encode(voice())
    jitter = JitterBuffer(prefetch=2, max_depth=6)
    decoder, stats = OpusDecoder(), ConcealStats()
    frames = []
    for i, packet in enumerate(packets):
        if i % 10 != 5:
            jitter.push(i, packet)
        pcm = next_frame(jitter, decoder, True, stats)
        if pcm is not None:
            frames.append(pcm)
    assert stats.fec == FRAMES // 10  # the packet after each loss was already queued
    assert stats.plc == 0 and len(frames) == FRAMES - 1  # one frame still in the buffer


def test_a_timestamp_jump_without_a_sequence_gap_is_concealed() -> None:
    """A relay that could not recover a trunk frame and did not skip a sequence number."""
    packets = encode(voice())[:10]
    timeline = Timeline()
    frames = []
    for i, packet in enumerate(packets):
        if i != 4:
            seq = i if i < 4 else i - 1
            frames += timeline.push(seq, i * FRAME_SAMPLES, packet)
    frames += timeline.flush()
    assert len(frames) == 10 and timeline.stats.fec == 1


def test_reordered_packets_are_put_back_in_order() -> None:
    packets = encode(voice())[:20]
    order = list(range(20))
    order[3], order[4] = order[4], order[3]
    order[10], order[12] = order[12], order[10]
    timeline, reference = Timeline(), Timeline()
    got = [f for i in order for f in timeline.push(i, i * FRAME_SAMPLES, packets[i])]
    want = [f for i in range(20) for f in reference.push(i, i * FRAME_SAMPLES, packets[i])]
    got += timeline.flush()
    want += reference.flush()
    assert timeline.stats.plc == timeline.stats.fec == 0
    assert np.array_equal(np.concatenate(got), np.concatenate(want))


# ---- RED (RFC 2198) --------------------------------------------------------------------


def independent_red_parse(payload: bytes) -> tuple[int, list[tuple[int, int, bytes]]]:
    """RFC 2198 §3 read straight from the RFC, sharing no code with media/red.py:
    (primary payload type, [(block PT, timestamp offset, data), ... primary last])."""
    headers = []
    i = 0
    while payload[i] & 0x80:
        pt = payload[i] & 0x7F
        offset = (payload[i + 1] << 6) | (payload[i + 2] >> 2)
        length = ((payload[i + 2] & 0x03) << 8) | payload[i + 3]
        headers.append((pt, offset, length))
        i += 4
    primary_pt = payload[i] & 0x7F
    i += 1
    blocks = []
    for pt, offset, length in headers:
        blocks.append((pt, offset, payload[i : i + length]))
        i += length
    blocks.append((primary_pt, 0, payload[i:]))
    return primary_pt, blocks


def test_red_from_the_encode_once_stream_parses_independently() -> None:
    packets = encode(voice())[:5]
    stream = red.RedStream(depth=1)
    for n, packet in enumerate(packets):
        stream.push(packet, 7000 + n * FRAME_SAMPLES)
        payload = stream.payload(111)
        assert stream.payload(111) is payload  # built once per tick, shared
        primary_pt, blocks = independent_red_parse(payload)
        assert primary_pt == 111
        assert blocks[-1] == (111, 0, packet)
        if n:
            assert blocks[:-1] == [(111, FRAME_SAMPLES, packets[n - 1])]
        else:
            assert blocks[:-1] == []
        assert [(b.payload_type, b.offset, b.payload) for b in red.parse(payload)] == blocks
    assert independent_red_parse(stream.payload(96))[0] == 96


def test_red_fixed_vector_and_errors() -> None:
    payload = red.build(111, b"PRIM", [red.Block(111, 960, b"ab")])
    assert payload == bytes([0x80 | 111, 0x0F, 0x00, 0x02, 111]) + b"abPRIM"
    assert red.parse(payload) == [red.Block(111, 960, b"ab"), red.Block(111, 0, b"PRIM")]
    with pytest.raises(red.RedError, match="red: header runs past the payload"):
        red.parse(b"")
    with pytest.raises(red.RedError, match="red: truncated block header"):
        red.parse(bytes([0x80 | 111, 0]))
    with pytest.raises(red.RedError, match="red: block runs past the payload"):
        red.parse(bytes([0x80 | 111, 0x0F, 0x00, 0x09, 111]) + b"ab")
    with pytest.raises(red.RedError, match=r"timestamp offset must be 1\.\.16383"):
        red.build(111, b"", [red.Block(111, 1 << 14, b"x")])


def test_a_red_uplink_fills_the_gap_of_a_lost_packet() -> None:
    packets = encode(voice())[:10]
    stream, unpacker = red.RedStream(depth=1), RedUnpacker()
    got: dict[int, bytes] = {}
    for n, packet in enumerate(packets):
        stream.push(packet, n * FRAME_SAMPLES)
        if n == 4:
            continue  # lost
        for seq, timestamp, payload in unpacker.unpack(
            n, n * FRAME_SAMPLES, stream.payload(111), True
        ):
            assert seq not in got and timestamp == seq * FRAME_SAMPLES
            got[seq] = payload
    assert got == dict(enumerate(packets))


def test_loss_reports_switch_red_on_and_off_again() -> None:
    reports = red.LossReports()
    assert not reports.lossy
    reports.add(13)  # 5 %
    assert reports.lossy and reports.percent == 5
    for _ in range(red.RED_HOLD_REPORTS - 1):
        reports.add(0)
    assert reports.lossy
    reports.add(0)
    assert not reports.lossy


def test_offer_red_adds_the_codec_the_node_then_finds() -> None:
    sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96 0\r\na=rtpmap:96 opus/48000/2\r\na=mid:0\r\n"
    offered = red.offer_red(sdp, 63, 96)
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 96 0 63\r\n" in offered
    assert "a=rtpmap:63 red/48000/2\r\na=fmtp:63 96/96\r\n" in offered


# ---- the trunk -------------------------------------------------------------------------


def test_trunk_frames_carry_earlier_frames_and_round_trip() -> None:
    redundancy = Redundancy(depth=2)
    frames = [
        Frame(
            Kind.MIX,
            0,
            n,
            n * FRAME_SAMPLES,
            127,
            bytes([n]) * 3,
            redundancy.blocks(n * FRAME_SAMPLES, bytes([n]) * 3),
        )
        for n in range(4)
    ]
    assert [len(f.redundant) for f in frames] == [0, 1, 2, 2]
    assert frames[3].redundant == (
        red.Block(0, 2 * FRAME_SAMPLES, b"\x01" * 3),
        red.Block(0, FRAME_SAMPLES, b"\x02" * 3),
    )
    for frame in frames:
        assert Frame.parse(frame.serialize()) == frame
    # fixed vector: kind byte with the 0x80 flag, then an RFC 2198 payload with PT 0
    wire = frames[1].serialize()
    assert wire[0] == 0x80 | Kind.MIX
    assert wire[10:] == bytes([0x80, 0x0F, 0x00, 0x03, 0x00]) + b"\x00" * 3 + b"\x01" * 3
    with pytest.raises(TrunkError, match="frame: red: block runs past the payload"):
        Frame.parse(wire[:-4])


def test_the_relay_recovers_lost_datagrams_and_leaves_gaps_for_the_rest() -> None:
    redundancy, recovery = Redundancy(depth=2), StreamRecovery()
    sent = []
    for n in range(12):
        ts = n * FRAME_SAMPLES
        payload = bytes([n + 1])
        sent.append((ts, payload, list(redundancy.blocks(ts, payload))))
    lost = {3, 6, 7, 8, 9, 10}  # 3 alone; 6-10 a burst of five
    out: list[tuple[int, bytes] | Gap] = []
    for n, (ts, payload, blocks) in enumerate(sent):
        if n not in lost:
            out += recovery.receive(ts, payload, blocks)
    written = [x for x in out if not isinstance(x, Gap)]
    gaps = [x for x in out if isinstance(x, Gap)]
    # 3 comes back from 4; from the burst 6..10 only 9 and 10 come back (from 11)
    assert [ts // FRAME_SAMPLES for ts, _ in written] == [0, 1, 2, 3, 4, 5, 9, 10, 11]
    assert gaps == [Gap(3)] and recovery.recovered == 3 and recovery.missing == 3
    assert all(payload == bytes([ts // FRAME_SAMPLES + 1]) for ts, payload in written)


# ---- the protected jitter buffer -------------------------------------------------------


def test_stretch_plays_a_late_packet_instead_of_dropping_it() -> None:
    jitter = JitterBuffer(prefetch=1, max_depth=6, stretch=True)
    jitter.push(1, b"one")
    assert jitter.pop() == b"one"
    assert jitter.pop() == b""  # packet 2 is late: conceal this tick, keep its turn
    jitter.push(2, b"two")
    assert jitter.pop() == b"two"
    assert (jitter.stats.stretched, jitter.stats.late, jitter.stats.lost) == (1, 0, 0)
    # without stretch the same late packet is concealed AND dropped
    plain = JitterBuffer(prefetch=1, max_depth=6)
    plain.push(1, b"one")
    assert plain.pop() == b"one" and plain.pop() == b""
    plain.push(2, b"two")
    assert plain.stats.late == 1 and len(plain) == 0


def test_stretch_counts_the_concealed_tick_as_the_turn_of_a_packet_never_sent() -> None:
    jitter = JitterBuffer(prefetch=1, max_depth=6, stretch=True)
    jitter.push(1, b"one")
    assert jitter.pop() == b"one"
    assert jitter.pop() == b""  # waiting for 2 ...
    jitter.push(3, b"three")  # ... which is lost: 3 plays next, no second concealment
    assert jitter.pop() == b"three"


def test_standing_excess_is_given_back_in_a_quiet_frame() -> None:
    encoder = OpusEncoder()
    loud = encoder.encode(voice(0.02))
    quiet = [encoder.encode(np.zeros(FRAME_SAMPLES, dtype=np.float32)) for _ in range(10)]
    jitter = JitterBuffer(prefetch=2, max_depth=8, shrink_after=5, stretch=True)
    decoder, stats = OpusDecoder(), ConcealStats()
    seq = 0
    for _ in range(2):  # with one pushed per pop: one packet more than playout needs
        jitter.push(seq, loud)
        seq += 1
    for _ in range(8):  # speech: nothing is skipped while it is loud
        jitter.push(seq, loud)
        seq += 1
        next_frame(jitter, decoder, True, stats)
    assert jitter.may_skip and jitter.stats.dropped == 0
    for packet in quiet:  # a pause: one quiet frame is skipped, once
        jitter.push(seq, packet)
        seq += 1
        next_frame(jitter, decoder, True, stats)
    assert jitter.stats.dropped == 1 and len(jitter) == 1  # back to what playout needs


def test_a_burst_excess_in_sound_without_pauses_is_cut_after_force_after_ticks() -> None:
    """A continuous tone has no quiet frame: without FORCE_AFTER a burst of excess stays
    (the speaker stays behind for good); with it, the excess is cut to one frame."""
    encoder = OpusEncoder()
    loud = encoder.encode(voice(0.02))

    def run(force_after: int | None) -> tuple[int, int]:
        jitter = JitterBuffer(
            prefetch=1, max_depth=12, shrink_after=250, stretch=True, force_after=force_after
        )
        decoder, stats = OpusDecoder(), ConcealStats()
        seq = 0
        for _ in range(6):  # a sender that stalled, then sent what it owed: 5 frames extra
            jitter.push(seq, loud)
            seq += 1
        for _ in range(30):  # then one packet per tick, all loud
            jitter.push(seq, loud)
            seq += 1
            next_frame(jitter, decoder, True, stats)
        return len(jitter), jitter.stats.dropped

    assert run(None) == (6, 0)  # never given back while the sound goes on
    assert run(10) == (1, 5)  # cut to one frame of excess after 10 ticks


def test_a_restarted_origin_is_a_new_timeline_not_a_loss() -> None:
    """After an origin restart its mixer's timestamps start anywhere: the relay forwards
    at once (it neither waits for a 'late' frame nor fills a gap), and a recording bot
    neither conceals nor fills the jump itself (it pads the outage by the wall clock)."""
    for jump in (-(1 << 30), 1 << 30):
        recovery = StreamRecovery()
        assert recovery.receive(10_000, b"a", []) == [(10_000, b"a")]
        restarted = (10_000 + jump) & 0xFFFFFFFF
        assert recovery.receive(restarted, b"b", []) == [(restarted, b"b")]
        assert recovery.receive(restarted + FRAME_SAMPLES, b"c", []) == [
            (restarted + FRAME_SAMPLES, b"c")
        ]
        packets = encode(voice())[:4]
        timeline = Timeline()
        frames = timeline.push(0, 10_000, packets[0])
        frames += timeline.push(1, 10_000 + FRAME_SAMPLES, packets[1])
        frames += timeline.push(2, restarted, packets[2])
        frames += timeline.push(3, restarted + FRAME_SAMPLES, packets[3])
        frames += timeline.flush()
        assert timeline.restarts == 1 and len(frames) == 4
        assert timeline.stats.plc == timeline.stats.fec == 0


def test_adaptive_depth_plays_at_once_until_a_loss_then_keeps_one_ahead_for_fec() -> None:
    jitter = JitterBuffer(prefetch=1, loss_prefetch=2, max_depth=12, stretch=True, calm_ticks=5)
    seq = 0

    def arrive_and_pop(lost: bool = False) -> bytes | None:
        nonlocal seq
        if not lost:
            jitter.push(seq, bytes([seq]))
        seq += 1
        return jitter.pop()

    # a clean stream plays each packet on the tick it arrives: no added latency
    assert [arrive_and_pop() for _ in range(3)] == [b"\x00", b"\x01", b"\x02"]
    assert jitter.prefetch == 1 and jitter.peek() is None
    assert arrive_and_pop(lost=True) == b""  # packet 3 lost: concealed (no FEC to use yet)
    assert arrive_and_pop() == b"\x04"
    assert jitter.prefetch == 2
    # the next tick is concealed on purpose: from then on one packet waits in the buffer
    assert arrive_and_pop() == b""
    assert arrive_and_pop() == b"\x05" and jitter.peek() == b"\x06"
    # so the next loss finds the packet after it already here (its FEC rebuilds the frame)
    assert arrive_and_pop(lost=True) == b"\x06"
    assert jitter.pop() == b"" and jitter.peek() is None  # 7's turn; 8 is not sent yet
    # after calm_ticks without a loss it goes back to the low-latency depth
    for _ in range(6):
        assert arrive_and_pop() is not None
    assert jitter.prefetch == 1


def test_adaptive_depth_refuses_a_loss_prefetch_below_prefetch() -> None:
    with pytest.raises(ValueError, match="loss_prefetch"):
        JitterBuffer(prefetch=2, loss_prefetch=1)


def _steady(jitter: JitterBuffer, packet: bytes, seq: int, ticks: int) -> int:
    """One packet arrives per tick, the mixer pops once per tick: returns the next seq."""
    decoder, stats = OpusDecoder(), ConcealStats()
    for _ in range(ticks):
        jitter.push(seq, packet)
        seq += 1
        next_frame(jitter, decoder, True, stats)
    return seq


def test_the_clock_catching_up_after_a_late_pass_costs_no_frame() -> None:
    """The mixer's clock runs up to 100 ms of missed slots back to back after a late pass
    (media/ticker.py): the packets that arrived meanwhile are queued, and those catch-up
    pops drain them. That excess is the node's own lateness, not a sender's burst: skipping
    a (quiet) frame for it made the buffer one frame short, so the next slightly late
    packet was stretched — a frame removed and a concealed one inserted, for nothing."""
    encoder = OpusEncoder()
    quiet = encoder.encode(np.zeros(FRAME_SAMPLES, dtype=np.float32))
    jitter = JitterBuffer(prefetch=1, max_depth=12, shrink_after=250, stretch=True, force_after=50)
    decoder, stats = OpusDecoder(), ConcealStats()
    seq = _steady(jitter, quiet, 0, 10)
    for _ in range(5):  # the clock was 100 ms late: five packets wait for it
        jitter.push(seq, quiet)
        seq += 1
    for _ in range(5):  # ... and its five catch-up passes run back to back
        next_frame(jitter, decoder, True, stats)
    seq = _steady(jitter, quiet, seq, 20)
    assert jitter.stats.dropped == 0 and jitter.stats.stretched == 0
    assert jitter.stats.played == 35


def test_a_sender_burst_is_still_given_back_in_quiet_frames() -> None:
    """A sender that stalled and then sent what it owed leaves an excess that stands
    (one packet keeps arriving per tick): it is given back, one quiet frame at a time."""
    encoder = OpusEncoder()
    quiet = encoder.encode(np.zeros(FRAME_SAMPLES, dtype=np.float32))
    jitter = JitterBuffer(prefetch=1, max_depth=12, shrink_after=250, stretch=True, force_after=50)
    for seq in range(6):  # 100 ms owed, then sent at once
        jitter.push(seq, quiet)
    _steady(jitter, quiet, 6, 30)
    assert jitter.stats.dropped >= 3 and len(jitter) <= 2


def test_a_give_back_followed_by_another_stretch_doubles_the_hold() -> None:
    """A stretch's 20 ms is given back after a hold without needing it; when the stream is
    late again soon after a give-back, that give-back was premature (the jitter recurs:
    on a loaded machine every cycle cost a concealed frame and a skipped one), so the next
    hold is twice as long, up to MAX_HOLD."""
    encoder = OpusEncoder()
    quiet = encoder.encode(np.zeros(FRAME_SAMPLES, dtype=np.float32))
    decoder, stats = OpusDecoder(), ConcealStats()

    def run(max_hold: int | None) -> list[int]:
        jitter = JitterBuffer(
            prefetch=1, max_depth=12, shrink_after=20, stretch=True, max_hold=max_hold
        )
        seq, tick, gave_back = 0, 0, []

        def step(late: bool = False) -> None:
            nonlocal seq, tick
            if not late:
                jitter.push(seq, quiet)
                seq += 1
            dropped = jitter.stats.dropped
            next_frame(jitter, decoder, True, stats)
            if late:  # it comes just after its tick: concealed, then played in turn
                jitter.push(seq, quiet)
                seq += 1
            if jitter.stats.dropped > dropped:
                gave_back.append(tick)
            tick += 1

        for _ in range(5):
            step()
        step(late=True)  # tick 5: stretched, one frame of excess from now on
        for _ in range(40):
            step()  # given back after the hold (20 ticks)
        step(late=True)  # late again, soon after the give-back
        for _ in range(100):
            step()
        return gave_back

    # late at tick 5 and again at 46, 6 ticks after the first give-back (tick 40)
    assert run(None) == [40, 81]  # the same 20-tick hold: the cycle goes on
    assert run(80) == [40, 121]  # the hold doubled to 40 ticks


def test_a_burst_is_trimmed_when_the_next_sequence_number_is_zero() -> None:
    """Sequence number 0 (a stream's start, or every 65 536 packets) once read as 'no
    packet to play yet', and a burst past max_depth was then never trimmed."""
    jitter = JitterBuffer(prefetch=1, max_depth=12, stretch=True)
    for seq in range(40):
        jitter.push(seq, b"\x08")
    assert len(jitter) == 4 and jitter.stats.dropped == 36  # trimmed at 13, 25 and 37 queued
