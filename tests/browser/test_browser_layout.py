"""Phone and desktop layouts, accessible names, and the README's screenshots.

One populated node (bots on stage, a listener, an upcoming room) is visited at 360×740 and
1280×860: nothing may overflow horizontally, every control must have an accessible name.
Screenshots go to tmp_path, and to docs/screenshots/ when SALON_SCREENSHOTS=1:

    SALON_SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser/test_browser_layout.py
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.browser_harness import (
    DESKTOP,
    PHONE,
    Launch,
    Person,
    has_horizontal_overflow,
    naming_failures,
    speech,
)
from tests.support.cli import creds, salon
from tests.support.nodes import Node, NodeFactory

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass
class Scene:
    node: Node
    room_url: str
    bots: list[Any]


@pytest.fixture
async def scene(node_factory: NodeFactory, tmp_path: Path) -> AsyncIterator[Scene]:
    """alice hosts a live room with carol on stage and dave listening; erin has one upcoming."""
    node = await node_factory(ice_addresses=("127.0.0.1",))
    for name in ("alice", "carol", "dave"):
        user = await node.user(name)
        await user.call("PATCH", "/api/me", {"display_name": name.capitalize()})
    alice = node.users[0]
    await alice.call(
        "PATCH",
        "/api/me",
        {"display_name": "Alice Moreau", "bio": "Hosts Sunday morning conversations."},
    )
    erin = await node.user("erin")
    await erin.call(
        "POST",
        "/api/rooms",
        {
            "title": "Book club: The Dispossessed",
            "description": "Chapters 1-4.",
            "start_time": time.time() + 26 * 3600,
        },
    )
    host = await salon(
        "bot",
        "host",
        *creds(node, "alice"),
        "--title",
        "Sunday morning, slowly",
        "--play",
        str(speech(tmp_path / "alice.wav", "Good morning and welcome. Grab a coffee. " * 4)),
        "--auto-invite",
        "--seconds",
        "90",
    )
    assert host.stdout is not None
    room_url = (await asyncio.wait_for(host.stdout.readline(), 20)).decode().strip()
    carol = await salon(
        "bot",
        "listen",
        room_url,
        *creds(node, "carol"),
        "--raise-hand",
        "--play",
        str(speech(tmp_path / "carol.wav", "I have been reading all week. " * 4)),
        "--seconds",
        "90",
    )
    dave = await salon("bot", "listen", room_url, *creds(node, "dave"), "--seconds", "90")
    bots = [host, carol, dave]
    try:
        yield Scene(node, room_url, bots)
    finally:
        for proc in bots:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
        for proc in bots:
            await asyncio.wait_for(proc.communicate(), 30)


async def check_page(person: Person, label: str, failures: list[str]) -> None:
    page = person.page
    await page.wait_for_timeout(300)  # let the page settle (polls, fonts)
    if await has_horizontal_overflow(page):
        width = await page.evaluate("() => document.scrollingElement.scrollWidth")
        failures.append(f"{label}: horizontal overflow ({width}px wide)")
    failures.extend(await naming_failures(page, label))


async def shoot(person: Person, name: str, tmp_path: Path) -> None:
    target = tmp_path / f"{name}.png"
    await person.page.screenshot(path=str(target), full_page=False)
    if os.environ.get("SALON_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / f"{name}.png").write_bytes(target.read_bytes())


async def visit_everything(
    person: Person, scene: Scene, size: str, tmp_path: Path, failures: list[str]
) -> None:
    page = person.page
    await check_page(person, f"{size} sign-in", failures)
    await person.signup()

    await page.get_by_role("link", name="Sunday morning, slowly").wait_for()
    await page.get_by_role("link", name="Book club: The Dispossessed").wait_for()
    await check_page(person, f"{size} hallway", failures)
    await shoot(person, f"hallway-{size}", tmp_path)

    await page.get_by_label("Search").fill("alice")
    await page.get_by_label("Search").press("Enter")
    await page.get_by_role("heading", name="Alice Moreau").wait_for()
    await person.button("Follow")
    await page.get_by_role("button", name="Unfollow", exact=True).wait_for()
    await page.get_by_role("link", name="Sunday morning, slowly").wait_for()
    await check_page(person, f"{size} profile", failures)
    await shoot(person, f"profile-{size}", tmp_path)

    await page.get_by_role("link", name="Sunday morning, slowly").click()
    await person.button("Join")
    await page.get_by_role("button", name="Raise hand", exact=True).wait_for()
    await person.wait_hearing(timeout=20)
    await page.locator(".person.speaking").first.wait_for(timeout=10_000)
    await check_page(person, f"{size} room", failures)
    await shoot(person, f"room-{size}", tmp_path)

    await page.get_by_role("link", name="Salon").click()
    await page.get_by_role("heading", name="Hallway").wait_for()
    # the room keeps playing: the player bar at the bottom of the hallway
    await page.get_by_role("region", name="Now playing").wait_for()
    await check_page(person, f"{size} hallway with the player bar", failures)
    await shoot(person, f"player-{size}", tmp_path)
    await page.get_by_role("link", name="Start a room").first.click()
    await page.get_by_label("Title").wait_for()
    await page.get_by_label("Schedule for later").check()
    await check_page(person, f"{size} new room", failures)


@pytest.mark.timeout(120)
async def test_phone_and_desktop_layouts_names_and_screenshots(
    scene: Scene, launch: Launch, tmp_path: Path
) -> None:
    browser = await launch()
    failures: list[str] = []
    desktop = await Person.open(browser, scene.node.url, "bob", DESKTOP)
    phone = await Person.open(browser, scene.node.url, "frank", PHONE)
    await visit_everything(desktop, scene, "desktop", tmp_path, failures)
    await visit_everything(phone, scene, "phone", tmp_path, failures)
    assert not failures, "\n".join(failures)
    assert not desktop.errors and not phone.errors, (desktop.errors, phone.errors)
