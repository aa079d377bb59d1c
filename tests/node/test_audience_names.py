"""A coalesced room's view reuses its first listeners' user rows for
``audience_names_seconds`` (node/rooms/views.py): a join does not read them all again, a
display name is at most that much behind in a view, and a leave closes only the leaver's
sockets (found through the broadcaster's index, not a pass over the room)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.accounts import AccountService
from node.clock import FakeClock
from node.rooms.drafts import RoomDraft
from node.rooms.model import JoinMode
from node.rooms.service import RoomService
from node.store.db import open_database
from tests.support.nodes import make_settings

pytestmark = pytest.mark.timeout(30)


def world(path: Path, **overrides: object) -> tuple[FakeClock, AccountService, RoomService]:
    clock = FakeClock()
    settings = make_settings(path, audience_coalesce_above=3, **overrides)
    path.mkdir(parents=True, exist_ok=True)
    db = open_database(path / "salon.db")
    return clock, AccountService(db, settings, clock), RoomService(db, settings, clock)


def names(view: dict[str, object]) -> dict[str, str]:
    listeners = view["listeners"]
    assert isinstance(listeners, list)
    return {p["user"]: p["display_name"] for p in listeners}


@pytest.mark.parametrize("seconds", [1.0, 0.0])
async def test_a_display_name_is_at_most_names_seconds_behind(
    tmp_path: Path, seconds: float
) -> None:
    clock, accounts, rooms = world(tmp_path / "w", audience_names_seconds=seconds)
    alice = accounts.users.create("alice", "x", clock.now())
    room = rooms.create(alice, RoomDraft("Big", "", JoinMode.OPEN, None))
    people = [accounts.users.create(f"u{i}", "x", clock.now()) for i in range(6)]
    for person in people:
        rooms.join(room.id, person)
        clock.advance(0.01)
    view = rooms.view(room, people[-1])
    assert view["coalesced"] is True and names(view)["u0"] == "u0"
    accounts.users.update_profile(people[0].id, display_name="Ünïcode ✓")
    view = rooms.view(room, people[-1])
    assert names(view)["u0"] == ("u0" if seconds else "Ünïcode ✓")
    clock.advance(seconds + 0.01)
    assert names(rooms.view(room, people[-1]))["u0"] == "Ünïcode ✓"
    # a newcomer on the first page is read at once, cache or not
    rooms.act(room.id, people[1], "leave")
    assert "u1" not in names(rooms.view(room, people[-1]))


async def test_a_leave_closes_only_the_leavers_sockets(tmp_path: Path) -> None:
    clock, accounts, rooms = world(tmp_path / "w")
    alice = accounts.users.create("alice", "x", clock.now())
    room = rooms.create(alice, RoomDraft("Big", "", JoinMode.OPEN, None))
    people = [accounts.users.create(f"u{i}", "x", clock.now()) for i in range(6)]
    socks = {p.username: rooms.connect(room.id, p) for p in people}
    second = rooms.connect(room.id, people[2])  # a second tab of u2
    rooms.act(room.id, people[2], "leave")
    assert socks["u2"].closed and second.closed
    assert not [name for name, s in socks.items() if s.closed and name != "u2"]
