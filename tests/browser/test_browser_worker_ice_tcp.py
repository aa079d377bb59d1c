"""Issue 15: a listener whose network drops UDP can still use a media worker (ICE-TCP).

Each worker opens a passive ICE-TCP port (RFC 6544, framing of RFC 4571) beside its UDP
port and offers it as a candidate, as the embedded node does on `media_tcp_port`. Here the
node runs two local workers on the host side of a network namespace; alice's bot hosts
(so the room's mixer is one worker) and a Chromium inside the namespace, where nftables
drops every UDP datagram, joins and is placed on the other worker: it can only reach it
over that worker's TCP port, and must hear the tone. Then that worker is killed: the page
reconnects to the other worker, again over TCP, and hears the tone again within 3 s.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.browser.browser_harness import Person, chromium_in_namespace, require_chromium
from tests.browser.heard import gap_after, samples, start_sampling
from tests.browser.netns import drop_udp, network_namespace
from tests.support.cli import stop_bot
from tests.support.network import eventually
from tests.support.nodes import Node, NodeFactory
from tests.support.workers import (
    kill_worker,
    node_on_workers,
    tone_host,
    wait_placed,
    worker_audio,
)

TITLE = "Workers over TCP"


async def over_tcp(node: Node, worker: str) -> None:
    """Wait until WORKER reports an ICE-TCP path bound (its heartbeat's load)."""
    pool = worker_audio(node).pool

    async def bound() -> bool:
        state = pool.get(worker)
        return state is not None and int(state.load.get("tcp_paths", 0)) >= 1

    await eventually(bound, timeout=10)
    state = pool.get(worker)
    assert state is not None and int(state.load["media_tcp_port"]) > 0, state


@pytest.mark.timeout(150)
async def test_chromium_without_udp_hears_a_room_through_a_worker_over_ice_tcp(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    require_chromium()
    with network_namespace() as ns:
        drop_udp(ns)
        node = await node_on_workers(node_factory, 2, host=ns.host_ip, ice_addresses=(ns.host_ip,))
        await node.user("alice")
        host, room_url, room_id = await tone_host(
            node, tmp_path, TITLE, seconds=90, tone_seconds=3, ice_address=ns.host_ip
        )
        try:
            mixer = await wait_placed(node, room_id, "alice")
            async with chromium_in_namespace(ns, tmp_path) as browser:
                page = await (await browser.new_context()).new_page()
                page.set_default_timeout(30_000)
                bob = Person(page, node.url, "bob")
                await bob.join_and_hear(room_url, TITLE, timeout=30)
                where = await wait_placed(node, room_id, "bob")
                assert where != mixer, "bob listens on the worker that is not the mixer"
                await over_tcp(node, where)
                await bob.wait_hearing(timeout=10)  # still hearing, through the relay

                # his worker dies: he reconnects to another one, over its TCP port too
                await start_sampling(bob)
                await asyncio.sleep(1)
                killed_at = time.time()
                kill_worker(node, where)
                await asyncio.sleep(6)
                gap = gap_after(await samples(bob), killed_at)
                print(f"Chromium over TCP heard again {gap:.2f} s after its worker was killed")
                assert gap <= 3.0, f"heard again after {gap:.2f} s"
                moved_to = await wait_placed(node, room_id, "bob")
                assert moved_to != where
                await over_tcp(node, moved_to)
                assert not bob.errors, bob.errors
        finally:
            await stop_bot(host)
            await node.stop()
