"""Turning a lossy packet stream into a continuous signal: PLC, in-band FEC, a timeline.

Two consumers, one rule. The room mixer pops one packet per speaker per tick from its
jitter buffer (``next_frame``); a listening bot receives packets as they arrive and must
write them on the sender's timeline (``Timeline``). Either way, a missing 20 ms frame is
rebuilt from the in-band FEC (LBRR) of the packet after it when that packet is already here,
and otherwise extrapolated by libopus' packet-loss concealment — never removed, never
replaced by silence (unless protection is switched off: the baseline of bench/loss.py).
Pure apart from the decoder: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from media.codec import OpusDecoder
from media.jitter import JitterBuffer
from media.mixer import FRAME_SAMPLES, SILENCE, Pcm, dbov
from media.rtp import seq_diff

QUIET_DBOV = -45.0  # a frame this quiet may be skipped to shrink a jitter buffer


@dataclass
class ConcealStats:
    decoded: int = 0
    fec: int = 0  # missing frames rebuilt from the next packet's in-band FEC
    plc: int = 0  # missing frames extrapolated by packet-loss concealment
    silent: int = 0  # missing frames filled with silence (protection off)


def fill_gap(
    decoder: OpusDecoder, following: bytes | None, protect: bool, stats: ConcealStats
) -> Pcm:
    """One missing frame: FEC from FOLLOWING (the next packet) when here, else PLC."""
    if not protect:
        stats.silent += 1
        return SILENCE
    if following:
        stats.fec += 1
        return decoder.recover(following)
    stats.plc += 1
    return decoder.conceal()


def next_frame(
    jitter: JitterBuffer, decoder: OpusDecoder, protect: bool, stats: ConcealStats
) -> Pcm | None:
    """This tick's frame of one speaker; None while the speaker is idle (not a loss)."""
    return next_frame_and_packet(jitter, decoder, protect, stats)[0]


def next_frame_and_packet(
    jitter: JitterBuffer, decoder: OpusDecoder, protect: bool, stats: ConcealStats
) -> tuple[Pcm | None, bytes | None]:
    """``next_frame`` and the packet the frame was decoded from: None when the frame was
    rebuilt from FEC or concealed (or the speaker is idle) — the room may send that packet
    on as it is (media/passthrough.py) only when it really arrived."""
    payload = jitter.pop()
    if payload is None:
        return None, None
    if not payload:
        return fill_gap(decoder, jitter.peek(), protect, stats), None
    stats.decoded += 1
    pcm = decoder.decode_valid(payload)
    if pcm is None:  # libopus rejected it: concealed, and never sent on as it is
        return decoder.conceal(), None
    if jitter.may_skip and dbov(pcm) < QUIET_DBOV:
        # the buffer holds a frame too many: drop this quiet one rather than speech
        following = jitter.skip()
        if following is not None:
            stats.decoded += 1
            decoded = decoder.decode_valid(following)
            return (decoder.conceal(), None) if decoded is None else (decoded, following)
    return pcm, payload


class Timeline:
    """A received RTP stream back on the sender's clock, for a recording bot.

    ``push`` packets as they arrive (any order); frames come out in order, one per 20 ms of
    RTP time. A packet waits at most ``window`` packets for an earlier one (reordering);
    after that the earlier one is lost and concealed. A jump in timestamps with no missing
    sequence numbers (a relay that could not recover a trunk datagram) is concealed too.
    """

    def __init__(self, protect: bool = True, window: int = 3, max_gap: int = 500) -> None:
        self.protect = protect
        self.window = window
        self.max_gap = max_gap  # frames; a longer jump is a restart (the caller fills it)
        self.restarts = 0
        self.decoder = OpusDecoder()
        self.stats = ConcealStats()
        self._packets: dict[int, tuple[int, bytes]] = {}  # seq → (timestamp, payload)
        self._next_seq: int | None = None
        self._next_ts = 0

    def push(self, sequence: int, timestamp: int, payload: bytes) -> list[Pcm]:
        """Add one packet (primary or a redundant copy); returns the frames now final."""
        if self._next_seq is None:
            self._next_seq, self._next_ts = sequence, timestamp
        if seq_diff(sequence, self._next_seq) < 0 or sequence in self._packets:
            return []  # late (already concealed) or a duplicate
        self._packets[sequence] = (timestamp, payload)
        return self._release(final=False)

    def flush(self) -> list[Pcm]:
        """Everything still waiting, gaps concealed (end of the recording)."""
        return self._release(final=True)

    def _release(self, final: bool) -> list[Pcm]:
        out: list[Pcm] = []
        while self._packets:
            assert self._next_seq is not None
            ahead = max(seq_diff(s, self._next_seq) for s in self._packets)
            entry = self._packets.pop(self._next_seq, None)
            if entry is None and not final and ahead < self.window:
                break  # it may still come
            if entry is None:
                following = self._packets.get((self._next_seq + 1) & 0xFFFF)
                out.append(
                    fill_gap(
                        self.decoder, following[1] if following else None, self.protect, self.stats
                    )
                )
                self._next_ts = (self._next_ts + FRAME_SAMPLES) & 0xFFFFFFFF
            else:
                timestamp, payload = entry
                out.extend(self._timestamp_gap(timestamp, payload))
                self.stats.decoded += 1
                out.append(self.decoder.decode(payload))
                self._next_ts = (timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
            self._next_seq = (self._next_seq + 1) & 0xFFFF
        return out

    def _timestamp_gap(self, timestamp: int, payload: bytes) -> list[Pcm]:
        """Frames missing between the last frame out and TIMESTAMP (same sequence run)."""
        gap = ((timestamp - self._next_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        frames = round(gap / FRAME_SAMPLES)
        if frames < -self.max_gap:
            self.restarts += 1
        if frames <= 0:
            return []
        if frames > self.max_gap:
            self.restarts += 1  # a new timeline (the origin restarted): nothing to conceal
            return []
        out = [
            fill_gap(self.decoder, payload if i == frames - 1 else None, self.protect, self.stats)
            for i in range(frames)
        ]
        return out
