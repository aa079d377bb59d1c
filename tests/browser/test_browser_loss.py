"""Chromium as a listener behind a link that loses 5 % of UDP packets each way.

Chromium runs in a network namespace (tests/browser/netns.py) whose nftables drop 5 % of
the UDP packets it receives and 5 % of those it sends (its receiver reports included);
the node and the host bot are outside. The node sees the loss in Chromium's receiver
reports and sends it RED; Chromium must then play continuous sound: its own getStats
concealment ratio (concealed samples / samples received) stays under 2 % — without RED
it would be about the loss rate itself, 5 %.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cli.app import NODE
from tests.browser.browser_harness import (
    Person,
    chromium_in_namespace,
    require_chromium,
)
from tests.browser.netns import Namespace, network_namespace
from tests.support.audio import tone
from tests.support.cli import bot_room_url, creds, salon, stop_bot
from tests.support.lossy_room import netns_available, set_udp_loss
from tests.support.nodes import Node, NodeFactory

CONCEALMENT_BOUND = 0.02


@pytest.fixture
async def lossy_browser_node(node_factory: NodeFactory) -> AsyncIterator[tuple[Node, Namespace]]:
    reason = netns_available()
    if reason:
        pytest.skip(reason)
    with network_namespace() as ns:
        node = await node_factory(host=ns.host_ip, ice_addresses=(ns.host_ip,))
        await node.user("alice")
        set_udp_loss(ns.command, 5, ("input", "output"))
        yield node, ns
        await node.stop()


@pytest.mark.timeout(120)
async def test_chromium_hears_continuous_sound_under_five_percent_loss(
    lossy_browser_node: tuple[Node, Namespace], tmp_path: Path
) -> None:
    require_chromium()
    node, ns = lossy_browser_node
    host = await salon(
        "bot", "host", *creds(node, "alice", ns.host_ip), "--title", "Loss check",
        "--play", str(tone(tmp_path / "440.wav", 440)), "--seconds", "90",
    )  # fmt: skip
    try:
        room_url = await bot_room_url(host)
        async with chromium_in_namespace(ns, tmp_path) as browser:
            page = await browser.new_page()
            page.set_default_timeout(20_000)
            bob = Person(page, node.url, "bob")
            await bob.join_and_hear(room_url, "Loss check", timeout=30)

            assert node.app is not None
            room = node.app[NODE].audio.engine.rooms()[0]
            sessions = [room.session(name) for name in room.participants]
            listener = [s for s in sessions if s and s.negotiated_direction == "sendonly"]
            assert len(listener) == 1 and listener[0].downlink is not None

            async def sends_red() -> bool:
                for _ in range(40):
                    if listener[0].downlink and listener[0].downlink.sends_red:
                        return True
                    await asyncio.sleep(0.25)
                return False

            # Chromium's receiver reports show the loss: the node switches it to RED
            assert await sends_red(), listener[0].loss
            before = await bob.inbound()
            await asyncio.sleep(8)
            after = await bob.inbound()
            received = after["totalSamplesReceived"] - before["totalSamplesReceived"]
            concealed = after["concealedSamples"] - before["concealedSamples"]
            assert received > 48_000 * 6, (before, after)
            assert concealed <= CONCEALMENT_BOUND * received, (concealed, received)
            assert after["packetsLost"] > before["packetsLost"]  # the link did lose
    finally:
        await stop_bot(host)
