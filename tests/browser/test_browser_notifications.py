"""The notification centre in real Chromium: the top bar's **Notifications** button counts
unread notifications live (its accessible description), the centre lists them, a link opens
the room and marks it read; on the room page **Copy link** says "Link copied" and **Ping**
opens a picker of people to ping."""

from __future__ import annotations

import pytest

from tests.browser.browser_harness import Launch, Person, naming_failures
from tests.support.nodes import NodeFactory


async def description(person: Person) -> str:
    button = person.page.get_by_role("button", name="Notifications", exact=True)
    return str(await button.evaluate("el => el.getAttribute('aria-describedby')"))


@pytest.mark.timeout(120)
async def test_notification_centre_live_count_link_copy_and_ping(
    node_factory: NodeFactory, launch: Launch
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    alice = await node.user("alice")
    browser = await launch()
    bob = await Person.open(browser, node.url, "bob")
    await bob.page.context.grant_permissions(
        ["microphone", "clipboard-read", "clipboard-write"], origin=node.url
    )
    await bob.signup()
    page = bob.page
    count = page.locator(f"#{await description(bob)}")
    assert await count.inner_text() == "No unread notifications"
    await page.goto(node.url + "/@alice")
    await bob.button("Follow")
    await page.get_by_role("button", name="Unfollow", exact=True).wait_for()

    # alice starts a room: bob's count goes up live, without reloading
    status, room = await alice.call("POST", "/api/rooms", {"title": "Late-night ☾ jazz"})
    assert status == 201
    assert (await alice.call("POST", f"/api/rooms/{room['id']}/join"))[0] == 200
    await page.get_by_text("1 unread notification", exact=True).wait_for(state="attached")
    notifications = page.get_by_role("button", name="Notifications", exact=True)
    assert await notifications.get_attribute("aria-describedby") == "notifications-count"

    # the centre lists it; a second one arrives while it is open
    await notifications.click()
    await page.get_by_role("heading", name="Notifications").wait_for()
    link = page.get_by_role("link", name="alice started “Late-night ☾ jazz”")
    await link.wait_for()
    carol = await node.user("carol")
    assert (await carol.call("POST", "/api/users/bob/follow"))[0] == 200
    assert (await bob_follows(page, "carol")) == 200
    status, _ = await carol.call("POST", "/api/rooms", {"title": "Second"})
    assert status == 201
    await page.get_by_role("link", name="carol started “Second”").wait_for()
    await page.get_by_text("2 unread notifications", exact=True).wait_for(state="attached")
    assert await naming_failures(page, "notifications") == []

    # the link opens the room and marks the notification read
    await link.click()
    await page.get_by_role("heading", name="Late-night ☾ jazz").wait_for()
    await page.get_by_text("1 unread notification", exact=True).wait_for(state="attached")

    # Copy link copies the room's URL
    await bob.button("Copy link")
    await page.get_by_text("Link copied", exact=True).wait_for()
    copied = await page.evaluate("() => navigator.clipboard.readText()")
    assert copied == room["url"]

    # once in the room, Ping opens the picker; pinging alice reaches her
    await bob.button("Join")
    await bob.button("Ping")
    await page.get_by_role("button", name="carol (carol)").wait_for()
    await page.get_by_role("button", name="alice (alice)").click()
    await page.get_by_text("Pinged alice", exact=True).wait_for()
    status, body = await alice.call("GET", "/api/notifications")
    assert [(n["kind"], n["actor"]) for n in body["items"]] == [("ping", "bob")]
    assert not bob.errors, bob.errors


async def bob_follows(page: object, name: str) -> int:
    """bob follows NAME through the API from his own page (cookie and CSRF token)."""
    status: int = await page.evaluate(  # type: ignore[attr-defined]
        """async (name) => {
            const me = await (await fetch('/api/me')).json();
            const r = await fetch(`/api/users/${name}/follow`, {method: 'POST',
              headers: {'X-CSRF-Token': me.csrf_token}});
            return r.status;
        }""",
        name,
    )
    return status
