"""Shared fixtures: real nodes built by the composition root (tests/support/nodes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from node import auth as node_auth
from node.clock import Clock
from tests.support.nodes import Node, NodeFactory, free_port, make_settings
from tests.support.passwords import quick_hash
from tests.support.workers import Redis, start_redis


@pytest.fixture(autouse=True, scope="session")
def _quick_password_hashes() -> Iterator[None]:
    """In-process nodes hash passwords with argon2id at its minimum limits
    (tests/support/passwords.py says why)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(node_auth, "hash_password_sync", quick_hash)
        yield


@pytest.fixture
async def node_factory(tmp_path: Path) -> AsyncIterator[NodeFactory]:
    nodes: list[Node] = []

    async def factory(name: str = "a", clock: Clock | None = None, **overrides: Any) -> Node:
        overrides.setdefault("port", free_port())
        settings = make_settings(tmp_path / name, **overrides)
        node = await Node(settings, clock).start()
        nodes.append(node)
        return node

    yield factory
    for node in nodes:
        await node.stop()


@pytest.fixture
async def node(node_factory: NodeFactory) -> Node:
    return await node_factory()


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[Redis]:
    """A private redis-server on a free port (skips where redis-server is missing)."""
    server = await start_redis(tmp_path / "redis")
    yield server
    server.stop()
