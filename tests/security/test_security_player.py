"""Attacks on the player that stays (issue 13), in real Chromium against a real node.

The room session outlives the room page, so everything that ends or changes a room must
reach a person who is somewhere else in the app: a hostile title is drawn as text in the bar
and on the lock screen, a removal and a room's end stop the audio and say so in the bar (and
a removed person cannot slip back in through `Back to room`), signing out leaves the room
(the next account in the tab inherits nothing) and a closed tab's seat is freed after the
reconnect grace.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.browser.browser_harness import Launch, Person, chromium_launcher, require_chromium
from tests.support.network import eventually
from tests.support.nodes import ApiUser, Node, NodeFactory

# markup, a right-to-left override, an emoji sequence and the widest character there is
HOSTILE = '<img src=x onerror="window.pwned=1">\u202eevil 🎙️ ' + "ﷺ" * 20


@pytest.fixture
async def launch() -> AsyncIterator[Launch]:
    require_chromium()
    async for launcher in chromium_launcher():
        yield launcher


class Host:
    """alice's room over the API, with her socket open (so the room lives) and every event."""

    def __init__(self, api: ApiUser, room: dict[str, Any]) -> None:
        self.api = api
        self.room = room
        self.events: list[dict[str, Any]] = []
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, node: Node, title: str) -> AsyncIterator[Host]:
        api = await node.user("alice")
        status, room = await api.call("POST", "/api/rooms", {"title": title})
        assert status == 201, room
        host = cls(api, room)
        host.ws = await api.ws(room["id"])
        host.task = asyncio.create_task(host.record())
        try:
            yield host
        finally:
            host.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await host.task
            await host.ws.close()

    async def record(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            message = msg.json()
            if message.get("type") == "event":
                self.events.append(message)

    def about(self, user: str) -> list[str]:
        return [e["event"] for e in self.events if e.get("user") == user]

    async def action(self, action: str, body: Any = None) -> Any:
        status, view = await self.api.call("POST", f"/api/rooms/{self.room['id']}/{action}", body)
        assert status == 200, view
        return view


async def join_then_browse(bob: Person, host: Host) -> Any:
    """bob joins alice's room and goes to the hallway; returns the player bar."""
    page = bob.page
    await bob.signup()
    await page.goto(host.room["url"])
    await bob.button("Join")
    await page.get_by_role("button", name="Raise hand", exact=True).wait_for()
    await eventually(lambda: _has(host, "bob", "joined"), timeout=10)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Hallway").click()
    await page.get_by_role("heading", name="Hallway").wait_for()
    bar = page.get_by_role("region", name="Now playing")
    await bar.wait_for()
    return bar


async def _has(host: Host, user: str, event: str) -> bool:
    return event in host.about(user)


@pytest.mark.timeout(90)
async def test_hostile_title_is_text_in_the_bar_and_on_the_lock_screen(
    node_factory: NodeFactory, launch: Launch
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    async with Host.open(node, HOSTILE) as host:
        bob = await Person.open(await launch(), node.url, "bob")
        bar = await join_then_browse(bob, host)
        shown = await bar.locator(".player-title").text_content()
        assert shown == host.room["title"], (shown, host.room["title"])
        assert await bar.locator("img").count() == 0
        assert await bob.page.evaluate("() => window.pwned") is None
        media = await bob.page.evaluate("() => navigator.mediaSession.metadata.title")
        assert media == host.room["title"]
        assert media == HOSTILE.strip()

        # a new title reaches the bar and the lock screen while bob is elsewhere
        status, _ = await host.api.call(
            "PATCH", f"/api/rooms/{host.room['id']}", {"title": "Renamed <b>room</b>"}
        )
        assert status == 200
        await bar.get_by_text("Renamed <b>room</b>", exact=True).wait_for()
        await bob.page.wait_for_function(
            "() => navigator.mediaSession.metadata.title === 'Renamed <b>room</b>'"
        )
        assert not bob.errors, bob.errors


@pytest.mark.timeout(90)
async def test_removed_while_browsing_stops_audio_and_stays_out(
    node_factory: NodeFactory, launch: Launch
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    async with Host.open(node, "Strict room") as host:
        bob = await Person.open(await launch(), node.url, "bob")
        bar = await join_then_browse(bob, host)
        await host.action("remove", {"user": "bob"})
        await bar.get_by_text("You were removed from “Strict room”.").wait_for()
        assert await bob.page.evaluate("() => window.salonDebug.pc") is None
        assert await bar.get_by_role("button", name="Raise hand").count() == 0
        assert await bob.page.evaluate("() => navigator.mediaSession.playbackState") == "none"

        # Back to room shows the removal; joining again is refused by the node
        await bar.get_by_role("link", name="Back to room").click()
        await bob.page.get_by_text("You were removed from this room.").wait_for()
        await bar.wait_for(state="hidden")
        await bob.page.goto(host.room["url"])  # a fresh page: the Join button again
        await bob.button("Join")
        await bob.page.get_by_text("You can't join this room").wait_for()
        assert host.about("bob").count("joined") == 1, host.about("bob")
        assert not bob.errors, bob.errors


@pytest.mark.timeout(90)
async def test_room_ending_while_browsing_is_said_and_dismissed(
    node_factory: NodeFactory, launch: Launch
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    async with Host.open(node, "Short talk") as host:
        bob = await Person.open(await launch(), node.url, "bob")
        bar = await join_then_browse(bob, host)
        await host.action("end")
        await bar.get_by_text("“Short talk” ended.").wait_for()
        assert await bob.page.evaluate("() => window.salonDebug.pc") is None
        await bar.get_by_role("button", name="Dismiss", exact=True).click()
        await bar.wait_for(state="hidden")
        assert not bob.errors, bob.errors


@pytest.mark.timeout(90)
async def test_signing_out_leaves_and_the_next_account_inherits_nothing(
    node_factory: NodeFactory, launch: Launch
) -> None:
    # a long reconnect grace: only an explicit leave frees bob's seat during this test
    node = await node_factory(ice_addresses=("127.0.0.1",), reconnect_grace_seconds=600.0)
    async with Host.open(node, "Shared laptop") as host:
        bob = await Person.open(await launch(), node.url, "bob")
        await join_then_browse(bob, host)
        await bob.page.get_by_role("link", name="Profile").click()
        await bob.button("Sign out")
        await bob.page.get_by_label("Username").wait_for()
        await eventually(lambda: _has(host, "bob", "left"), timeout=10)
        # dave signs in on the same tab: no bar, no audio, no session of bob's
        dave = await node.user("dave")
        await dave.close()
        await bob.page.get_by_label("Username").fill("dave")
        await bob.page.get_by_label("Password").fill("password123")
        await bob.page.get_by_role("button", name="Sign in").click()
        await bob.page.get_by_role("heading", name="Hallway").wait_for()
        assert await bob.page.get_by_role("region", name="Now playing").count() == 0
        assert await bob.page.evaluate("() => window.salonDebug.pc") is None
        assert await bob.page.evaluate("() => window.salonDebug.sessions()") == 1
        _, view = await host.api.call("GET", f"/api/rooms/{host.room['id']}")
        assert [p["user"] for p in view["listeners"]] == [], view
        assert not bob.errors, bob.errors


@pytest.mark.timeout(90)
async def test_closing_the_tab_frees_the_seat_after_the_grace(
    node_factory: NodeFactory, launch: Launch
) -> None:
    """A closed tab holds no seat for longer than the reconnect grace (no ghost listener)."""
    node = await node_factory(ice_addresses=("127.0.0.1",), reconnect_grace_seconds=1.0)
    async with Host.open(node, "Closing time") as host:
        bob = await Person.open(await launch(), node.url, "bob")
        await join_then_browse(bob, host)
        await bob.page.close(run_before_unload=True)
        await eventually(lambda: _has(host, "bob", "left"), timeout=15)
        seen = host.about("bob")
        assert seen.index("disconnected") < seen.index("left"), seen
        _, view = await host.api.call("GET", f"/api/rooms/{host.room['id']}")
        assert "bob" not in [p["user"] for p in view["listeners"]], view
