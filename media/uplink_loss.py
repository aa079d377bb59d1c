"""The speaker's uplink loss: the node reports it, the bot's encoder follows it.

Node side (``uplink_counter``): the node takes a speaker's RTP at the receiver's raw hook
(media/session.py), so aiortc's receiver never counts it and its RTCP loop sends no
receiver report blocks. ``uplink_counter`` feeds each packet to aiortc's own
per-SSRC ``StreamStatistics`` (RFC 3550 A.3: expected, received, fraction lost), kept in
the receiver's private ``_RTCRtpReceiver__remote_streams`` dict — the one place that
reaches into aiortc for this (tests/media/test_media_uplink_loss.py pins it). aiortc's
receiver loop then reports every 0.5–1.5 s as it would for a stream it decoded itself.
One SSRC at a time: a client that changes SSRC on every packet cannot grow the dict.

Bot side (``UplinkLoss``): libwebrtc's Opus encoder (``AudioEncoderOpusImpl``, used by
Chrome and Firefox) smooths the fraction lost of each receiver report with an exponential
filter of time constant 10 s, clamps it to 20 % and sets libopus' expected packet loss
(``OPUS_SET_PACKET_LOSS_PERC``) to it in whole percent; libopus spends bits on in-band FEC
(LBRR) only while that is non-zero. ``UplinkLoss`` does the same, except that it rises
with a time constant of 1 s, so FEC is there within a few reports of loss starting (a
10 s rise leaves the first seconds of a lossy call unprotected); it falls with libwebrtc's
10 s. A clean network's reports (fraction lost 0) keep it at exactly 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics
from aiortc.rtp import RtpPacket

from media.mixer import SAMPLE_RATE

RISE_SECONDS = 1.0  # time constant while reports show more loss than the average
FALL_SECONDS = 10.0  # libwebrtc's PacketLossFractionSmoother (alpha 0.9999 per ms)
MAX_PERCENT = 20  # libwebrtc's kMaxPacketLossFraction
_STREAMS = "_RTCRtpReceiver__remote_streams"


class UplinkLoss:
    """Receiver reports' "fraction lost" (0–255) → the encoder's expected loss (0–20 %)."""

    def __init__(self) -> None:
        self.average = 0.0  # smoothed loss fraction, 0..1
        self.reports = 0
        self.peak = 0  # the highest percent set so far
        self._last: float | None = None

    def add(self, fraction_lost: int, now: float) -> int:
        """Take one report at monotonic time NOW; return the packet-loss percent to set."""
        sample = min(max(fraction_lost, 0), 255) / 256
        elapsed = 1.0 if self._last is None else max(now - self._last, 0.0)
        self._last = now
        tau = RISE_SECONDS if sample > self.average else FALL_SECONDS
        keep = math.exp(-elapsed / tau)
        self.average = keep * self.average + (1 - keep) * sample
        self.reports += 1
        self.peak = max(self.peak, self.percent)
        return self.percent

    @property
    def percent(self) -> int:
        return min(MAX_PERCENT, int(self.average * 100 + 0.5))


def uplink_counter(receiver: RTCRtpReceiver) -> Callable[[RtpPacket], None]:
    """A function to call with each uplink packet so aiortc's receiver reports count it."""
    streams = getattr(receiver, _STREAMS, None)
    if not isinstance(streams, dict):
        raise RuntimeError(f"aiortc RTCRtpReceiver.{_STREAMS} is gone: see media/uplink_loss.py")

    def count(packet: RtpPacket) -> None:
        stats = streams.get(packet.ssrc)
        if stats is None:
            streams.clear()  # one SSRC at a time
            stats = streams[packet.ssrc] = StreamStatistics(SAMPLE_RATE)
        stats.add(packet)

    return count
