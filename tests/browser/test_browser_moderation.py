"""A real Chromium: a report filed through the Report dialog by its accessible names, and
an admin resolving it on ``/admin`` at phone size (no overflow, every control named).

The phone screenshot goes to tmp_path, and to docs/screenshots/admin-phone.png when
SALON_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.browser.browser_harness import (
    PHONE,
    Launch,
    Person,
    has_horizontal_overflow,
    naming_failures,
)
from tests.support.attacks import parts
from tests.support.nodes import NodeFactory

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def report_through_dialog(bob: Person, reason: str, comment: str) -> None:
    page = bob.page
    await page.get_by_role("button", name="More actions").click()
    await page.get_by_role("menuitem", name="Report").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Reason").select_option(reason)
    await dialog.get_by_label("Comment").fill(comment)
    await dialog.get_by_role("button", name="Send report").click()
    await dialog.get_by_role("status").filter(has_text="Thank you").wait_for()
    await dialog.get_by_role("button", name="Done").click()


async def test_report_dialog_and_admin_desk(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    node = await node_factory()
    alice = await node.user("alice")
    status, room = await alice.call("POST", "/api/rooms", {"title": "Loud room"})
    assert status == 201, room
    await parts(node).accounts.create_user("root", "password123", is_admin=True)
    browser = await launch()

    bob = await Person.open(browser, node.url, "bob")
    await bob.signup()
    await bob.page.goto(f"{node.url}/@alice")
    await report_through_dialog(bob, "harassment", "Insults in every message")
    await bob.page.goto(room["url"])
    await bob.page.get_by_role("heading", name="Loud room").wait_for()
    await report_through_dialog(bob, "spam", "Advertising only")
    reports = parts(node).desk.reports(None, "open")
    assert [(r["category"], r["reporter"], r["target_user"]) for r in reports] == [
        ("spam", "bob", "alice"),
        ("harassment", "bob", "alice"),
    ]
    assert reports[0]["context"]["room"]["title"] == "Loud room"
    assert not await bob.page.get_by_role("link", name="Moderation").count()
    response = await bob.page.goto(f"{node.url}/admin")
    assert response is not None and response.status == 403

    admin = await Person.open(browser, node.url, "root", viewport=PHONE)
    page = admin.page
    await page.goto(node.url + "/")
    await page.get_by_label("Username").fill("root")
    await page.get_by_label("Password").fill("password123")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Hallway").wait_for()
    # admins find the desk in the main navigation; bob (not an admin) has no such link
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Moderation").click()
    await page.get_by_role("heading", name="Moderation desk").wait_for()
    await page.get_by_role("button", name="Reports").click()
    first = page.get_by_role("article", name="Report 2: spam · alice")
    await first.wait_for()
    await first.get_by_text("Loud room").wait_for()
    assert await first.get_by_role("button", name="Suspend").is_visible()
    assert not await first.get_by_role("button", name="Limit").count(), "alice is local"

    shot = tmp_path / "admin-phone.png"
    await page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("SALON_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / "admin-phone.png"), full_page=True)
    assert not await has_horizontal_overflow(page)
    assert await naming_failures(page, "/admin") == []

    await first.get_by_label("Note for report 2").fill("Room ended by the host; warned")
    await first.get_by_role("button", name="Resolve").click()
    await page.get_by_role("article", name="Report 2: spam · alice").wait_for(state="detached")
    assert [r["id"] for r in parts(node).desk.reports(None, "open")] == [1]

    await page.get_by_role("button", name="Domains").click()
    await page.get_by_label("Domain").fill("spam.example")
    await page.get_by_label("Policy").select_option("suspend")
    await page.get_by_role("button", name="Save policy").click()
    await page.get_by_text("spam.example").wait_for()
    assert not await has_horizontal_overflow(page)

    await page.get_by_role("button", name="Audit log").click()
    log = page.get_by_role("list")
    await log.get_by_text("resolve report 2").wait_for()
    await log.get_by_text("domain suspend spam.example").wait_for()
    # a warning reaches the warned person: bob reads it on his own profile
    root = parts(node).accounts.users.by_name("root")
    await parts(node).desk.warn(root, "bob", "Please keep reports to real abuse.")
    await bob.page.goto(f"{node.url}/@bob")
    notes = bob.page.get_by_role("region", name="Notes from the moderators")
    await notes.get_by_text("Please keep reports to real abuse.").wait_for()
    assert bob.errors == [] and admin.errors == []
