"""Workers through Redis (issue 15): a redis-server started here, a node with `--redis`
and three `salon media-worker` processes. Speakers are on the mixer worker, listeners over
all three, and a listener on another worker raised to speaker is heard by everyone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import NodeFactory
from tests.support.workers import (
    SECRET,
    Redis,
    assert_everyone_heard,
    redis_workers,
    spread_room,
    workers_ready,
)


@pytest.mark.timeout(180)
async def test_three_redis_workers_carry_one_room(
    node_factory: NodeFactory, tmp_path: Path, redis_server: Redis
) -> None:
    node = await node_factory(
        ice_addresses=("127.0.0.1",), redis_url=redis_server.url, worker_secret=SECRET
    )
    with redis_workers(node, redis_server, 3):
        workers = await workers_ready(node, 3)
        listeners = ("bob", "carol", "dave", "frank")
        room = await spread_room(node, tmp_path, listeners)
        assert set(room.where.values()) == set(workers), "sessions on all three workers"
        assert_everyone_heard(room, listeners)


@pytest.mark.timeout(60)
async def test_concurrent_sends_reach_the_worker_in_sequence_order(
    redis_server: Redis,
) -> None:
    """Many commands sent at once (a crowd joining) all reach the worker: each is sealed
    and added to its stream under one lock, so no later sequence number overtakes an
    earlier one on another pooled connection and gets it refused as a replay (seen in CI:
    a crowd's listener never placed). Without the lock this fails: with 60 sends some are
    refused as replays, with 300 the concurrent XADDs also run out of connections. The
    same holds for a worker's events to the node."""
    import asyncio

    from media.worker.protocol import Command, Event
    from media.worker.redis_bus import RedisHub, RedisLink

    node_url = "http://127.0.0.1:1"
    hub = RedisHub(redis_server.url, node_url, SECRET.encode())
    link = RedisLink(redis_server.url, node_url, SECRET.encode(), "w1")
    events: list[Event] = []
    await link.connect()
    await hub.start(lambda sender, event: events.append(event), lambda worker: None)
    try:
        count = 300
        await asyncio.sleep(0.2)  # the hub's XREAD is waiting
        commands = [Command("open_mixer", n, {"room": f"r{n}"}) for n in range(count)]
        await asyncio.gather(*(hub.send("w1", c) for c in commands))
        got: list[int] = []

        async def read() -> None:
            async for command in link.commands():
                got.append(command.id)
                if len(got) == count:
                    return

        await asyncio.wait_for(read(), 20)
        assert got == list(range(count)) and link.refused == 0
        results = [Event("result", {"command": n, "error": ""}) for n in range(count)]
        await asyncio.gather(*(link.write(e) for e in results))
        for _ in range(200):
            if len(events) >= count:
                break
            await asyncio.sleep(0.05)
        assert len(events) == count and hub.refused == 0
    finally:
        await hub.close()
        await link.close()
