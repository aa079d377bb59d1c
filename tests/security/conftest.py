"""Fixtures of the attack tests: a hostile fediverse server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.security.fake_actor_server import FakeActorServer


@pytest.fixture
async def remote() -> AsyncIterator[FakeActorServer]:
    server = await FakeActorServer().start()
    yield server
    await server.close()
