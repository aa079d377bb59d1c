"""Issue 13's player that stays, in real Chromium: a listener joins a bot's room, browses the
hallway and a profile while the room keeps playing (audio keeps arriving at the browser),
raises a hand from the player bar, comes back with `Back to room` to the same session (the
node saw one join, the page kept its RTCPeerConnection) and leaves from the bar.

A second person in the room (carol, over the WebSocket API) records every event the node
sends about bob: the node's own account of joins, hands and leaves. Also: the bar on stage
(Mute / Unmute) and when invited, joining another room (which leaves the first), and the
same story for a room on another node joined through bob's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from federation.as2 import host_of
from tests.browser.browser_harness import (
    DESKTOP,
    PHONE,
    Launch,
    Person,
    has_horizontal_overflow,
    naming_failures,
)
from tests.support.audio import tone
from tests.support.cli import creds, salon
from tests.support.network import AUDIO, eventually
from tests.support.nodes import ApiUser, Node, NodeFactory

TITLE = "Tone all along"
SMALL_PHONE = {"width": 320, "height": 480}
AUDIO_PAUSED_JS = "() => document.querySelector('audio.room-audio').paused"
# at the top of a page longer than the screen, is the room's Join button under the bar?
CONTROLS_UNDER_BAR_JS = """
() => {
  window.scrollTo(0, 0);
  const join = [...document.querySelectorAll('.controls button')]
    .find((b) => b.textContent.trim() === 'Join');
  const bar = document.querySelector('.player');
  if (!join || !bar) throw new Error('no Join button or no bar');
  if (document.scrollingElement.scrollHeight <= window.innerHeight) throw new Error('short page');
  return join.getBoundingClientRect().bottom > bar.getBoundingClientRect().top;
}
"""
# what the node says when a browser joins: the seat (POST /join), then its socket claims it
JOINED = ["joined", "reconnected"]


async def record_events(ws: aiohttp.ClientWebSocketResponse, into: list[dict[str, Any]]) -> None:
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        message = msg.json()
        if message.get("type") == "event":
            into.append(message)


def about(events: list[dict[str, Any]], user: str) -> list[str]:
    return [e["event"] for e in events if e.get("user") == user]


async def packets(person: Person) -> int:
    return int((await person.inbound())["packetsReceived"])


async def keeps_hearing(person: Person, where: str) -> None:
    """Audio still arrives here: more packets than a moment ago, and sound in them."""
    before = await packets(person)
    await person.wait_hearing(timeout=20)
    after = await packets(person)
    assert after > before, f"no audio packets arrived on the {where} ({before} → {after})"


@pytest.mark.timeout(150)
async def test_player_keeps_the_room_while_browsing(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    await node.user("alice")
    host = await salon(
        "bot",
        "host",
        *creds(node, "alice"),
        "--title",
        TITLE,
        "--play",
        str(tone(tmp_path / "440.wav", 440)),
        "--seconds",
        "120",
    )
    recorder: asyncio.Task[None] | None = None
    try:
        assert host.stdout is not None
        room_url = (await asyncio.wait_for(host.stdout.readline(), 20)).decode().strip()
        room_id = room_url.rsplit("/", 1)[1]

        carol = await node.user("carol")
        events: list[dict[str, Any]] = []
        carol_ws = await carol.ws(room_id)
        recorder = asyncio.create_task(record_events(carol_ws, events))

        bob = await Person.open(await launch(), node.url, "bob")
        page = bob.page
        await bob.signup()
        await page.goto(room_url)
        await page.get_by_role("heading", name=TITLE).wait_for()
        await bob.button("Join")
        await page.get_by_role("button", name="Raise hand", exact=True).wait_for()
        await bob.wait_hearing(timeout=20)

        async def joined_on_node() -> bool:
            return about(events, "bob") == JOINED

        await eventually(joined_on_node, timeout=10)
        await page.evaluate("() => { window.firstPc = window.salonDebug.pc; }")
        assert await page.evaluate("() => window.salonDebug.sessions()") == 1

        # on the room's own page there is no player bar
        bar = page.get_by_role("region", name="Now playing")
        assert await bar.count() == 0 or not await bar.is_visible()

        # hallway: the bar shows the room, and the room keeps playing
        nav = page.get_by_role("navigation", name="Main")
        hallway_link = nav.get_by_role("link", name="Hallway")
        await hallway_link.click()
        await page.get_by_role("heading", name="Hallway").wait_for()
        await bar.wait_for()
        await bar.get_by_text(TITLE).wait_for()
        await bar.get_by_text(re.compile("^(Speaking|On stage): alice")).wait_for()
        await keeps_hearing(bob, "hallway")

        # the lock screen knows the room (Media Session)
        media = await page.evaluate(
            """() => ({
              title: navigator.mediaSession.metadata && navigator.mediaSession.metadata.title,
              artist: navigator.mediaSession.metadata && navigator.mediaSession.metadata.artist,
              album: navigator.mediaSession.metadata && navigator.mediaSession.metadata.album,
              state: navigator.mediaSession.playbackState,
            })"""
        )
        assert media == {"title": TITLE, "artist": "alice", "album": "Salon", "state": "playing"}

        # the lock screen's pause (what its handler calls): playout stops here, the seat stays;
        # the bar says so and its Resume plays the live room again
        await page.evaluate("() => window.salonDebug.player.pause(true)")
        await bar.get_by_text("Paused on this device.").wait_for()
        assert await page.evaluate(AUDIO_PAUSED_JS) is True
        assert await page.evaluate("() => navigator.mediaSession.playbackState") == "paused"
        await bar.get_by_role("button", name="Resume", exact=True).click()
        await bar.get_by_text("Paused on this device.").wait_for(state="detached")
        assert await page.evaluate(AUDIO_PAUSED_JS) is False
        assert await page.evaluate("() => navigator.mediaSession.playbackState") == "playing"

        # a profile (through the search box), then the hallway again: still playing
        await page.get_by_label("Search").fill("alice")
        await page.get_by_label("Search").press("Enter")
        await page.get_by_role("heading", name="alice", exact=True).wait_for()
        await bar.wait_for()
        await keeps_hearing(bob, "profile")
        await hallway_link.click()
        await page.get_by_role("heading", name="Hallway").wait_for()
        await keeps_hearing(bob, "hallway again")

        # at phone width the bar fits and every control in it has a name
        await page.set_viewport_size(PHONE)
        await page.wait_for_timeout(300)
        assert not await has_horizontal_overflow(page)
        failures = await naming_failures(page, "hallway with the player bar (phone)")
        assert not failures, failures
        await page.set_viewport_size(DESKTOP)

        # raise the hand from the bar: the node has it
        await bar.get_by_role("button", name="Raise hand", exact=True).click()
        await bar.get_by_role("button", name="Lower hand", exact=True).wait_for()

        async def hand_on_node() -> bool:
            _, view = await carol.call("GET", f"/api/rooms/{room_id}")
            return "bob" in view.get("hands", [])

        await eventually(hand_on_node, timeout=10)

        # Back to room: the room page, the same session — no new join, the same peer connection
        await bar.get_by_role("link", name="Back to room").click()
        await page.get_by_role("heading", name=TITLE).wait_for()
        await page.get_by_role("button", name="Lower hand", exact=True).wait_for()
        assert not await bar.is_visible()
        assert await page.evaluate("() => window.salonDebug.pc === window.firstPc")
        assert await page.evaluate("() => window.salonDebug.sessions()") == 1
        await keeps_hearing(bob, "room page after coming back")
        assert about(events, "bob") == [*JOINED, "hand_raised"], about(events, "bob")

        # the keyboard reaches the bar's controls (away from the room page again)
        await page.get_by_role("link", name="alice", exact=True).first.click()
        await page.get_by_role("heading", name="alice", exact=True).wait_for()
        await bar.get_by_role("button", name="Lower hand", exact=True).focus()
        await page.keyboard.press("Enter")
        await bar.get_by_role("button", name="Raise hand", exact=True).wait_for()

        # Leave quietly from the bar: the node sees bob leave, the bar goes, audio stops
        await bar.get_by_role("button", name="Leave quietly", exact=True).click()
        await bar.wait_for(state="hidden")
        await page.get_by_text(f"You left “{TITLE}”.").wait_for(state="attached")
        # the keyboard lands on the page, not on a control that went away
        assert await page.evaluate("() => document.activeElement.id") == "main"

        async def left_on_node() -> bool:
            return about(events, "bob")[-1:] == ["left"]

        await eventually(left_on_node, timeout=10)
        assert about(events, "bob") == [*JOINED, "hand_raised", "hand_lowered", "left"]
        assert await page.evaluate("() => window.salonDebug.pc") is None
        assert await page.evaluate("() => navigator.mediaSession.playbackState") == "none"
        _, view = await carol.call("GET", f"/api/rooms/{room_id}")
        assert "bob" not in [p["user"] for p in view["listeners"]], view
        assert not bob.errors, bob.errors
    finally:
        if recorder is not None:
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
        if host.returncode is None:
            host.send_signal(signal.SIGINT)
        await asyncio.wait_for(host.communicate(), 30)


@dataclass
class HostedRoom:
    """A room hosted over the API: the host's client, the room, her socket, its events."""

    api: ApiUser
    room: dict[str, Any]
    socket: aiohttp.ClientWebSocketResponse
    events: list[dict[str, Any]]


