"""Attacks on the node's uplink receiver reports and the bot's loss-driven FEC
(media/uplink_loss.py).

- A speaker whose every RTP packet carries a new SSRC (through its real SRTP uplink): the
  node keeps statistics for one SSRC at a time, so its memory does not grow per packet.
- A node (or anyone able to inject RTCP) that reports 100 % loss: the bot's expected loss
  is capped at libwebrtc's 20 %, the bot keeps speaking.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from media.uplink_loss import MAX_PERCENT, UplinkLoss
from tests.media.media_harness import Harness, write_tone

pytestmark = pytest.mark.timeout(45)


async def test_a_speaker_rotating_ssrcs_cannot_grow_the_nodes_statistics(tmp_path: Path) -> None:
    h = Harness()
    try:
        bot = await h.join("mallory", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        assert bot._transceiver is not None
        transport = bot._transceiver.sender.transport
        original = transport._send_rtp
        ssrcs = itertools.count(1000)
        sent = 0

        async def rotate(data: bytes) -> None:
            nonlocal sent
            if data[1] & 0x7F < 64 or data[1] & 0x7F > 95:  # RTP, not RTCP (RFC 5761)
                data = data[:8] + next(ssrcs).to_bytes(4, "big") + data[12:]
                sent += 1
            await original(data)

        transport._send_rtp = rotate  # type: ignore[method-assign]
        await asyncio.sleep(2.0)
        session = h.room.session("mallory")  # type: ignore[union-attr]
        assert session is not None and session.transceiver is not None
        streams = session.transceiver.receiver._RTCRtpReceiver__remote_streams
        assert sent >= 50
        assert len(streams) <= 1
        assert all(ssrc >= 1000 for ssrc in streams)  # the rotated packets did arrive
    finally:
        await h.close()


def test_reports_of_total_loss_cap_the_bots_fec_share() -> None:
    loss = UplinkLoss()
    for i in range(30):
        assert loss.add(255, float(i)) <= MAX_PERCENT
    assert loss.percent == MAX_PERCENT == 20
