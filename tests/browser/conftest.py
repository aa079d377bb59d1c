"""Fixtures for the browser tests: skip cleanly without Chromium, launch it with fake mics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.browser.browser_harness import Launch, chromium_launcher, require_chromium


@pytest.fixture
async def launch() -> AsyncIterator[Launch]:
    require_chromium()
    async for launcher in chromium_launcher():
        yield launcher