@contextlib.asynccontextmanager
async def hosted_room(node: Node, host: str, title: str) -> AsyncIterator[HostedRoom]:
    """HOST's live room over the API, her socket open (so the room lives), its events."""
    api = await node.user(host)
    status, room = await api.call("POST", "/api/rooms", {"title": title})
    assert status == 201, room
    ws = await api.ws(room["id"])
    hosted = HostedRoom(api, room, ws, [])
    task = asyncio.create_task(record_events(ws, hosted.events))
    try:
        yield hosted
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ws.close()


@pytest.mark.timeout(120)
async def test_player_bar_on_stage_and_joining_another_room(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    """Invited while browsing: the bar says so; on stage the bar has Mute / Unmute; joining
    another room leaves the first (and the page says so)."""
    node = await node_factory(ice_addresses=("127.0.0.1",))
    async with (
        hosted_room(node, "alice", "First room") as first_room,
        hosted_room(node, "carol", "Second room") as second_room,
    ):
        alice, first, first_events = first_room.api, first_room.room, first_room.events
        second_events = second_room.events
        bob = await Person.open(await launch(tone(tmp_path / "660.wav", 660)), node.url, "bob")
        page = bob.page
        bar = page.get_by_role("region", name="Now playing")
        hallway = page.get_by_role("navigation", name="Main").get_by_role("link", name="Hallway")
        await bob.signup()
        await page.goto(first["url"])
        await bob.button("Join")
        await page.get_by_role("button", name="Raise hand", exact=True).wait_for()
        await hallway.click()
        await bar.wait_for()

        # alice invites bob while he is in the hallway: the bar tells him where to go
        status, _ = await alice.call(
            "POST", f"/api/rooms/{first['id']}/invite_to_speak", {"user": "bob"}
        )
        assert status == 200
        await bar.get_by_text("You're invited to speak", exact=False).wait_for()
        assert await bar.get_by_role("button", name="Raise hand", exact=True).is_disabled()
        await bar.get_by_role("link", name="Back to room").click()
        await bob.button("Join as speaker")
        await page.get_by_role("button", name="Mute", exact=True).wait_for()

        # on stage, the bar has Mute / Unmute, and the node follows it
        await hallway.click()
        await bar.get_by_role("button", name="Mute", exact=True).click()
        await bar.get_by_role("button", name="Unmute", exact=True).wait_for()

        async def bob_muted(expected: bool) -> bool:
            _, view = await alice.call("GET", f"/api/rooms/{first['id']}")
            bob_seat = [p for p in view["speakers"] if p["user"] == "bob"]
            return bool(bob_seat) and bob_seat[0]["muted"] is expected

        await eventually(lambda: bob_muted(True), timeout=10)
        await bar.get_by_role("button", name="Unmute", exact=True).click()
        await bar.get_by_role("button", name="Mute", exact=True).wait_for()
        await eventually(lambda: bob_muted(False), timeout=10)

        # chat that arrives while bob is away is on the room page when he comes back
        await first_room.socket.send_json({"type": "chat", "id": 1, "text": "While you were out"})
        await bar.get_by_role("link", name="Back to room").click()
        chat = page.get_by_role("region", name="Chat")
        await chat.get_by_role("listitem").filter(has_text="While you were out").wait_for()
        assert await page.evaluate("() => window.salonDebug.sessions()") == 1
        await hallway.click()

        # another room's page: the bar still plays the first; joining leaves it. On a small
        # phone the room's sticky controls sit above the bar (a covered Join fails the click)
        await page.set_viewport_size(SMALL_PHONE)
        await page.get_by_role("link", name="Second room").click()
        await page.get_by_role("heading", name="Second room").wait_for()
        await bar.get_by_text("First room").wait_for()
        assert not await page.evaluate(CONTROLS_UNDER_BAR_JS)
        await bob.button("Join")
        await page.get_by_text("You left “First room” to join this room.").wait_for()
        await bar.wait_for(state="hidden")
        await page.set_viewport_size(DESKTOP)

        async def switched() -> bool:
            return about(first_events, "bob")[-1:] == ["left"] and "joined" in about(
                second_events, "bob"
            )

        await eventually(switched, timeout=10)
        assert await page.evaluate("() => window.salonDebug.sessions()") == 2

        # Leave quietly on the room page, then Join again: a new session, shown by the bar
        await bob.button("Leave quietly")
        await page.get_by_text("You left the room.").wait_for()
        await bob.button("Join")
        await page.get_by_role("button", name="Raise hand", exact=True).wait_for()
        assert await bar.is_hidden()
        assert await page.evaluate("() => window.salonDebug.sessions()") == 3

        async def rejoined() -> bool:
            return about(second_events, "bob").count("joined") == 2

        await eventually(rejoined, timeout=10)
        await hallway.click()
        await bar.get_by_text("Second room").wait_for()
        await bar.get_by_role("button", name="Raise hand", exact=True).wait_for()
        assert not bob.errors, bob.errors


@pytest.mark.timeout(150)
async def test_player_keeps_a_remote_room_while_browsing(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    """bob on B in alice's room on A (through B): the hallway on B keeps the room playing,
    the bar's Raise hand reaches A, Back to room is the same session, Leave quietly leaves A."""
    a = await node_factory("a", **AUDIO)
    b = await node_factory("b", **AUDIO)
    await a.user("alice")
    host = await salon(
        "bot",
        "host",
        *creds(a, "alice"),
        "--title",
        "Far away tone",
        "--play",
        str(tone(tmp_path / "440.wav", 440)),
        "--seconds",
        "120",
    )
    recorder: asyncio.Task[None] | None = None
    try:
        assert host.stdout is not None
        room_url = (await asyncio.wait_for(host.stdout.readline(), 20)).decode().strip()
        room_id = room_url.rsplit("/", 1)[1]
        carol = await a.user("carol")
        events: list[dict[str, Any]] = []
        recorder = asyncio.create_task(record_events(await carol.ws(room_id), events))
        bob_on_a = f"bob@{host_of(b.url)}"

        bob = await Person.open(await launch(), b.url, "bob")
        page = bob.page
        bar = page.get_by_role("region", name="Now playing")
        hallway = page.get_by_role("navigation", name="Main").get_by_role("link", name="Hallway")
        await bob.signup()
        await page.goto(f"{b.url}/remote?url={quote(room_url, safe='')}")
        await bob.button("Join")
        await page.get_by_role("button", name="Raise hand", exact=True).wait_for()
        await bob.wait_hearing(timeout=20)
        await page.evaluate("() => { window.firstPc = window.salonDebug.pc; }")

        await hallway.click()
        await bar.get_by_text("Far away tone").wait_for()
        await keeps_hearing(bob, "hallway on B")
        await bar.get_by_role("button", name="Raise hand", exact=True).click()

        async def hand_on_a() -> bool:
            _, view = await carol.call("GET", f"/api/rooms/{room_id}")
            return bob_on_a in view.get("hands", [])

        await eventually(hand_on_a, timeout=10)

        await bar.get_by_role("link", name="Back to room").click()
        await page.get_by_role("button", name="Lower hand", exact=True).wait_for()
        await page.get_by_text(re.compile("This room is on ")).wait_for()
        assert await page.evaluate("() => window.salonDebug.pc === window.firstPc")
        assert await page.evaluate("() => window.salonDebug.sessions()") == 1
        await keeps_hearing(bob, "remote room page after coming back")
        seen = about(events, bob_on_a)
        assert seen.count("joined") == 1 and "left" not in seen, seen
        assert "disconnected" not in seen, seen

        await hallway.click()
        await bar.get_by_role("button", name="Leave quietly", exact=True).click()
        await bar.wait_for(state="hidden")

        async def left_a() -> bool:
            return about(events, bob_on_a)[-1:] == ["left"]

        await eventually(left_a, timeout=15)
        assert not bob.errors, bob.errors
    finally:
        if recorder is not None:
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
        if host.returncode is None:
            host.send_signal(signal.SIGINT)
        await asyncio.wait_for(host.communicate(), 30)


@pytest.mark.timeout(90)
async def test_reload_then_join_keeps_a_speakers_seat(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    """Reloading the tab sends no leave: the node holds the seat for the reconnect grace, so
    Join after a reload gets it back and a speaker is still on stage."""
    node = await node_factory(ice_addresses=("127.0.0.1",), reconnect_grace_seconds=600.0)
    async with hosted_room(node, "alice", "Reload room") as hosted:
        bob = await Person.open(await launch(tone(tmp_path / "660.wav", 660)), node.url, "bob")
        page = bob.page
        await bob.signup()
        await page.goto(hosted.room["url"])
        await bob.button("Join")
        await page.get_by_role("button", name="Raise hand", exact=True).wait_for()
        status, _ = await hosted.api.call(
            "POST", f"/api/rooms/{hosted.room['id']}/invite_to_speak", {"user": "bob"}
        )
        assert status == 200
        await bob.button("Join as speaker")
        await page.get_by_role("button", name="Mute", exact=True).wait_for()

        await page.reload()
        await page.get_by_role("heading", name="Reload room").wait_for()
        await bob.button("Join")
        await page.get_by_role("button", name="Mute", exact=True).wait_for()

        async def back_on_stage() -> bool:
            seen = about(hosted.events, "bob")
            return seen[-2:] == ["disconnected", "reconnected"]

        await eventually(back_on_stage, timeout=10)
        assert "left" not in about(hosted.events, "bob"), about(hosted.events, "bob")
        _, view = await hosted.api.call("GET", f"/api/rooms/{hosted.room['id']}")
        assert "bob" in [p["user"] for p in view["speakers"]], view
        assert not bob.errors, bob.errors
