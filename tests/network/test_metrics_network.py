"""Metrics across nodes: a room on A heard by a listener of B through B's relay trunk.
A counts one origin trunk, B one relay trunk, and B's worker numbers include the relay
room's session and the packets its fan-out forwards (real nodes, bots and trunk)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.cli import stop_bot
from tests.support.metrics import Samples, scrape, value
from tests.support.network import AUDIO, eventually
from tests.support.nodes import NodeFactory, free_port
from tests.support.workers import listen_bot, tone_host

WORKER = {"worker": "node"}


@pytest.mark.timeout(90)
async def test_trunks_by_direction_and_relay_sessions(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    address_a, address_b = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    a = await node_factory("a", metrics_address=address_a, **AUDIO)
    b = await node_factory("b", metrics_address=address_b, **AUDIO)
    await a.user("alice")
    await b.user("bob")
    host, url, _ = await tone_host(a, tmp_path, "Across", seconds=30)
    listener = None
    try:
        listener = await listen_bot(b, url, "bob", 20)
        seen: dict[str, Samples] = {}

        async def both_ends_up() -> bool:
            seen["a"], seen["b"] = await scrape(address_a), await scrape(address_b)
            return (
                value(seen["a"], "salon_trunks", direction="origin") == 1
                and value(seen["b"], "salon_trunks", direction="relay") == 1
                and value(seen["b"], "salon_worker_listeners", **WORKER) == 1
            )

        await eventually(both_ends_up, timeout=30)
        assert value(seen["a"], "salon_trunks", direction="relay") == 0
        assert value(seen["b"], "salon_trunks", direction="origin") == 0
        assert value(seen["b"], "salon_rooms", status="live") == 0  # the room is A's
        assert value(seen["b"], "salon_worker_rooms", **WORKER) == 1  # its relay room
        assert value(seen["b"], "salon_worker_sessions", **WORKER) == 1
        sent = value(seen["b"], "salon_worker_packets_sent_total", **WORKER)
        await asyncio.sleep(1.0)
        later = await scrape(address_b)
        # B forwards A's mix to bob: 50 packets a second (generous floor for a loaded box)
        assert value(later, "salon_worker_packets_sent_total", **WORKER) - sent >= 20
    finally:
        for bot in (listener, host):
            if bot is not None:
                await stop_bot(bot)
