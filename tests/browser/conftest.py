"""Fixtures for the browser tests: skip cleanly without Chromium, launch it with fake mics;
a node reachable from a network namespace (for a browser run inside it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.browser.browser_harness import Launch, chromium_launcher, require_chromium
from tests.browser.netns import Namespace, network_namespace
from tests.support.nodes import Node, NodeFactory


@pytest.fixture
async def launch() -> AsyncIterator[Launch]:
    require_chromium()
    async for launcher in chromium_launcher():
        yield launcher


@pytest.fixture
async def namespaced_node(node_factory: NodeFactory) -> AsyncIterator[tuple[Node, Namespace]]:
    """A node listening on the host side of a fresh network namespace, with user alice."""
    with network_namespace() as ns:
        node = await node_factory(host=ns.host_ip, ice_addresses=(ns.host_ip,))
        await node.user("alice")
        yield node, ns
        await node.stop()
