"""RSVPs over the real store and room service with a fake clock: reminders, calendars."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.accounts import AccountService
from node.blocks import BlockService
from node.calendar import CalendarRoom, calendar, fold, text
from node.clock import FakeClock
from node.notifications import Notifications
from node.rooms.drafts import RoomDraft
from node.rooms.gate import Gate, OpenDomains
from node.rooms.model import JoinMode
from node.rooms.service import RoomService
from node.rsvp import RsvpError, RsvpService
from node.rsvp_reminders import RsvpReminders
from node.store.blocks import BlockStore
from node.store.db import open_database
from node.store.notifications import NotificationStore
from node.store.rsvps import RsvpStore
from node.store.users import User
from tests.support.nodes import make_settings
from tests.support.rsvp import RecordingNotifications, events

pytestmark = pytest.mark.timeout(30)


class World:
    def __init__(self, path: Path, **overrides: object) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.clock = FakeClock()
        self.settings = make_settings(path, **overrides)
        self.db = open_database(path / "salon.db")
        self.accounts = AccountService(self.db, self.settings, self.clock)
        self.block_store = BlockStore(self.db)
        gate = Gate(self.accounts.follows, self.accounts.users, OpenDomains(), self.block_store)
        self.rooms = RoomService(self.db, self.settings, self.clock, gate)
        self.store = RsvpStore(self.db)
        self.rsvps = RsvpService(
            self.store,
            self.rooms,
            self.accounts.users,
            self.accounts.follows,
            self.settings,
            self.clock,
        )
        self.sent = RecordingNotifications()
        self.reminders = RsvpReminders(
            self.store,
            self.rsvps,
            self.sent,
            self.clock,
            lead_seconds=self.settings.rsvp_reminder_lead_seconds,
        )
        self.rooms.observe(self.reminders)

    def user(self, name: str) -> User:
        return self.accounts.users.create(name, "x", self.clock.now())

    def scheduled(self, host: User, title: str = "Tea", in_seconds: float = 3600.0) -> str:
        draft = RoomDraft(title, "", JoinMode.OPEN, self.clock.now() + in_seconds)
        return self.rooms.create(host, draft).id


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "w")


async def test_reminder_worker_sends_soon_once_then_starting_once(world: World) -> None:
    alice, bob, carol = world.user("alice"), world.user("bob"), world.user("carol")
    room_id = world.scheduled(alice, in_seconds=3600)
    await world.rsvps.ask(bob, room_id)
    await world.rsvps.ask(carol, room_id)
    assert world.reminders.run_once() == 0  # 60 minutes ahead: nothing yet
    world.clock.advance(3600 - 600 - 1)
    assert world.reminders.run_once() == 0  # 10 min + 1 s ahead: still nothing
    world.clock.advance(2)
    assert world.reminders.run_once() == 2
    assert world.reminders.run_once() == 0  # a second pass repeats nothing
    world.clock.advance(300)
    assert world.reminders.run_once() == 0
    soon = [s for s in world.sent.sent if s.kind == "rsvp_soon"]
    assert sorted(s.user_id for s in soon) == sorted([bob.id, carol.id])
    assert {s.key for s in soon} == {f"rsvp_soon:{room_id}"}
    assert soon[0].room_url == f"{world.settings.base_url}/rooms/{room_id}"
    assert soon[0].title == "Tea"
    # the host starts the room: the observer reminds at once, the worker adds nothing
    world.rooms.act(room_id, alice, "start")
    starting = [s for s in world.sent.sent if s.kind == "rsvp_starting"]
    assert sorted(s.user_id for s in starting) == sorted([bob.id, carol.id])
    assert world.reminders.run_once() == 0
    assert len(world.sent.sent) == 4


async def test_room_started_early_skips_soon_and_ended_rooms_leave_rsvps(world: World) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    room_id = world.scheduled(alice, in_seconds=7200)
    await world.rsvps.ask(bob, room_id)
    world.rooms.act(room_id, alice, "start")
    world.clock.advance(7200)
    world.reminders.run_once()
    assert [s.kind for s in world.sent.sent] == ["rsvp_starting"]
    world.rooms.act(room_id, alice, "end")
    world.reminders.run_once()
    assert world.store.rooms_of(bob.id) == []  # ended rooms drop out of the feed


async def test_count_includes_everyone_and_cancel(world: World) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    room_id = world.scheduled(alice)
    await world.rsvps.ask(bob, room_id)
    await world.rsvps.ask(bob, room_id)  # twice is once
    assert world.rsvps.count(room_id) == 1
    view = world.rooms.view(world.rooms.get(room_id), alice)
    assert view["rsvp_count"] == 1 and view["you_rsvped"] is False
    bob_view = world.rooms.view(world.rooms.get(room_id), bob)
    assert bob_view["you_rsvped"] is True and "rsvp_count" not in bob_view
    world.rsvps.cancel(bob, room_id)
    assert world.rsvps.count(room_id) == 0
    with pytest.raises(RsvpError):
        world.rsvps.cancel(bob, room_id)


async def test_room_ics_parses_with_icalendar(world: World) -> None:
    alice = world.user("alice")
    room_id = world.scheduled(alice, title="Jazz, tea; and talk", in_seconds=86400)
    body = world.rsvps.room_calendar(room_id, None)
    assert body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")
    (event,) = events(body)
    start = datetime.fromtimestamp(world.clock.now() + 86400, UTC).replace(microsecond=0)
    assert event.decoded("DTSTART") == start
    assert event.decoded("DTEND") == start.replace(hour=(start.hour + 1) % 24) or (
        (event.decoded("DTEND") - start).total_seconds() == 3600
    )
    assert str(event["SUMMARY"]) == "Jazz, tea; and talk"
    assert str(event["URL"]) == f"{world.settings.base_url}/rooms/{room_id}"
    assert str(event["UID"]).startswith(room_id + "@")
    assert int(event["SEQUENCE"]) == 0
    world.rooms.act(room_id, alice, "start")
    (live,) = events(world.rsvps.room_calendar(room_id, None))
    assert int(live["SEQUENCE"]) == 1 and str(live["UID"]) == str(event["UID"])
    assert live.decoded("DTSTART") == datetime.fromtimestamp(world.clock.now(), UTC).replace(
        microsecond=0
    )


def test_text_escaping_and_folding() -> None:
    assert text("a,b;c\\d\r\nEND:VEVENT\x00\x07") == "a\\,b\\;c\\\\d\\nEND:VEVENT"
    long = "é" * 100
    folded = fold("SUMMARY:" + long)
    lines = folded.split(b"\r\n")
    assert all(len(line) <= 75 for line in lines)
    assert b"".join(line[1:] if i else line for i, line in enumerate(lines)).decode() == (
        "SUMMARY:" + long
    )
    room = CalendarRoom(
        url="http://a.example/rooms/x",
        title="x" * 500,
        description="line one\nline two",
        host="alice@a.example",
        status="scheduled",
        start=1_800_000_000.0,
        end=None,
        took_place=False,
    )
    (event,) = events(calendar([room], 1_800_000_000.0, "t"))
    assert str(event["SUMMARY"]) == "x" * 500
    assert str(event["DESCRIPTION"]).startswith("line one\nline two")


async def test_reminders_land_once_in_the_real_notification_centre(tmp_path: Path) -> None:
    world = World(tmp_path / "real")
    centre = Notifications(
        NotificationStore(world.db),
        world.accounts.users,
        world.clock,
        own_host="127.0.0.1:8080",
        keep=100,
        queue_size=16,
    )
    reminders = RsvpReminders(world.store, world.rsvps, centre, world.clock, lead_seconds=600.0)
    alice, bob = world.user("alice"), world.user("bob")
    room_id = world.scheduled(alice, title="Quiz", in_seconds=900)
    await world.rsvps.ask(bob, room_id)
    world.clock.advance(301)
    assert reminders.run_once() == 1
    assert reminders.run_once() == 0
    world.store.db.execute("UPDATE rsvps SET soon_sent = 0")  # even a lost mark: key dedupes
    assert reminders.run_once() == 1
    items = centre.page(bob.id, None, 50)
    assert [(n["kind"], n["title"]) for n in items] == [("rsvp_soon", "Quiz")]
    assert centre.page(alice.id, None, 50) == []


async def test_no_reminder_for_someone_the_host_blocked_since(world: World) -> None:
    alice, bob, carol = world.user("alice"), world.user("bob"), world.user("carol")
    room_id = world.scheduled(alice)
    await world.rsvps.ask(bob, room_id)
    await world.rsvps.ask(carol, room_id)
    BlockService(world.accounts, world.block_store, world.clock).block(alice, bob)
    world.rooms.act(room_id, alice, "start")
    assert [s.user_id for s in world.sent.sent] == [carol.id]
