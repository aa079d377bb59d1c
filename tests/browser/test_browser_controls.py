"""The room's other controls in real Chromium, on one node, each person in their own context.

alice hosts; bob, carol and erin listen. Covered here (the story tests cover the rest):
the audience groups ("Followed by the speakers" / "Others in the room"), **Not now**,
**Unmute** (self), **Move to audience**, **Make moderator** (carol then has moderator
controls), **Remove moderator**, **Remove** (erin's page says she was removed),
**Leave quietly**, **Requested** (following a locked account), and the keyboard: erin
joins, raises and lowers her hand with Tab and Enter/Space only.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.browser_harness import Launch, Person
from tests.support.nodes import NodeFactory

FOCUSED_BUTTON_JS = """
() => {
  const el = document.activeElement;
  return el && el.tagName === 'BUTTON' ? el.textContent.trim() : '';
}
"""


async def menu_action(person: Person, who: str, action: str) -> None:
    """Open WHO's tile on PERSON's page and press ACTION in its actions group."""
    page = person.page
    group = page.get_by_role("group", name=f"Actions for {who}")
    if not await group.is_visible():
        await page.get_by_role("button", name=re.compile(f"^{who}")).click()
    await group.get_by_role("button", name=action, exact=True).click()


async def tab_to(page: Any, name: str, limit: int = 40) -> None:
    """Press Tab from the top of the page until the button named NAME has the focus."""
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    seen = []
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED_BUTTON_JS)
        if focused == name:
            return
        seen.append(focused)
    raise AssertionError(f"{name!r} is not reachable with Tab (focused in turn: {seen})")


@pytest.mark.timeout(60)
async def test_pinned_controls_groups_and_keyboard(
    node_factory: NodeFactory, launch: Launch
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    browser = await launch()
    people = {n: await Person.open(browser, node.url, n) for n in ("alice", "bob", "carol", "erin")}
    for person in people.values():
        await person.signup()
    alice, bob, carol, erin = people.values()
    # alice follows carol (not bob); dave's account is locked (approves followers by hand)
    api_alice = await node.user()
    assert (await api_alice.signin("alice"))[0] == 200
    assert (await api_alice.call("POST", "/api/users/carol/follow"))[0] == 200
    dave = await node.user("dave")
    assert (await dave.call("PATCH", "/api/me", {"locked": True}))[0] == 200

    await alice.page.get_by_role("link", name="Start a room").first.click()
    await alice.page.get_by_label("Title").fill("Controls")
    await alice.page.get_by_label("Description").fill("Every button, once.")
    await alice.button("Start room")
    await alice.page.get_by_role("button", name="Mute", exact=True).wait_for()
    room_url = alice.page.url

    for person in (bob, carol):
        await person.page.goto(room_url)
        await person.button("Join")
        await person.page.get_by_role("button", name="Raise hand", exact=True).wait_for()

    # the audience in two groups: carol (followed by alice, on stage) first, then bob
    followed = alice.page.get_by_role("group", name="Followed by the speakers")
    others = alice.page.get_by_role("group", name="Others in the room")
    await followed.get_by_role("button", name=re.compile("^carol")).wait_for()
    await others.get_by_role("button", name=re.compile("^bob")).wait_for()
    assert await followed.get_by_role("button", name=re.compile("^bob")).count() == 0
    await (
        bob.page.get_by_role("group", name="Followed by the speakers")
        .get_by_role("button", name=re.compile("^carol"))
        .wait_for()
    )

    # keyboard only: erin tabs to Join and presses Enter, raises her hand with Space and
    # lowers it with Enter; Leave quietly is reachable too
    await erin.page.goto(room_url)
    await erin.page.get_by_role("button", name="Join", exact=True).wait_for()
    await tab_to(erin.page, "Join")
    await erin.page.keyboard.press("Enter")
    await erin.page.get_by_role("button", name="Raise hand", exact=True).wait_for()
    await tab_to(erin.page, "Raise hand")
    await erin.page.keyboard.press("Space")
    await erin.page.get_by_role("button", name="Lower hand", exact=True).wait_for()
    await alice.page.get_by_role("heading", name=re.compile("Raised hands")).wait_for()
    await tab_to(erin.page, "Lower hand")
    await erin.page.keyboard.press("Enter")
    await erin.page.get_by_role("button", name="Raise hand", exact=True).wait_for()
    await tab_to(erin.page, "Leave quietly")

    # Not now: bob declines alice's invitation; she can invite him again
    await menu_action(alice, "bob", "Invite to speak")
    invitation = bob.page.get_by_role("region", name="You're invited to speak")
    await invitation.wait_for()
    await bob.button("Not now")
    await invitation.wait_for(state="detached")
    assert await bob.page.get_by_role("button", name="Raise hand", exact=True).is_enabled()

    # ... the second time he joins the stage, mutes and unmutes himself
    await menu_action(alice, "bob", "Invite to speak")
    await bob.button("Join as speaker")
    await bob.button("Mute")
    await bob.button("Unmute")
    await bob.page.get_by_role("button", name="Mute", exact=True).wait_for()
    await alice.page.get_by_role("button", name=re.compile("^bob")).wait_for()
    await alice.page.locator(".stage li[data-user=bob]").wait_for()

    # Move to audience: bob is a listener again
    await menu_action(alice, "bob", "Move to audience")
    await bob.page.get_by_role("button", name="Raise hand", exact=True).wait_for()

    # Make moderator: carol goes on stage with moderator controls
    await menu_action(alice, "carol", "Make moderator")
    await carol.page.get_by_role("button", name="End room", exact=True).wait_for()
    await carol.page.get_by_role("button", name=re.compile("^bob")).click()
    await (
        carol.page.get_by_role("group", name="Actions for bob")
        .get_by_role("button", name="Invite to speak", exact=True)
        .wait_for()
    )
    # nobody in the audience is followed by the stage any more: one plain list
    await followed.wait_for(state="detached")

    # Remove: erin's page says so
    await menu_action(alice, "erin", "Remove")
    await erin.page.get_by_text("You were removed from this room.").wait_for()
    await alice.page.get_by_role("button", name=re.compile("^erin")).wait_for(state="detached")

    # Leave quietly: bob's page says he left; he is gone from alice's room
    await bob.button("Leave quietly")
    await bob.page.get_by_text("You left the room.").wait_for()
    await alice.page.get_by_role("button", name=re.compile("^bob")).wait_for(state="detached")

    # Remove moderator: carol stays on stage without the moderator controls
    await menu_action(alice, "carol", "Remove moderator")
    await carol.page.get_by_role("button", name="End room", exact=True).wait_for(state="detached")
    await carol.page.get_by_role("button", name="Mute", exact=True).wait_for()

    # Requested: bob follows dave, whose account is locked
    await bob.page.goto(node.url + "/@dave")
    await bob.button("Follow")
    await bob.page.get_by_role("button", name="Requested", exact=True).wait_for()
    status, requests = await dave.call("GET", "/api/me/follow-requests")
    assert status == 200 and "bob" in str(requests), requests

    errors = {p.name: p.errors for p in people.values() if p.errors}
    assert not errors, errors
