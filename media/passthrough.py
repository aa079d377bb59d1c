"""Pass-through: a lone speaker's own Opus packet goes to listeners instead of the room's.

The room encodes its mix once per tick; with one speaker that mix is the speaker's decoded
frame (``mixer.mix`` sums and clips, no gain, so one frame comes out as it went in), and
encoding it again is a second codec generation: PESQ-wb 3.76–3.79 for the two generations
against 3.94–3.95 for libopus alone (docs/performance.md, "Loss"). So on a tick whose mix has
exactly one contributing speaker, and whose frame of that speaker was decoded from a packet
that really arrived (not rebuilt from in-band FEC, not concealed), that packet's payload is
what listeners get; the room's encoder still encodes the mix every tick, so the ticks that
fall back (a second speaker, a lost uplink packet) find it warm.

What a packet must be to pass: 20 ms of audio (RFC 6716 §3.1: the TOC byte's configuration
gives the frame duration, its code the frame count), at most ``MAX_PASSED`` bytes, from a
speaker whose recent packets average no more than ``max_bitrate`` — the node pays the
speaker's bitrate once per listener, so a speaker cannot make it send more than the
operator allows (above the bound the room's own encoding goes out, as without
pass-through). Pure: no I/O, no clock; the mixer calls it once per tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FRAME_SAMPLES = 960  # 20 ms at 48 kHz: the room's frame
# The largest packet passed on (156 kbit/s for one frame; libopus allows 1275 bytes): what
# goes out must fit every leg's redundancy — a trunk datagram carries a frame and its two
# predecessors in at most 1200 bytes (media/trunk.py: 3 × 390 + the RFC 2198 headers), a
# listener's RED packet a frame and two predecessors (red.RED_DEPTH) under the fan-out's
# 1356-byte limit.
MAX_PASSED = 390
TICKS_PER_SECOND = 50
AVERAGE_TICKS = 50  # the bitrate bound is on a moving average over about one second

# RFC 6716 §3.1, Table 2: frame duration in 48 kHz samples by TOC configuration number
_SILK = (480, 960, 1920, 2880)  # configs 0-11: 10, 20, 40, 60 ms
_HYBRID = (480, 960)  # configs 12-15: 10, 20 ms
_CELT = (120, 240, 480, 960)  # configs 16-31: 2.5, 5, 10, 20 ms


def opus_samples(payload: bytes) -> int:
    """48 kHz samples in one Opus packet (RFC 6716 §3.1, §3.2); 0 when it is malformed."""
    if not payload:
        return 0
    toc = payload[0]
    config = toc >> 3
    if config < 12:
        frame = _SILK[config % 4]
    elif config < 16:
        frame = _HYBRID[config % 2]
    else:
        frame = _CELT[config % 4]
    code = toc & 0x3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        if len(payload) < 2:
            return 0
        count = payload[1] & 0x3F
        if count == 0:
            return 0
    total = frame * count
    return total if total <= 5760 else 0  # a packet holds at most 120 ms (§3.2.5)


@dataclass
class PassThroughStats:
    passed: int = 0  # ticks that sent the lone speaker's packet
    mixed: int = 0  # ticks with sound that sent the room's encoding (not alone, or not a packet)
    too_fast: int = 0  # of those, the speaker's bitrate was above the bound


class PassThrough:
    """Chooses, each tick, whether the room sends a speaker's own packet (one per room)."""

    def __init__(self, max_bitrate: int) -> None:
        if max_bitrate < 1:
            raise ValueError("max_bitrate must be positive")
        # the moving average is of bytes per packet; one 20 ms packet a tick
        self._max_bytes = max_bitrate / 8 / TICKS_PER_SECOND
        self._average: dict[str, float] = {}
        self.stats = PassThroughStats()

    def forget(self, speaker: str) -> None:
        self._average.pop(speaker, None)

    def choose(self, packets: Mapping[str, bytes | None]) -> bytes | None:
        """PACKETS: this tick's contributing speakers and, for each, the packet its frame
        was decoded from (None: rebuilt or concealed). The payload to send instead of the
        room's encoding, or None."""
        # (the loop may ``forget`` a speaker meanwhile: single dict operations, and the
        # values used below are this call's own)
        average = self._average
        now: dict[str, float] = {}
        for name, packet in packets.items():
            if packet is not None:
                before = average.get(name)
                size = float(len(packet))
                now[name] = size if before is None else before + (size - before) / AVERAGE_TICKS
                average[name] = now[name]
        if not packets:
            return None
        if len(packets) != 1:
            self.stats.mixed += 1
            return None
        ((name, packet),) = packets.items()
        if packet is None or len(packet) > MAX_PASSED or opus_samples(packet) != FRAME_SAMPLES:
            self.stats.mixed += 1
            return None
        if now[name] > self._max_bytes:
            self.stats.mixed += 1
            self.stats.too_fast += 1
            return None
        self.stats.passed += 1
        return packet
