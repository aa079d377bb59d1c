"""Workers "on other machines" (issue 15): three `salon media-worker` processes, each in
its own network namespace with its own address on a LAN made by the test (`--advertise`),
reaching the node's Redis over that LAN. Clients reach each worker at its own address."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import NodeFactory
from tests.support.worker_lan import worker_lan
from tests.support.workers import (
    SECRET,
    assert_everyone_heard,
    spread_room,
    start_redis,
    start_worker,
    worker_audio,
    workers_ready,
)

PASSWORD = "lan-redis-password-for-the-test"


@pytest.mark.timeout(180)
async def test_workers_in_their_own_namespaces_carry_one_room(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    with worker_lan(3) as lan:
        redis = await start_redis(
            tmp_path / "redis", binds=("127.0.0.1", lan.host_ip), password=PASSWORD
        )
        processes = []
        try:
            node = await node_factory(
                ice_addresses=(lan.host_ip,), redis_url=redis.url, worker_secret=SECRET
            )
            lan_redis = f"redis://:{PASSWORD}@{lan.host_ip}:{redis.port}/0"
            for index, (_, address) in enumerate(lan.namespaces):
                processes.append(
                    start_worker(node.url, lan_redis, address, prefix=lan.exec_prefix(index))
                )
            workers = await workers_ready(node, 3)
            addresses = {w.advertise for w in worker_audio(node).pool.workers()}
            assert addresses == {address for _, address in lan.namespaces}
            listeners = ("bob", "carol", "dave", "frank")
            room = await spread_room(node, tmp_path, listeners, ice_address=lan.host_ip)
            assert set(room.where.values()) == set(workers)
            assert_everyone_heard(room, listeners)
        finally:
            for process in processes:
                process.kill()
                process.wait(10)
            redis.stop()
