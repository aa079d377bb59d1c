"""Join/leave many times: peer connections, sockets, tasks and threads return to baseline."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from pathlib import Path

import pytest
from media_harness import LOOPBACK, Harness, write_tone

from media.client import BotPeer
from media.engine import MediaConfig, MediaEngine


def _resources() -> tuple[int, int, int]:
    gc.collect()
    return (
        len(os.listdir("/proc/self/fd")),
        len([t for t in asyncio.all_tasks() if not t.done()]),
        # the loop's default executor (aiortc's client-side encoder) grows lazily and
        # keeps its worker threads: not ours to count
        len([t for t in threading.enumerate() if not t.name.startswith("asyncio_")]),
    )


async def _settle(baseline: tuple[int, int, int]) -> tuple[int, int, int]:
    # closing transports finishes on later loop iterations; a loaded machine takes longer
    for _ in range(300):
        now = _resources()
        if now == baseline:
            break
        await asyncio.sleep(0.05)
    return now


@pytest.mark.timeout(90)
async def test_connected_join_leave_returns_to_baseline(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "a.wav", 440)
    h = Harness()
    try:
        await h.join("host", play=tone, can_speak=True)  # the room keeps running throughout
        await asyncio.sleep(0.2)
        baseline = _resources()
        for i in range(100):
            await h.join(f"guest{i}", play=tone if i % 4 == 0 else None, can_speak=i % 4 == 0)
            await asyncio.sleep(0.05)
            await h.leave(f"guest{i}")
        assert await _settle(baseline) == baseline
        assert h.room.participants == ["host"]
    finally:
        await h.close()


@pytest.mark.timeout(90)
async def test_200_fast_join_leave_and_engine_close() -> None:
    """Offer/answer then leave before ICE completes (the fast path), 200 times."""
    baseline = _resources()
    engine = MediaEngine(MediaConfig(ice_addresses=LOOPBACK))
    room = engine.room("r", lambda p, m: None, lambda levels: None)
    sent: list[dict] = []

    async def to_node(message: dict) -> None:
        sent.append(message)

    for i in range(200):
        bot = BotPeer(to_node, ice_addresses=LOOPBACK)
        await bot.start()
        await room.signal(f"p{i}", sent[-1])
        await room.remove(f"p{i}")
        await bot.close()
    assert room.participants == []
    await engine.close()
    assert await _settle(baseline) == baseline
