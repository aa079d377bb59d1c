"""`salon serve --media-workers 2` (issue 15): one room spread over two local workers.

The host speaks on the room's mixer worker, listeners are spread over both workers, and a
listener on the worker that does not mix is raised to speaker and heard by everyone —
through her worker's relay trunk, without moving."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import NodeFactory
from tests.support.workers import (
    assert_everyone_heard,
    node_on_workers,
    spread_room,
    workers_ready,
)


@pytest.mark.timeout(180)
async def test_two_local_workers_carry_one_room(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = await node_on_workers(node_factory, 2)
    workers = await workers_ready(node, 2)
    listeners = ("bob", "carol", "dave")
    room = await spread_room(node, tmp_path, listeners)
    assert set(room.where.values()) == set(workers), "sessions on both workers"
    assert_everyone_heard(room, listeners)
