"""Issue 15 with a real browser: a Chromium listener follows the node's `reconnect` signal.

A node runs two media workers; alice's `salon bot host` (a looped 440 Hz tone) sits on the
room's mixer worker and a Chromium listener, bob, is placed on the other one. That worker
is then killed with SIGKILL, or drained with `salon admin worker drain`; the node tells
the page to reconnect and the web client (node/web/static/room/audio.js) opens a new peer
connection on another worker, make-before-break. The page must hear the tone again within
3 s of the kill (the issue's bound; 1 s for a drain, the issue's bound there) without any
click, and the room view must stay joined. And a Chromium speaker keeps being heard when
the room's mixer worker dies.

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

from tests.browser.browser_harness import Launch, Person, heard_in_room
from tests.browser.heard import (
    connections,
    gap_after,
    longest_silence,
    samples,
    start_sampling,
)
from tests.support.audio import read_pcm, tone
from tests.support.cli import stop_bot
from tests.support.network import eventually
from tests.support.nodes import Node, NodeFactory
from tests.support.workers import (
    SECRET,
    Redis,
    band_share,
    drain_worker,
    hearing,
    kill_worker,
    longest_quiet,
    node_on_workers,
    outcome,
    redis_workers,
    tone_host,
    user_id,
    wait_placed,
    worker_audio,
    workers_ready,
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
    await _move_a_listener(node, how, launch, tmp_path)


async def test_chromium_follows_reconnect_when_its_redis_worker_is_killed(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path, redis_server: Redis
) -> None:
    """The same kill with `salon media-worker` processes on a redis-server started here:
    the node notices by the heartbeat key's TTL, not a closed socket."""
    node = await node_factory(
        ice_addresses=("127.0.0.1",), redis_url=redis_server.url, worker_secret=SECRET
    )
    with redis_workers(node, redis_server, 2):
        await workers_ready(node, 2)
        await _move_a_listener(node, "kill-redis", launch, tmp_path)


async def _move_a_listener(node: Node, how: str, launch: Launch, tmp_path: Path) -> None:
    host, bob, room_id, worker = await room_with_listener_on_a_relay(node, launch, tmp_path)
    try:
        began = time.time()
        if how == "drain":
            await drain_worker(node, worker)
        else:
            kill_worker(node, worker)
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
        if how == "drain":
            assert silence <= 1.0, f"a gap of {silence:.2f} s"
        else:
            assert gap <= 3.0, f"heard again after {gap:.2f} s"
            assert longest_silence(heard, began + gap, time.time()) <= 1.0, "sound stays"
    finally:
        await stop_bot(host)


async def test_a_chromium_speaker_is_heard_again_when_the_mixer_worker_dies(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    """bob (Chromium, a 660 Hz fake microphone) is invited on stage; the room's mixer
    worker is killed: the mixer opens on another worker and alice's bot — which moves too —
    hears bob again within 3 s (no quiet run over 3 s in her recording after she first
    heard him), while bob's page keeps hearing her and stays on stage."""
    node = await node_on_workers(node_factory, 2)
    await node.user("alice")
    recording = tmp_path / "alice.wav"
    host, room_url, room_id = await tone_host(
        node, tmp_path, TITLE, "--auto-invite", "--record", str(recording), seconds=90
    )
    try:
        mixer = await wait_placed(node, room_id, "alice")
        bob = await Person.open(await launch(tone(tmp_path / "660.wav", 660)), node.url, "bob")
        await bob.join_and_hear(room_url, TITLE, timeout=30)
        await bob.go_on_stage()
        watcher = await node.user()
        assert (await watcher.signin("alice"))[0] == 200

        async def bob_heard() -> bool:
            return await heard_in_room(watcher, room_id, "bob")

        await eventually(bob_heard, timeout=30)
        await start_sampling(bob)
        await asyncio.sleep(2)
        killed_at = time.time()
        kill_worker(node, mixer)
        await asyncio.sleep(6)
        await eventually(bob_heard, timeout=1)  # the new mixer decodes him
        silence = longest_silence(await samples(bob), killed_at - 1.0, time.time())
        print(f"Chromium speaker: longest silence at his page {silence:.2f} s")
        assert silence <= 3.0, f"bob heard nothing for {silence:.2f} s"
        await still_joined(bob)
        await bob.page.get_by_role("button", name="Mute", exact=True).wait_for()
        await watcher.close()
    except BaseException:
        await stop_bot(host)
        raise
    summary = await outcome(host, stop=True)
    assert summary["moves"] == 1, summary
    heard = read_pcm(recording)
    quiet = longest_quiet(heard)
    print(f"alice's longest quiet run (bob not heard): {quiet:.2f} s")
    assert quiet <= 3.0, f"alice did not hear bob for {quiet:.2f} s"
    assert band_share(heard[-48000 * 3 :], 660) > 0.3, "alice hears bob at the end"
