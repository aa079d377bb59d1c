"""RED on real connections: a listener whose reports show loss gets RED, others do not.

Node and aiortc bots on loopback (media_harness); the listener's raw RTP is captured at its
receive hook and read with the test's own RFC 2198 parser (test_media_loss.py).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from media_harness import Harness, band_energy, write_tone
from test_media_loss import independent_red_parse

from tests.support.packets import capture

pytestmark = pytest.mark.timeout(60)


async def test_red_goes_only_to_listeners_that_report_loss_and_negotiated_it(
    tmp_path: Path,
) -> None:
    h = Harness()
    try:
        alice = await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        bob = await h.join("bob")
        carol = await h.join("carol", protect=False)  # offers no RED
        bob_session, carol_session = h.room.session("bob"), h.room.session("carol")
        assert bob_session is not None and carol_session is not None
        assert bob_session.downlink is not None and carol_session.downlink is not None
        red_type = bob_session.downlink.red_type
        opus_type = bob_session.downlink.payload_type
        assert red_type is not None and carol_session.downlink.red_type is None

        # the speaker's uplink is RED too (the bot sends it as Chrome does), used once
        alice_session = h.room.session("alice")
        assert alice_session is not None and alice_session.uplink.red_types
        assert alice._red_uplink

        clean, carol_seen = capture(bob), capture(carol)
        await asyncio.sleep(0.5)
        assert clean and {pt for pt, *_ in clean} == {opus_type}  # no loss: plain Opus

        bob_session.loss.add(26)  # a receiver report: 10 % lost
        carol_session.loss.add(26)
        lossy = capture(bob)
        start = time.monotonic()
        await asyncio.sleep(1.0)
        red_packets = [p for p in lossy if p[0] == red_type]
        assert len(red_packets) > 20
        by_seq = {}
        for _, seq, timestamp, payload in red_packets:
            primary_pt, blocks = independent_red_parse(payload)
            assert primary_pt == opus_type
            assert blocks[-1][:2] == (opus_type, 0)
            by_seq[seq] = (timestamp, blocks)
        checked = 0
        for seq, (timestamp, blocks) in by_seq.items():
            before = by_seq.get((seq - 1) & 0xFFFF)
            earlier = by_seq.get((seq - 2) & 0xFFFF)
            if before is None or earlier is None:
                continue
            # the redundant blocks are the two packets' frames before it (red.RED_DEPTH),
            # oldest first, 40 and 20 ms back
            assert blocks[:-1] == [
                (opus_type, 1920, earlier[1][-1][2]),
                (opus_type, 960, before[1][-1][2]),
            ]
            assert (timestamp - before[0]) & 0xFFFFFFFF == 960
            checked += 1
        assert checked > 10
        # carol reported loss too, but never offered RED: plain Opus
        assert {pt for pt, *_ in carol_seen} == {carol_session.downlink.payload_type}
        # and bob still hears the tone (through the RED path of the bot)
        heard = bob.heard_since(start + 0.2)
        assert len(heard) > 0.5 * 48_000 and band_energy(heard, 440) > 0.8
    finally:
        await h.close()
