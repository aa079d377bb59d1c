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
