"""Block and mute in real Chromium, found by their accessible names: the profile's
**More actions** menu (**Mute** / **Unmute**, **Block** / **Unblock**) on a phone, the
warning before joining a room where someone you blocked is on stage, the refusal when a
host blocked you, and **Block** in a participant's menu with the moderators' shield."""

from __future__ import annotations

import pytest

from tests.browser.browser_harness import (
    PHONE,
    Launch,
    Person,
    has_horizontal_overflow,
    naming_failures,
)
from tests.support.nodes import NodeFactory


async def menu_item(person: Person, name: str) -> None:
    page = person.page
    menu = page.get_by_role("menu", name="More actions")
    if not await menu.is_visible():
        await page.get_by_role("button", name="More actions").click()
    await menu.get_by_role("menuitem", name=name, exact=True).click()


@pytest.mark.timeout(90)
async def test_block_and_mute_from_profiles_and_rooms(
    node_factory: NodeFactory, launch: Launch
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    browser = await launch()
    alice = await Person.open(browser, node.url, "alice")
    bob = await Person.open(browser, node.url, "bob", PHONE)
    for person in (alice, bob):
        await person.signup()
    erin, carol = await node.user("erin"), await node.user("carol")

    # bob, on a phone: Mute / Unmute, Block / Unblock on alice's profile
    await bob.page.goto(node.url + "/@alice")
    await menu_item(bob, "Mute")
    await bob.page.get_by_text("Muted: their rooms are hidden").wait_for()
    await menu_item(bob, "Unmute")
    await bob.page.get_by_text("Muted: their rooms are hidden").wait_for(state="detached")
    await menu_item(bob, "Block")
    await bob.page.get_by_text("Blocked: they cannot follow you").wait_for()
    assert not await has_horizontal_overflow(bob.page)
    await bob.page.get_by_role("button", name="More actions").click()
    assert await naming_failures(bob.page, "profile (phone)") == []
    await bob.page.get_by_role("menuitem", name="Unblock", exact=True).wait_for()

    # alice starts a room; bob blocked her, so the room tells him before he joins
    await alice.page.get_by_role("link", name="Start a room").first.click()
    await alice.page.get_by_label("Title").fill("Blocks")
    await alice.button("Start room")
    await alice.page.get_by_role("button", name="Mute", exact=True).wait_for()
    room_url = alice.page.url
    await bob.page.goto(room_url)
    await bob.page.get_by_role("note").filter(has_text="You blocked alice").wait_for()

    # erin's room: erin blocked bob, and the client says why he cannot join
    status, room = await erin.call("POST", "/api/rooms", {"title": "Erin's"})
    assert status == 201
    assert (await erin.call("POST", f"/api/rooms/{room['id']}/join"))[0] == 200
    assert (await erin.call("POST", "/api/users/bob/block"))[0] == 200
    await bob.page.goto(f"{node.url}/rooms/{room['id']}")
    await bob.button("Join")
    await bob.page.get_by_text("a host or moderator of this room has blocked you").wait_for()

    # carol listens in alice's room; alice blocks her from the participant menu: shield
    assert (await carol.call("POST", f"/api/rooms/{room_url.rsplit('/', 1)[1]}/join"))[0] == 200
    await alice.page.get_by_role("button", name="carol").click()
    group = alice.page.get_by_role("group", name="Actions for carol")
    await group.get_by_role("button", name="Block", exact=True).click()
    await alice.page.get_by_text("You blocked carol").wait_for()
    await alice.page.get_by_title("Blocked by a moderator").wait_for()
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)
