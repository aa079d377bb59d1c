"""Notify me in real Chromium: the hallway card and the room page toggle (pinned names),
Add to calendar, the host's count, and the calendar feed link on your own profile."""

from __future__ import annotations

import time

import pytest

from tests.browser.browser_harness import Launch, Person
from tests.support.network import FAST, follow_accepted
from tests.support.nodes import NodeFactory
from tests.support.rsvp import events


@pytest.mark.timeout(90)
async def test_notify_me_in_the_browser(node_factory: NodeFactory, launch: Launch) -> None:
    node = await node_factory()
    alice = await node.user("alice")
    status, room = await alice.call(
        "POST", "/api/rooms", {"title": "Sunday jazz", "start_time": time.time() + 7200}
    )
    assert status == 201, room
    browser = await launch()
    bob = await Person.open(browser, node.url, "bob")
    await bob.signup()
    page = bob.page

    # the hallway's upcoming card: Notify me → Don't notify me
    card = page.get_by_role("article", name="Sunday jazz")
    await card.get_by_role("button", name="Notify me", exact=True).click()
    await card.get_by_role("button", name="Don't notify me", exact=True).wait_for()
    _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert view["rsvp_count"] == 1

    # the room page: the toggle shows the same, and the calendar link is the room's .ics
    await page.goto(f"{node.url}/rooms/{room['id']}")
    await page.get_by_role("heading", name="Sunday jazz").wait_for()
    toggle = page.get_by_role("button", name="Don't notify me", exact=True)
    await toggle.wait_for()
    link = page.get_by_role("link", name="Add to calendar")
    assert await link.get_attribute("href") == f"/rooms/{room['id']}.ics"
    ics = await page.evaluate(
        "(href) => fetch(href).then((r) => r.text())", f"/rooms/{room['id']}.ics"
    )
    assert str(events(ics)[0]["SUMMARY"]) == "Sunday jazz"
    await toggle.click()
    await page.get_by_role("button", name="Notify me", exact=True).wait_for()
    _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert view["rsvp_count"] == 0
    await page.get_by_role("button", name="Notify me", exact=True).click()
    await page.get_by_role("button", name="Don't notify me", exact=True).wait_for()

    # the host's page says how many asked
    host = await Person.open(browser, node.url, "alice")
    await host.page.goto(node.url + "/")
    await host.page.get_by_label("Username").fill("alice")
    await host.page.get_by_label("Password").fill("password123")
    await host.page.get_by_role("button", name="Sign in").click()
    await host.page.get_by_role("heading", name="Hallway").wait_for()
    await host.page.goto(f"{node.url}/rooms/{room['id']}")
    await host.page.get_by_text("1 person asked to be notified").wait_for()

    # bob's calendar feed link, from his own profile
    await page.goto(f"{node.url}/@bob")
    await page.get_by_role("button", name="Create calendar link").click()
    feed = page.get_by_role("textbox", name="Calendar feed link")
    await feed.wait_for()
    url = await feed.input_value()
    assert url.startswith(f"{node.url}/calendar/")
    text = await page.evaluate("(u) => fetch(u).then((r) => r.text())", url)
    assert [str(e["SUMMARY"]) for e in events(text)] == ["Sunday jazz"]
    assert not bob.errors and not host.errors, (bob.errors, host.errors)


@pytest.mark.timeout(120)
async def test_notify_me_on_a_remote_hallway_card(
    node_factory: NodeFactory, launch: Launch
) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice = await a.user("alice")
    bob_api = await b.user("bob")
    await follow_accepted(bob_api, alice, a)
    status, room = await alice.call(
        "POST", "/api/rooms", {"title": "Remote quiz", "start_time": time.time() + 7200}
    )
    assert status == 201, room
    browser = await launch()
    bob = await Person.open(browser, b.url, "bob")
    page = bob.page
    await page.goto(b.url + "/")
    await page.get_by_label("Username").fill("bob")
    await page.get_by_label("Password").fill("password123")
    await page.get_by_role("button", name="Sign in").click()
    card = page.get_by_role("article", name="Remote quiz")
    await card.get_by_role("button", name="Notify me", exact=True).click(timeout=30_000)
    await card.get_by_role("button", name="Don't notify me", exact=True).wait_for()
    _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert view["rsvp_count"] == 1
    link = card.get_by_role("link", name="Remote quiz")
    await link.click()
    await page.get_by_role("button", name="Don't notify me", exact=True).wait_for()
    href = await page.get_by_role("link", name="Add to calendar").get_attribute("href")
    assert href == f"{room['url']}.ics"
    assert not bob.errors, bob.errors
