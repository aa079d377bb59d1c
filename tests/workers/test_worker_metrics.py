"""/metrics with media workers (issue 15): the per-worker numbers come from the workers'
heartbeats and match the known load — a host and three listeners spread over two workers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.cli import stop_bot
from tests.support.metrics import Samples, scrape, value
from tests.support.network import eventually
from tests.support.nodes import NodeFactory, free_port
from tests.support.workers import (
    listen_bot,
    node_on_workers,
    tone_host,
    worker_audio,
    workers_ready,
)

LISTENERS = ("bob", "carol", "dave")


@pytest.mark.timeout(120)
async def test_worker_metrics_match_the_placement(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    node = await node_on_workers(node_factory, 2, metrics_address=address)
    workers = await workers_ready(node, 2)
    for name in ("alice", *LISTENERS):
        await node.user(name)
    host, room_url, _ = await tone_host(node, tmp_path, "Metrics on workers", seconds=40)
    bots = []
    try:
        bots = [await listen_bot(node, room_url, name, 30) for name in LISTENERS]
        audio = worker_audio(node)

        async def settled() -> Samples | None:
            samples = await scrape(address)
            placed = {v["id"]: v["placed"] for v in audio.worker_views()}
            try:
                ok = sum(placed.values()) == 4 and all(
                    value(samples, "salon_worker_sessions", worker=w) == placed.get(w, 0)
                    for w in workers
                )
            except KeyError:
                return None
            return samples if ok else None

        first: Samples = await eventually(settled, timeout=30)
        placed = {v["id"]: v["placed"] for v in audio.worker_views()}
        assert all(placed[w] > 0 for w in workers), "sessions on both workers"
        assert sum(value(first, "salon_worker_listeners", worker=w) for w in workers) == 3
        assert all(value(first, "salon_worker_up", worker=w) == 1 for w in workers)
        await asyncio.sleep(1.5)  # the workers' rates cover at least 1 s
        second = await scrape(address)
        for w in workers:
            sent = value(second, "salon_worker_packets_sent_total", worker=w)
            assert sent > value(first, "salon_worker_packets_sent_total", worker=w)
            assert value(second, "salon_worker_packets_per_second", worker=w) > 0
            assert value(second, "salon_worker_cpu_percent", worker=w) > 0
    finally:
        for bot in [*bots, host]:
            await stop_bot(bot)
