"""The replay page in a real Chromium: bob opens alice's replay, plays it, seeks to 15 s
and the player's time advances from there (the browser fetches byte ranges); the
waveform, the speakers' timeline, the chapters and the chat are there by their names, the
speed control changes the rate, and a click on a chapter seeks. alice, the host, on a
phone-sized page, trims the replay and deletes it from the page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.browser.browser_harness import (
    PHONE,
    Launch,
    Person,
    has_horizontal_overflow,
    naming_failures,
)
from tests.support.nodes import NodeFactory
from tests.support.replays import ended_room_with_replay

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CURRENT = "() => window.salonDebug.replay.currentTime"
DRAWN = """() => {
  const c = document.querySelector("canvas.waveform");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 4) if (d[i]) return true;
  return false;
}"""


async def advanced_past(page: Any, seconds: float) -> None:
    await page.wait_for_function(
        f"() => window.salonDebug.replay.currentTime > {seconds}", timeout=15_000
    )


@pytest.mark.timeout(120)
async def test_replay_page_plays_and_seeks(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    node = await node_factory()
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    browser = await launch()
    bob = await Person.open(browser, node.url, "bob")
    await bob.signup()
    ranges: list[str] = []
    bob.page.on(
        "request",
        lambda req: (
            ranges.append(req.headers.get("range", "")) if req.url.endswith("/replay.ogg") else None
        ),
    )
    page = bob.page
    await page.goto(f"{node.url}/rooms/{room}/replay")
    await page.get_by_role("heading", name="Tones").wait_for()
    await page.get_by_role("img", name="Waveform").wait_for()
    timeline = page.get_by_role("list", name="Speakers timeline")
    assert await timeline.get_by_role("button").count() == 2
    assert await page.get_by_role("list", name="Chapters").get_by_role("button").count() == 2
    assert "hello" in await page.get_by_role("list", name="Chat").inner_text()
    assert await page.get_by_role("link", name="Download").count() == 1
    assert await page.get_by_role("button", name="Delete replay").count() == 0  # not the host
    assert await naming_failures(page, "replay page") == []
    # the waveform gets drawn (once the node has decoded its peaks)
    await page.wait_for_function(DRAWN)

    # play from the timeline (a user gesture), then seek to 15 s: time advances from there
    await timeline.get_by_role("button").first.click()
    await advanced_past(page, 0.5)
    await page.evaluate("() => { window.salonDebug.replay.currentTime = 15; }")
    await advanced_past(page, 15.3)
    first = await page.evaluate(CURRENT)
    assert 15.0 <= first < 20.0
    await advanced_past(page, first + 0.5)
    assert any(r.startswith("bytes=") for r in ranges), ranges

    await page.get_by_label("Speed").select_option("1.5")
    assert await page.evaluate("() => window.salonDebug.replay.playbackRate") == 1.5
    # a chapter seeks: "Octave up" is at 10 s
    await page.get_by_role("list", name="Chapters").get_by_role("button").nth(1).click()
    await page.wait_for_function(
        "() => { const t = window.salonDebug.replay.currentTime; return t >= 10 && t < 12; }"
    )
    # a click on the waveform's first quarter seeks near 5 s
    box = await page.get_by_role("img", name="Waveform").bounding_box()
    await page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    await page.wait_for_function(
        "() => { const t = window.salonDebug.replay.currentTime; return t >= 4.5 && t < 7; }"
    )
    assert bob.errors == []
    await page.screenshot(path=str(tmp_path / "replay.png"), full_page=True)
    if os.environ.get("SALON_SCREENSHOTS") == "1":
        await page.screenshot(path=str(SHOTS / "replay.png"), full_page=True)


@pytest.mark.timeout(120)
async def test_host_trims_and_deletes_from_the_page(
    node_factory: NodeFactory, launch: Launch
) -> None:
    node = await node_factory()
    browser = await launch()
    alice = await Person.open(browser, node.url, "alice", viewport=PHONE)
    await alice.signup()
    api = await node.user()
    await api.signin("alice")
    room = await ended_room_with_replay(node, api)
    page = alice.page
    await page.goto(f"{node.url}/rooms/{room}/replay")
    trim = page.get_by_role("form", name="Trim")
    await trim.wait_for()
    assert not await has_horizontal_overflow(page)  # a phone-sized page fits
    assert await naming_failures(page, "replay page, host") == []
    await trim.get_by_label("Trim start (seconds)").fill("5")
    await trim.get_by_label("Trim end (seconds)").fill("15")
    await trim.get_by_role("button", name="Trim").click()
    try:
        await page.get_by_text("Hosted by alice · 0:10").wait_for()
    except Exception as exc:
        raise AssertionError(await page.locator("main").inner_text()) from exc
    page.once("dialog", lambda dialog: dialog.accept())
    await alice.button("Delete replay")
    await page.get_by_role("heading", name="Hallway").wait_for()
    assert not (node.settings.replay_path / f"{room}.ogg").exists()
    assert alice.errors == []
