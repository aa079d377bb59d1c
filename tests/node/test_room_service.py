"""RoomService with a fake clock: grace periods, restarts, slow subscribers (no sleeping)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from node.accounts import AccountService
from node.clock import FakeClock
from node.rooms.drafts import RoomDraft
from node.rooms.model import JoinMode, RoomRuleError, RoomStatus
from node.rooms.service import RoomService
from node.store.db import open_database
from node.store.users import User
from tests.support.nodes import make_settings


class World:
    def __init__(self, path: Path, **overrides: object) -> None:
        self.path = path
        self.clock = FakeClock()
        self.settings = make_settings(path, **overrides)
        path.mkdir(parents=True, exist_ok=True)
        self.open()

    def open(self) -> None:
        self.db = open_database(self.path / "salon.db")
        self.accounts = AccountService(self.db, self.settings, self.clock)
        self.rooms = RoomService(self.db, self.settings, self.clock)
        self.rooms.load()

    def restart(self) -> None:
        self.db.close()
        self.open()

    def user(self, name: str) -> User:
        return self.accounts.users.create(name, "x", self.clock.now())


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(
        tmp_path / "w", reconnect_grace_seconds=20.0, room_empty_grace_seconds=60.0, ws_queue_size=8
    )


def draft(title: str = "Room", mode: JoinMode = JoinMode.OPEN) -> RoomDraft:
    return RoomDraft(title=title, description="", join_mode=mode, start_time=None)


async def test_slow_subscriber_is_cut_off_others_get_everything(world: World) -> None:
    alice, slow, fan = world.user("alice"), world.user("slow"), world.user("fan")
    room = world.rooms.create(alice, draft())
    reader = world.rooms.connect(room.id, alice)
    stuck = world.rooms.connect(room.id, slow)
    world.rooms.connect(room.id, fan)
    received = []
    for _ in range(10):
        world.rooms.act(room.id, fan, "raise_hand")
        world.rooms.act(room.id, fan, "lower_hand")
        world.clock.advance(0.4)  # within room_actions_per_second
        while not reader.queue.empty():
            received.append(reader.queue.get_nowait())
    hands = [m for m in received if m and m.get("event", "").startswith("hand_")]
    assert len(hands) == 20 and [m["seq"] for m in hands] == sorted(m["seq"] for m in hands)
    assert stuck.overflowed and stuck.close_code == 4008
    # speaking levels are dropped for a half-full queue instead of cutting the client off
    quiet = world.rooms.connect(room.id, world.user("quiet"))
    for _ in range(20):
        world.rooms.report_levels(room.id, {alice.id: 0.5})
    assert not quiet.overflowed and quiet.queue.qsize() <= 4 + 1


async def test_unclaimed_seat_is_freed_after_grace(world: World) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    room = world.rooms.create(alice, draft())
    world.rooms.connect(room.id, alice)
    sub = world.rooms.connect(room.id, bob)
    world.rooms.disconnect(sub)
    assert room.participants[bob.id].connected is False
    world.clock.advance(19)
    world.rooms.sweep()
    assert bob.id in room.participants
    world.clock.advance(2)
    world.rooms.sweep()
    assert bob.id not in room.participants


async def test_empty_room_ends_after_grace(world: World) -> None:
    alice = world.user("alice")
    room = world.rooms.create(alice, draft())
    world.clock.advance(59)
    world.rooms.sweep()
    assert room.status is RoomStatus.LIVE
    sub = world.rooms.connect(room.id, alice)  # the host arrives: the timer stops
    world.clock.advance(120)
    world.rooms.sweep()
    assert room.status is RoomStatus.LIVE
    world.rooms.disconnect(sub)
    world.clock.advance(21)
    world.rooms.sweep()  # seat freed; the stage is now empty
    world.clock.advance(61)
    world.rooms.sweep()
    assert room.status is RoomStatus.ENDED
    assert world.rooms.get(room.id).status is RoomStatus.ENDED


async def test_restart_keeps_rooms_roles_hands_bans(world: World) -> None:
    alice, bob, carol, dave = (world.user(n) for n in ("alice", "bob", "carol", "dave"))
    room = world.rooms.create(alice, draft(mode=JoinMode.CLOSED))
    world.rooms.act(room.id, alice, "invite", "bob")
    world.rooms.act(room.id, alice, "invite", "carol")
    world.rooms.act(room.id, alice, "invite", "dave")
    for u in (alice, bob, carol, dave):
        world.rooms.connect(room.id, u)
    world.rooms.act(room.id, alice, "make_moderator", "bob")
    world.rooms.act(room.id, carol, "raise_hand")
    world.rooms.act(room.id, alice, "remove", "dave")
    seq = room.seq
    world.restart()
    again = world.rooms.get(room.id)
    assert again is not room and again.seq == seq
    assert again.participants[bob.id].role.value == "moderator"
    assert again.participants[carol.id].hand_raised_at is not None
    assert again.bans == {dave.id} and bob.id in again.invites
    assert all(not p.connected for p in again.participants.values())
    with pytest.raises(RoomRuleError, match="removed"):
        world.rooms.join(room.id, dave)
    # seats wait for their clients; the ones nobody reclaims are freed
    world.rooms.connect(room.id, alice)
    world.clock.advance(21)
    world.rooms.sweep()
    assert set(again.participants) == {alice.id}


async def test_observers_see_every_event(world: World) -> None:
    seen: list[str] = []

    class Recorder:
        def room_event(self, room: object, event: object) -> None:
            seen.append(getattr(event, "kind", "?"))

    world.rooms.observe(Recorder())
    alice = world.user("alice")
    room = world.rooms.create(alice, draft())
    world.rooms.connect(room.id, alice)
    world.rooms.act(room.id, alice, "end")
    assert seen == ["room_created", "joined", "room_ended"]


async def test_subscription_wakes_reader_on_close(world: World) -> None:
    alice = world.user("alice")
    room = world.rooms.create(alice, draft())
    sub = world.rooms.connect(room.id, alice)
    sub.queue.get_nowait() if not sub.queue.empty() else None
    waiter = asyncio.ensure_future(sub.queue.get())
    world.rooms.act(room.id, alice, "end")
    results = []
    while True:
        item = await asyncio.wait_for(waiter, 1)
        results.append(item)
        if item is None:
            break
        waiter = asyncio.ensure_future(sub.queue.get())
    assert results[-1] is None and sub.close_code == 1000


async def test_scheduled_room_expires_an_hour_after_its_time(world: World) -> None:
    alice = world.user("alice")
    start = world.clock.now() + 600
    room = world.rooms.create(
        alice, RoomDraft(title="Later", description="", join_mode=JoinMode.OPEN, start_time=start)
    )
    world.clock.advance(600 + 3500)
    world.rooms.sweep()
    assert room.status is RoomStatus.SCHEDULED
    world.clock.advance(200)
    world.rooms.sweep()
    assert room.status is RoomStatus.ENDED


async def test_deleted_account_does_not_break_saves(world: World) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    room = world.rooms.create(alice, draft())
    world.rooms.connect(room.id, alice)
    world.rooms.connect(room.id, bob)
    world.accounts.users.delete(bob.id)  # what `salon user remove` does from another process
    world.rooms.act(room.id, alice, "mute")  # saves the room: must not fail on bob's seat
    assert world.rooms.get(room.id).participants[alice.id].muted


async def test_user_remove_refused_while_hosting(world: World) -> None:
    from node.accounts import AccountError

    alice = world.user("alice")
    world.rooms.create(alice, draft())
    with pytest.raises(AccountError, match="active room"):
        world.accounts.remove_user("alice")


async def test_a_failed_write_leaves_memory_as_the_store_has_it(world: World) -> None:
    """The rule ran, the write did not (a read-only database here): the room in memory
    is what the store holds, not a half-applied change."""
    alice, bob = world.user("alice"), world.user("bob")
    room = world.rooms.create(alice, draft())
    world.rooms.join(room.id, alice)
    world.rooms.join(room.id, bob)
    world.db.execute("PRAGMA query_only=ON")
    with pytest.raises(sqlite3.OperationalError):
        world.rooms.act(room.id, bob, "raise_hand")
    with pytest.raises(sqlite3.OperationalError):
        world.rooms.update_details(room.id, alice, {"title": "Renamed"})
    world.db.execute("PRAGMA query_only=OFF")
    current = world.rooms.get(room.id)
    assert current.title == "Room"
    assert current.participants[bob.id].hand_raised_at is None
    assert current.seq == world.rooms.store.get(room.id).seq  # type: ignore[union-attr]
    # and the room goes on working
    world.clock.advance(1)
    world.rooms.act(room.id, bob, "raise_hand")
    assert world.rooms.get(room.id).participants[bob.id].hand_raised_at is not None
