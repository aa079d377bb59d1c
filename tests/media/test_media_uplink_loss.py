"""The node's receiver reports on a speaker's uplink (media/uplink_loss.py), on loopback.

The node takes uplink RTP at the receiver's raw hook, so it feeds aiortc's per-SSRC
statistics itself; aiortc's receiver loop then sends the report blocks and the bot's
sender sees them as ``remote-inbound-rtp``. These tests pin the aiortc member that needs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics
from media_harness import Harness, write_tone

from media.uplink_loss import uplink_counter

pytestmark = pytest.mark.timeout(45)


def test_uplink_counter_needs_aiortcs_remote_streams() -> None:
    """aiortc 1.16 keeps per-SSRC ``StreamStatistics`` in ``__remote_streams`` and its
    RTCP loop reports each; if that member goes, the node must fail loudly, not go quiet."""
    receiver = RTCRtpReceiver.__new__(RTCRtpReceiver)
    with pytest.raises(RuntimeError, match="remote_streams is gone"):
        uplink_counter(receiver)
    receiver._RTCRtpReceiver__remote_streams = {}  # type: ignore[attr-defined]
    uplink_counter(receiver)  # accepted


async def test_node_reports_a_speakers_uplink_and_the_clean_bot_keeps_fec_at_zero(
    tmp_path: Path,
) -> None:
    h = Harness()
    try:
        bot = await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        await asyncio.sleep(4.0)
        session = h.room.session("alice")  # type: ignore[union-attr]
        assert session is not None and session.transceiver is not None
        streams = session.transceiver.receiver._RTCRtpReceiver__remote_streams
        assert len(streams) == 1
        (stats,) = streams.values()
        assert isinstance(stats, StreamStatistics) and stats.packets_received >= 100
        report = [
            s
            for s in (await bot._transceiver.sender.getStats()).values()  # type: ignore[union-attr]
            if s.type == "remote-inbound-rtp"
        ]
        assert report and report[0].packetsLost == 0
        assert bot.uplink_loss.reports >= 2
        assert bot.uplink_fec_percent == 0 and bot.uplink_loss.peak == 0
    finally:
        await h.close()
