"""A cross-node room under 5 % packet loss on every leg, in a network namespace.

Two real nodes and three real `salon bot`s run inside a namespace whose nftables drop 5 % of
every UDP packet (tests/support/lossy_room.py): the host's uplink, both downlinks and the
trunk all lose packets. Both listeners' recordings must be as long as their session and
keep the tone: its frequency holds in at least 95 % of the 100 ms windows.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from tests.support.audio import RATE, read_pcm, tone
from tests.support.lossy_room import lossy_namespace, netns_available, run_in

pytestmark = pytest.mark.timeout(180)

SECONDS = 15.0
WINDOW = RATE // 10  # 100 ms


def windows_holding(pcm: np.ndarray, freq: float) -> tuple[int, int]:
    """(windows whose dominant frequency is FREQ ± 20 Hz, all windows) from the first
    loud window to the end (before it, the listener was still connecting)."""
    frames = pcm[: len(pcm) // WINDOW * WINDOW].reshape(-1, WINDOW)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 300)
    assert len(loud), "the listener heard nothing"
    frames = frames[loud[0] : -2]  # the last 200 ms: the bot closing, padded with silence
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(WINDOW), axis=1))
    peaks = np.fft.rfftfreq(WINDOW, 1 / RATE)[np.argmax(spectrum, axis=1)]
    return int(np.sum(np.abs(peaks - freq) <= 20)), len(frames)


async def test_cross_node_room_under_five_percent_loss_on_every_leg(tmp_path: Path) -> None:
    reason = netns_available()
    if reason:
        pytest.skip(reason)
    play = tone(tmp_path / "440.wav", 440, seconds=3.0)
    with lossy_namespace() as ns:
        ns.set_loss(5)
        result = await asyncio.to_thread(run_in, ns, play, SECONDS, tmp_path / "run", True)
    for key in ("origin", "relay"):
        outcome = result[key]
        assert outcome["errors"] == []
        pcm = read_pcm(Path(outcome["wav"]))
        # as long as the session: the bot ran SECONDS after connecting; nothing removed
        assert SECONDS <= len(pcm) / RATE <= SECONDS + 5, (key, len(pcm) / RATE)
        holding, total = windows_holding(pcm, 440)
        assert total >= 50, (key, total)  # connecting under loss can take seconds (DTLS retries)
        assert holding >= 0.95 * total, (key, holding, total)
