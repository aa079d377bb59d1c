"""The bot's uplink FEC follows the loss the node reports (media/uplink_loss.py).

A real node and a real `salon bot host` speak inside a network namespace whose nftables
drop a share of every UDP packet: with 10 % dropped the node's receiver reports show the
loss and the bot's encoder raises its expected packet loss (libopus then adds in-band
FEC) — unless its packets go out as RED, which repairs the same losses at full quality;
with nothing dropped it stays at 0 through every report.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.audio import tone
from tests.support.lossy_room import lossy_namespace, netns_available, run_speaker_in

pytestmark = pytest.mark.timeout(150)

SECONDS = 10.0


async def _uplink_fec(tmp_path: Path, loss: int, red: bool = True) -> dict:
    """A node and a host bot speaking in a namespace dropping LOSS % of UDP: the bot's
    ``uplink_fec`` outcome. RED=False: the node answers no RED."""
    reason = netns_available()
    if reason:
        pytest.skip(reason)
    play = tone(tmp_path / "440.wav", 440, seconds=3.0)
    with lossy_namespace() as ns:
        ns.set_loss(loss)
        outcome = await asyncio.to_thread(
            run_speaker_in, ns, play, SECONDS, tmp_path / "run", red=red
        )
    return dict(outcome["uplink_fec"])


async def test_bot_uplink_fec_rises_when_the_node_reports_loss(tmp_path: Path) -> None:
    """A node that answers no RED: the bot's plain Opus is protected by in-band FEC alone,
    and its share follows the node's reports."""
    fec = await _uplink_fec(tmp_path, 10, red=False)
    assert fec["red"] is False, fec
    assert fec["reports"] >= 3, fec  # aiortc's receiver reports every 0.5-1.5 s
    # 10 % dropped each way: the reports' smoothed loss is several percent, never 0
    assert fec["peak"] >= 3, fec
    assert fec["percent"] >= 1, fec


async def test_bot_sending_red_keeps_its_fec_share_at_zero_under_loss(tmp_path: Path) -> None:
    """A node that answers RED: the bot's packets carry the two frames before them, the
    same reports show the loss, and the encoder still spends nothing on LBRR."""
    fec = await _uplink_fec(tmp_path, 10)
    assert fec["red"] is True, fec
    assert fec["reports"] >= 3 and fec["peak"] >= 3, fec  # the loss is seen ...
    assert fec["percent"] == 0, fec  # ... and left to RED


async def test_bot_uplink_fec_stays_zero_on_a_clean_network(tmp_path: Path) -> None:
    fec = await _uplink_fec(tmp_path, 0)
    assert fec["reports"] >= 3, fec
    assert fec == {"percent": 0, "peak": 0, "reports": fec["reports"], "red": True}
