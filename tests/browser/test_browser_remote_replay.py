"""A remote node's user plays a replay through their own node, in a real Chromium: bob on
B follows alice on A; her recorded room ends; bob's hallway shows a Replays card, its
Replay link opens the replay page, which plays — and every request the browser makes goes
to B, none to A (the origin never sees bob's address). The ended room's page on A links to
its replay."""

from __future__ import annotations

import pytest

from tests.browser.browser_harness import Launch, Person
from tests.support.network import FAST, follow_accepted
from tests.support.nodes import NodeFactory
from tests.support.replays import ended_room_with_replay


@pytest.mark.timeout(120)
async def test_remote_user_plays_a_replay_through_their_node(
    node_factory: NodeFactory, launch: Launch
) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice = await (await a.user()).signup("alice")
    browser = await launch()
    bob = await Person.open(browser, b.url, "bob")
    await bob.signup()
    bob_api = await b.user()
    await bob_api.signin("bob")
    await follow_accepted(bob_api, alice, a)
    room = await ended_room_with_replay(a, alice)
    hosts: set[str] = set()
    bob.page.on("request", lambda req: hosts.add(req.url.split("/")[2]))

    page = bob.page
    replays = page.get_by_role("list", name="Replays")
    await replays.get_by_role("link", name="Replay").wait_for(timeout=20_000)
    await replays.get_by_role("link", name="Replay").click()
    await page.get_by_role("heading", name="Tones").wait_for()
    await page.get_by_role("img", name="Waveform").wait_for()
    chapters = page.get_by_role("list", name="Chapters")
    await chapters.get_by_role("button").nth(1).click()  # "Octave up" at 10 s: plays
    await page.wait_for_function(
        "() => window.salonDebug.replay.currentTime > 10.5", timeout=15_000
    )
    assert hosts == {b.url.split("/")[2]}, hosts
    assert bob.errors == []

    # on A, the ended room's page links to its replay
    viewer = await Person.open(browser, a.url, "carol")
    await viewer.signup()
    await viewer.page.goto(f"{a.url}/rooms/{room}")
    await viewer.page.get_by_role("link", name="Replay").click()
    await viewer.page.get_by_role("img", name="Waveform").wait_for()
