"""A real Chromium reaches the node's one media port: over UDP, and over ICE-TCP when the
network drops UDP.

Each browser runs in a network namespace (tests/browser/netns.py) so its address is a
routable one; for the TCP case an nftables rule inside that namespace drops all UDP, so
the only way in is the passive ICE-TCP candidate (RFC 6544) on `media_tcp_port`. The
speaker is alice's `salon bot host` (a 440 Hz tone) in this namespace.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cli.app import NODE
from media.lite import LiteConnection
from tests.browser.browser_harness import (
    Person,
    chromium_in_namespace,
    require_chromium,
)
from tests.browser.netns import Namespace, drop_udp
from tests.support.audio import tone
from tests.support.cli import bot_room_url, creds, salon, stop_bot
from tests.support.nodes import Node

pytestmark = pytest.mark.timeout(120)


async def host_bot(node: Node, ns: Namespace, tmp_path: Path) -> tuple[Any, str]:
    host = await salon(
        "bot",
        "host",
        *creds(node, "alice", ns.host_ip),
        "--title",
        "Port check",
        "--play",
        str(tone(tmp_path / "440.wav", 440)),
        "--seconds",
        "90",
    )
    room_url = await bot_room_url(host)
    assert room_url.startswith(node.url + "/rooms/"), room_url
    return host, room_url


def paths(node: Node, room_url: str) -> dict[str, tuple[str, int, int]]:
    """Each participant's selected path on the node: (protocol, local port, remote port)."""
    assert node.app is not None
    engine = node.app[NODE].audio.engine
    media = engine.get(room_url.rsplit("/", 1)[1])
    found: dict[str, tuple[str, int, int]] = {}
    for name in media.participants if media else []:
        session = media.session(name) if media else None
        if session is None or session.transceiver is None:
            continue
        connection = session.transceiver.sender.transport.transport._connection
        assert isinstance(connection, LiteConnection)
        assert connection.port is engine.port
        selected = connection.selected
        if selected is not None:
            local = engine.port.udp_port if selected.tcp is None else engine.port.tcp_port
            found[name] = (selected.protocol, local, selected.addr[1])
    return found


async def chromium_listens(node: Node, ns: Namespace, room_url: str, tmp_path: Path) -> None:
    async with chromium_in_namespace(ns, tmp_path) as browser:
        page = await (await browser.new_context()).new_page()
        # once in CI the sign-in form had not shown after 15 s here (cause unknown; the
        # harness now reports what the page showed)
        page.set_default_timeout(30_000)
        bob = Person(page, node.url, "bob")
        await bob.join_and_hear(room_url, "Port check", timeout=30)
        assert not bob.errors, bob.errors


async def paths_while_chromium_listens(
    node: Node, ns: Namespace, tmp_path: Path
) -> tuple[dict[str, tuple[str, int]], Any]:
    """alice's bot speaks and Chromium (in NS) hears it: each participant's last selected
    (protocol, node port) meanwhile, and the node's media port."""
    host, room_url = await host_bot(node, ns, tmp_path)
    try:
        watch = asyncio.create_task(_watch(node, room_url))
        await chromium_listens(node, ns, room_url, tmp_path)
        seen = await _stop(watch)
    finally:
        await stop_bot(host)
    port = node.app[NODE].audio.engine.port if node.app else None
    assert port is not None
    return seen, port


async def test_chromium_hears_a_bot_over_the_one_udp_port(
    namespaced_node: tuple[Node, Namespace], tmp_path: Path
) -> None:
    require_chromium()
    node, ns = namespaced_node
    seen, port = await paths_while_chromium_listens(node, ns, tmp_path)
    # the bot and the browser both on the node's one UDP port
    assert {p for p in seen.values()} <= {("udp", port.udp_port)}, seen
    assert len(seen) == 2, seen


async def test_chromium_without_udp_hears_a_bot_over_ice_tcp(
    namespaced_node: tuple[Node, Namespace], tmp_path: Path
) -> None:
    require_chromium()
    node, ns = namespaced_node
    drop_udp(ns)
    seen, port = await paths_while_chromium_listens(node, ns, tmp_path)
    # the bot (outside the namespace) on UDP, the browser on the TCP port
    assert sorted(seen.values()) == [("tcp", port.tcp_port), ("udp", port.udp_port)], seen


async def _watch(node: Node, room_url: str) -> dict[str, tuple[str, int]]:
    """Until cancelled: every participant's last selected (protocol, node port)."""
    seen: dict[str, tuple[str, int]] = {}
    try:
        while True:
            for name, (protocol, local, _) in paths(node, room_url).items():
                seen[name] = (protocol, local)
            await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        return seen


async def _stop(task: asyncio.Task[dict[str, tuple[str, int]]]) -> dict[str, tuple[str, int]]:
    task.cancel()
    return await task
