"""Recording in real Chromium (issue #14): the host's Record and Mark, the "Recording"
indicator, the notice before joining, and the recorded line in the invitation to speak."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.browser_harness import Launch, Person
from tests.support.network import eventually
from tests.support.nodes import NodeFactory


@pytest.mark.timeout(90)
async def test_record_mark_indicator_and_notices(node_factory: NodeFactory, launch: Launch) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",), replay_flush_seconds=0.2)
    browser = await launch()
    alice = await Person.open(browser, node.url, "alice")
    bob = await Person.open(browser, node.url, "bob")
    await alice.signup()
    await bob.signup()
    await alice.page.get_by_role("link", name="Start a room").first.click()
    await alice.page.get_by_label("Title").fill("Taped")
    await alice.button("Start room")
    await alice.page.get_by_role("button", name="Mute", exact=True).wait_for()
    room_url = alice.page.url
    room_id = room_url.rstrip("/").rsplit("/", 1)[1].split("?")[0]

    await alice.button("Record")
    await alice.page.get_by_role("status").filter(has_text="Recording").wait_for()
    await alice.page.get_by_role("button", name="Stop recording", exact=True).wait_for()

    await bob.page.goto(room_url)
    await bob.page.get_by_text("This room is recorded").wait_for()  # before any audio
    await bob.button("Join")
    await bob.page.get_by_role("status").filter(has_text="Recording").wait_for()

    group = alice.page.get_by_role("group", name="Actions for bob")
    if not await group.is_visible():
        await alice.page.get_by_role("button", name=re.compile("^bob")).click()
    await group.get_by_role("button", name="Invite to speak", exact=True).click()
    invitation = bob.page.get_by_role("region", name="You're invited to speak")
    await invitation.get_by_text("This room is recorded").wait_for()

    alice.page.once("dialog", lambda dialog: dialog.accept("Opening ✨"))
    await alice.button("Mark")
    await alice.button("End room")
    sidecar = node.settings.replay_path / f"{room_id}.json"

    async def written() -> bool:
        return sidecar.exists()

    await eventually(written, 15)
    assert [c["title"] for c in json.loads(sidecar.read_text())["chapters"]] == ["Opening ✨"]
    assert not alice.errors and not bob.errors
