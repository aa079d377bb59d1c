"""Fixtures shared by the federation tests: the fake inbox and the fake remote node."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.delivery import Inbox
from tests.support.remote import FakeRemote


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    fake = Inbox()
    await fake.server.start_server()
    yield fake
    await fake.server.close()


@pytest.fixture
async def remote() -> AsyncIterator[FakeRemote]:
    fake = FakeRemote()
    await fake.server.start_server()
    yield fake
    await fake.server.close()
