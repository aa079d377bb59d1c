"""Room chat and reactions in a real Chromium: alice hosts, bob listens, each in their own
context. They chat by the pinned names (`Chat`, `Message`, `Send`); a link in a message is
a real link opening in a new tab; HTML typed into the chat shows as text; bob's reaction
shows on his avatar on alice's page; alice deletes bob's message (`Delete message`) and
turns chat off (`Chat off`), which greys bob's box out until `Chat on`. bob's page is
phone-sized: it must not overflow, and every control has a name (a screenshot goes to
tmp_path, and to docs/screenshots/chat-phone.png when SALON_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.browser.browser_harness import (
    PHONE,
    Launch,
    Person,
    has_horizontal_overflow,
    naming_failures,
)
from tests.support.nodes import NodeFactory

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LINKIFY_JS = """
async () => {
  const { linkify } = await import("/static/room/chat.js");
  const cases = ["see https://a.example/x).", "javascript:alert(1)", "ftp://c.example/",
    "(http://b.example/?q=1&r=2)", "http://"];
  return cases.map((text) => linkify(text).filter((n) => n instanceof HTMLAnchorElement)
    .map((a) => a.href));
}
"""
HTML = '<img src=x onerror="window.pwned=1">bold?'


@pytest.mark.timeout(120)
async def test_two_people_chat_a_link_and_a_moderator_deletes(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    browser = await launch()
    alice = await Person.open(browser, node.url, "alice")
    bob = await Person.open(browser, node.url, "bob", viewport=PHONE)
    for person in (alice, bob):
        await person.signup()
    await alice.page.get_by_role("link", name="Start a room").first.click()
    await alice.page.get_by_label("Title").fill("Chat room")
    await alice.button("Start room")
    await alice.page.get_by_role("button", name="Mute", exact=True).wait_for()
    await bob.page.goto(alice.page.url)
    await bob.button("Join")
    await bob.page.get_by_role("button", name="Raise hand", exact=True).wait_for()

    a_chat = alice.page.get_by_role("region", name="Chat")
    b_chat = bob.page.get_by_role("region", name="Chat")
    profile = f"{node.url}/@bob?from=chat"
    await b_chat.get_by_role("textbox", name="Message").fill(f"Slides: {profile}, see you")
    await b_chat.get_by_role("button", name="Send").click()
    link = a_chat.get_by_role("link", name=profile)
    await link.wait_for()
    assert await link.get_attribute("href") == profile  # the trailing comma is not the link's
    assert await link.get_attribute("target") == "_blank"
    assert set((await link.get_attribute("rel") or "").split()) == {
        "noopener",
        "noreferrer",
        "nofollow",
    }
    # clicking it opens the page in a new tab, which cannot reach back to the room's page
    async with alice.page.context.expect_page() as opened:
        await link.click()
    tab = await opened.value
    await tab.wait_for_load_state()
    assert tab.url == profile
    assert await tab.evaluate("() => window.opener === null")
    await tab.close()
    # alice's screen reader hears bob's new message (a polite status in the panel)
    said = a_chat.get_by_role("status").filter(has_text="bob: Slides:")
    await said.wait_for(state="attached")
    bobs = a_chat.get_by_role("listitem").filter(has_text="Slides:")
    assert "bob" in await bobs.inner_text()
    assert await b_chat.get_by_role("textbox", name="Message").input_value() == ""

    # alice answers with HTML: bob sees the characters, nothing runs
    await a_chat.get_by_role("textbox", name="Message").fill(HTML)
    await a_chat.get_by_role("textbox", name="Message").press("Enter")
    await b_chat.get_by_role("listitem").filter(has_text="bold?").wait_for()
    assert HTML in await b_chat.inner_text()
    assert await b_chat.locator("img").count() == 0
    assert await bob.page.evaluate("() => window.pwned === undefined")
    # bob may delete only his own message: alice's has no Delete button on his page
    alices = b_chat.get_by_role("listitem").filter(has_text="bold?")
    assert await alices.get_by_role("button", name="Delete message").count() == 0

    # bob claps: the reaction shows on bob's avatar on alice's page
    await (
        bob.page.get_by_role("toolbar", name="Reactions")
        .get_by_role("button", name="Clap", exact=True)
        .click()
    )
    badge = alice.page.locator('li.person[data-user="bob"] .reaction-badge')
    await badge.wait_for()
    assert await badge.get_attribute("data-reactions") == "clap"

    # alice, the host, deletes bob's message: it disappears on both pages
    await bobs.get_by_role("button", name="Delete message").click()
    await b_chat.get_by_role("listitem").filter(has_text="Slides:").wait_for(state="detached")
    await a_chat.get_by_role("listitem").filter(has_text="Slides:").wait_for(state="detached")

    # chat off: bob's box is disabled, and on again
    await a_chat.get_by_role("button", name="Chat off", exact=True).click()
    await b_chat.get_by_text("Chat is off.").wait_for()
    assert await b_chat.get_by_role("textbox", name="Message").is_disabled()
    assert await a_chat.get_by_role("textbox", name="Message").is_disabled()
    assert await b_chat.get_by_role("button", name="Chat on").count() == 0  # not a moderator
    await a_chat.get_by_role("button", name="Chat on", exact=True).click()
    await b_chat.get_by_role("textbox", name="Message").wait_for(state="visible")
    await bob.page.wait_for_function(
        "() => !document.querySelector('#chat-box').disabled", timeout=15_000
    )
    # what becomes a link: http(s) URLs only, without trailing punctuation
    links = await bob.page.evaluate(LINKIFY_JS)
    assert links == [
        ["https://a.example/x"],
        [],
        [],
        ["http://b.example/?q=1&r=2"],
        [],
    ]
    # bob's phone-sized page with the chat and the reactions: fits, every control named
    assert not await has_horizontal_overflow(bob.page)
    await b_chat.scroll_into_view_if_needed()
    shot = await bob.page.screenshot(path=str(tmp_path / "chat-phone.png"), full_page=True)
    if os.environ.get("SALON_SCREENSHOTS") == "1":
        (SHOTS / "chat-phone.png").write_bytes(shot)
    assert await naming_failures(bob.page, "bob's room with chat") == []
    assert await naming_failures(alice.page, "alice's room with chat") == []

    # Hide messages from bob's tile: every message of his goes on both pages
    bobs_messages = "li.chat-message[data-author='bob']"
    await b_chat.get_by_role("textbox", name="Message").fill("one more thing")
    await b_chat.get_by_role("button", name="Send").click()
    await a_chat.get_by_role("listitem").filter(has_text="one more thing").wait_for()
    assert await alice.page.locator(bobs_messages).count() > 0
    group = alice.page.get_by_role("group", name="Actions for bob")
    if not await group.is_visible():
        await alice.page.get_by_role("button", name=re.compile("^bob")).click()
    await group.get_by_role("button", name="Hide messages", exact=True).click()
    for person in (alice, bob):
        await person.page.wait_for_function(
            f"() => document.querySelectorAll({bobs_messages!r}).length === 0", timeout=15_000
        )
    for person in (alice, bob):
        assert not person.errors, person.errors
