"""Issue 15 with a real browser: a Chromium listener follows the node's `reconnect` signal.

A node runs two media workers; alice's `salon bot host` (a looped 440 Hz tone) sits on the
room's mixer worker and a Chromium listener, bob, is placed on the other one. That worker
is then killed with SIGKILL, or drained with `salon admin worker drain`; the node tells
the page to reconnect and the web client (node/web/static/room/audio.js) opens a new peer
connection on another worker, make-before-break. The page must hear the tone again within
3 s of the kill (the issue's bound; 1 s for a drain, the issue's bound there) without any
click, and the room view must stay joined.

What the page hears is sampled inside the page every 50 ms (getStats' totalAudioEnergy of
the current peer connection, tagged per connection), so the gap is measured on the
browser's own clock around the moment the test kills or drains the worker.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.browser_harness import Launch, Person
from tests.browser.heard import (
    connections,
    gap_after,
    longest_silence,
    samples,
    start_sampling,
)
from tests.support.cli import stop_bot
from tests.support.nodes import Node, NodeFactory
from tests.support.workers import (
    drain_worker,
    hearing,
    kill_worker,
    node_on_workers,
    tone_host,
    user_id,
    wait_placed,
    worker_audio,
)

pytestmark = pytest.mark.timeout(150)

TITLE = "Worker moves"


async def room_with_listener_on_a_relay(
    node: Node, launch: Launch, tmp_path: Path
) -> tuple[Any, Person, str, str]:
    """alice's bot hosts (on the mixer worker); Chromium bob joins, placed on the other
    worker and hearing her: (host process, bob, room id, bob's worker)."""
    await node.user("alice")
    host, room_url, room_id = await tone_host(node, tmp_path, TITLE, seconds=90, tone_seconds=3)
    mixer = await wait_placed(node, room_id, "alice")
    bob = await Person.open(await launch(), node.url, "bob")
    await bob.join_and_hear(room_url, TITLE, timeout=30)
    where = await wait_placed(node, room_id, "bob")
    assert where != mixer, "bob listens on the worker that is not the mixer"
    await hearing(node, where, packets=100)
    await start_sampling(bob)
    await asyncio.sleep(2)  # a baseline of sound before the break
    return host, bob, room_id, where


async def still_joined(bob: Person) -> None:
    """The room view shows a live, joined room: no Join button, Leave quietly offered, no
    error banner, and the session never left LIVE."""
    page = bob.page
    await page.get_by_role("button", name="Leave quietly", exact=True).wait_for()
    assert await page.get_by_role("button", name="Join", exact=True).count() == 0
    status = await page.evaluate("() => window.salonDebug.player.session.status")
    assert status == "live", status
    banner = await page.locator(".banner").inner_text()
    assert "Leave and join again" not in banner, banner
    assert not bob.errors, bob.errors


@pytest.mark.parametrize("how", ["kill", "drain"])
async def test_chromium_follows_reconnect_when_its_worker_is_killed_or_drained(
    how: str, node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    """kill: heard again within 3 s, then no silence over 1 s; drain: no silence over 1 s
    around the move (make-before-break)."""
    node = await node_on_workers(node_factory, 2)
    host, bob, room_id, worker = await room_with_listener_on_a_relay(node, launch, tmp_path)
    try:
        began = time.time()
        if how == "kill":
            kill_worker(node, worker)
        else:
            await drain_worker(node, worker)
        await asyncio.sleep(6)
        heard = await samples(bob)
        gap = gap_after(heard, began)
        silence = longest_silence(heard, began - 1.0, time.time())
        print(f"{how}: Chromium heard the new connection after {gap:.2f} s, "
              f"longest silence {silence:.2f} s")  # fmt: skip
        assert await connections(bob) == 2, "one new connection, no restarts after it"
        moved_to = worker_audio(node).placements[room_id].where[await user_id(node, "bob")]
        assert moved_to != worker
        await still_joined(bob)
        if how == "kill":
            assert gap <= 3.0, f"heard again after {gap:.2f} s"
            assert longest_silence(heard, began + gap, time.time()) <= 1.0, "sound stays"
        else:
            assert silence <= 1.0, f"a gap of {silence:.2f} s"
    finally:
        await stop_bot(host)
