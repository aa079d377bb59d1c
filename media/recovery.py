"""Recovering lost frames from redundancy without decoding: RED uplinks and the trunk.

``RedUnpacker`` (a speaker's uplink): a browser that negotiated ``audio/red`` sends each
frame again inside the next packet(s); the unpacker turns one packet into the frames it
brings that were not seen yet, each with its own sequence number and timestamp, so the
jitter buffer (origin) or the trunk (relay) gets a frame it lost from the packet after.

``StreamRecovery`` (a relay node, per trunk stream): trunk datagrams carry the previous
frames (media/trunk.py); when a datagram goes missing, the next one brings it back and the
relay forwards it before the new frame. What is still missing becomes a *gap in the
listener's sequence numbers*: the relay does not decode to conceal it, because the
listener's own decoder conceals better than a relay could (it has the decoder state, it can
use the in-band FEC of the packet after the gap, and it knows its own jitter), while
concealing on the relay would cost a decode and a re-encode per stream, add the ≈ 84 ms of a
transcoding hop and turn the listener's FEC-capable stream into a second-generation one.
Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from media import red
from media.mixer import FRAME_SAMPLES
from media.rtp import seq_diff

Frame = tuple[int, int, bytes]  # (sequence, timestamp, Opus payload)
HISTORY = 64


class RedUnpacker:
    """A RED (or plain Opus) uplink packet → the Opus frames it brings that are new."""

    def __init__(self) -> None:
        self._highest: int | None = None
        self._seen = 0  # bit i: sequence (highest - i) already delivered

    def unpack(self, sequence: int, timestamp: int, payload: bytes, is_red: bool) -> list[Frame]:
        if not is_red:
            return [(sequence, timestamp, payload)] if self._fresh(sequence) else []
        try:
            blocks = red.parse(payload)
        except red.RedError:
            return []
        frames = []
        for block in blocks:
            steps, rest = divmod(block.offset, FRAME_SAMPLES)
            if rest or (block.offset and not block.payload):
                continue  # not a whole 20 ms frame back, or an empty (DTX) copy
            seq = (sequence - steps) & 0xFFFF
            if self._fresh(seq):
                frames.append((seq, (timestamp - block.offset) & 0xFFFFFFFF, block.payload))
        return frames

    def _fresh(self, sequence: int) -> bool:
        """Mark SEQUENCE delivered; False when it already was (or is too old to tell)."""
        if self._highest is None:
            self._highest, self._seen = sequence, 1
            return True
        age = seq_diff(self._highest, sequence)
        if age < 0:
            shift = -age
            self._seen = ((self._seen << shift) | 1) & ((1 << HISTORY) - 1)
            self._highest = sequence
            return True
        if age >= HISTORY or (self._seen >> age) & 1:
            return False
        self._seen |= 1 << age
        return True


@dataclass(frozen=True)
class Gap:
    """Frames the relay could not recover: the listener's sequence numbers skip them."""

    frames: int


class StreamRecovery:
    """One trunk stream on the relay: frames in timestamp order, recovered where possible."""

    def __init__(self, max_gap: int = 50) -> None:
        self.max_gap = max_gap  # frames; beyond that the origin restarted or paused
        self._next_ts: int | None = None
        self.recovered = 0
        self.missing = 0

    def receive(
        self, timestamp: int, payload: bytes, redundant: list[red.Block]
    ) -> list[tuple[int, bytes] | Gap]:
        """What to write for one datagram: recovered frames and gaps, then the frame."""
        expected = self._next_ts
        self._next_ts = (timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        if expected is None:
            return [(timestamp, payload)]
        behind = ((timestamp - expected + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        missing, rest = divmod(behind, FRAME_SAMPLES)
        if abs(behind) > self.max_gap * FRAME_SAMPLES:
            return [(timestamp, payload)]  # the origin restarted (a new timeline), not a loss
        if behind < 0 or rest:
            self._next_ts = expected
            return []  # late or duplicate: its turn has passed (the listener concealed it)
        copies = {timestamp - b.offset & 0xFFFFFFFF: b.payload for b in redundant}
        out: list[tuple[int, bytes] | Gap] = []
        for k in range(missing, 0, -1):
            ts = (timestamp - k * FRAME_SAMPLES) & 0xFFFFFFFF
            copy = copies.get(ts)
            if copy:
                self.recovered += 1
                out.append((ts, copy))
            else:
                self.missing += 1
                if out and isinstance(out[-1], Gap):
                    out[-1] = Gap(out[-1].frames + 1)
                else:
                    out.append(Gap(1))
        out.append((timestamp, payload))
        return out


class Redundancy:
    """The sending side of trunk redundancy: each frame goes out with the DEPTH before it."""

    def __init__(self, depth: int = 2) -> None:
        self.depth = depth
        self._frames: list[tuple[int, bytes]] = []

    def blocks(self, timestamp: int, payload: bytes) -> tuple[red.Block, ...]:
        """The earlier frames to send with this one (oldest first); then remember it."""
        earlier = tuple(
            red.Block(0, offset, data)
            for ts, data in self._frames
            if data
            and 0 < (offset := (timestamp - ts) & 0xFFFFFFFF) <= red.MAX_OFFSET
            and len(data) <= red.MAX_BLOCK
        )
        self._frames = [*self._frames, (timestamp, payload)][-self.depth :] if self.depth else []
        return earlier
