"""The single-node story in real Chromium: follow, hallway, join, hand, stage, mute, end."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.browser.browser_harness import Launch, Person, naming_failures, speech
from tests.support.audio import tone
from tests.support.nodes import NodeFactory


@pytest.mark.timeout(120)
async def test_two_people_one_node_whole_story(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    alice_mic = speech(tmp_path / "alice.wav", "Hello everyone, welcome to the room. " * 3)
    bob_mic = tone(tmp_path / "bob.wav", 660, 3.0)
    alice = await Person.open(await launch(alice_mic), node.url, "alice")
    bob = await Person.open(await launch(bob_mic), node.url, "bob")
    await alice.signup()
    await bob.signup()

    # bob finds alice with the search box and follows her
    await bob.page.get_by_label("Search").fill("alice")
    await bob.page.get_by_label("Search").press("Enter")
    await bob.page.get_by_role("heading", name="alice", exact=True).wait_for()
    await bob.button("Follow")
    await bob.page.get_by_role("button", name="Unfollow", exact=True).wait_for()
    await bob.page.get_by_role("link", name="Hallway").click()
    await bob.page.get_by_role("heading", name="Hallway").wait_for()

    # alice starts an open room; it shows up in bob's hallway without a reload
    await alice.page.get_by_role("link", name="Start a room").first.click()
    await alice.page.get_by_label("Title").fill("Morning coffee")
    await alice.button("Start room")
    await alice.page.get_by_role("button", name="Mute", exact=True).wait_for()
    card_link = bob.page.get_by_role("link", name="Morning coffee")
    await card_link.wait_for(timeout=10_000)

    # bob opens it, joins and hears alice
    await card_link.click()
    await bob.button("Join")
    await bob.page.get_by_role("button", name="Raise hand", exact=True).wait_for()
    await bob.wait_hearing(timeout=20)

    # bob raises his hand; alice sees it and invites him; bob joins the stage
    await bob.button("Raise hand")
    hands = alice.page.get_by_role("heading", name=re.compile("Raised hands"))
    await hands.wait_for()
    await alice.button("Invite to speak")
    await bob.page.get_by_role("region", name="You're invited to speak").wait_for()
    await bob.button("Join as speaker")
    await bob.page.get_by_role("button", name="Mute", exact=True).wait_for()

    # alice hears bob
    await alice.wait_hearing(timeout=20)

    # alice mutes bob: his audio stops at alice
    await alice.page.get_by_role("button", name=re.compile("^bob")).click()
    await (
        alice.page.get_by_role("group", name="Actions for bob")
        .get_by_role("button", name="Mute", exact=True)
        .click()
    )
    await bob.page.get_by_text("A moderator muted you.").wait_for()
    await alice.page.get_by_role("button", name=re.compile("^bob")).click()  # menu open again
    failures = await naming_failures(alice.page, "moderator's room view")
    failures += await naming_failures(bob.page, "speaker's room view")
    assert not failures, failures
    await alice.wait_silence(timeout=10)

    # alice ends the room; bob sees that it ended
    await alice.button("End room")
    await bob.page.get_by_text(re.compile("Room ended")).wait_for()
    await alice.page.get_by_text(re.compile("Room ended")).wait_for()
    await asyncio.sleep(0)
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)
