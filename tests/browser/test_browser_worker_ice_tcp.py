"""Issue 15: a listener whose network drops UDP can still use a media worker (ICE-TCP).

Each worker opens a passive ICE-TCP port (RFC 6544, framing of RFC 4571) beside its UDP
port and offers it as a candidate, as the embedded node does on `media_tcp_port`. Here the
node runs two local workers on the host side of a network namespace; alice's bot hosts
(so the room's mixer is one worker) and a Chromium inside the namespace, where nftables
drops every UDP datagram, joins and is placed on the other worker: it can only reach it
over that worker's TCP port, and must hear the tone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.browser_harness import Person, chromium_in_namespace, require_chromium
from tests.browser.netns import drop_udp, network_namespace
from tests.support.cli import stop_bot
from tests.support.network import eventually
from tests.support.nodes import NodeFactory
from tests.support.workers import node_on_workers, tone_host, wait_placed, worker_audio

TITLE = "Workers over TCP"


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
                pool = worker_audio(node).pool

                async def over_tcp() -> bool:
                    state = pool.get(where)
                    return state is not None and int(state.load.get("tcp_paths", 0)) >= 1

                await eventually(over_tcp, timeout=10)
                state = pool.get(where)
                assert state is not None
                assert int(state.load["media_tcp_port"]) > 0, state.load
                await bob.wait_hearing(timeout=10)  # still hearing, through the relay
                assert not bob.errors, bob.errors
        finally:
            await stop_bot(host)
            await node.stop()
