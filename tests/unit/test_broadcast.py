"""The room broadcaster (node/rooms/broadcast.py) on a fake clock: what each socket gets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from node.clock import FakeClock
from node.rooms.broadcast import (
    AudienceCounts,
    AudiencePolicy,
    RoomBroadcast,
    counts_after,
    counts_of_view,
    parse_audience,
)
from node.store.users import User

pytestmark = pytest.mark.timeout(10)


def user(uid: int, name: str) -> User:
    return User(uid, name, None, name, "", False, False, 0.0)


class Sock:
    def __init__(self, who: User | None) -> None:
        self.user = who
        self.closed = False
        self.got: list[dict[str, Any]] = []

    def offer(self, message: dict[str, Any], droppable: bool = False) -> None:
        self.got.append(message)

    def kinds(self) -> list[str]:
        return [m.get("event") or m["type"] for m in self.got]


class Timers:
    """schedule(delay, fn) on the fake clock; run() fires what is due."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.due: list[tuple[float, Callable[[], None]]] = []

    def schedule(self, delay: float, fn: Callable[[], None]) -> Timers.Handle:
        entry = (self.clock.monotonic() + delay, fn)
        self.due.append(entry)
        return Timers.Handle(self, entry)

    class Handle:
        def __init__(self, timers: Timers, entry: tuple[float, Callable[[], None]]) -> None:
            self.timers, self.entry = timers, entry

        def cancel(self) -> None:
            if self.entry in self.timers.due:
                self.timers.due.remove(self.entry)

    def advance(self, seconds: float) -> None:
        end = self.clock.monotonic() + seconds
        while True:
            ready = sorted((t for t in self.due if t[0] <= end), key=lambda t: t[0])
            if not ready:
                break
            when, fn = ready[0]
            self.due.remove(ready[0])
            self.clock.advance(max(0.0, when - self.clock.monotonic()))
            fn()
        self.clock.advance(max(0.0, end - self.clock.monotonic()))


class Room:
    def __init__(self, size: int, coalesce_above: int = 50, rate: float = 4.0) -> None:
        self.size = size
        self.mods: set[int] = {1}
        self.clock = FakeClock()
        self.timers = Timers(self.clock)
        self.subs: set[Any] = set()
        self.seq = 0
        self.broadcast = RoomBroadcast(
            AudiencePolicy(coalesce_above, 1.0 / rate),
            self.subs,
            counts=lambda: AudienceCounts(self.size, self.size - 1, 0),
            size=lambda: self.size,
            moderators=lambda: self.mods,
            monotonic=self.clock.monotonic,
            schedule=self.timers.schedule,
        )

    def sock(self, who: User | None) -> Sock:
        s = Sock(who)
        self.subs.add(s)
        return s

    def event(self, kind: str, who: str, role: str = "listener", **extra: Any) -> None:
        self.seq += 1
        message = {"type": "event", "seq": self.seq, "event": kind, "user": who, **extra}
        if kind == "joined":
            message["participant"] = {"user": who, "role": role}
        message["role"] = role
        self.broadcast.publish(message)


def seqs_ok(sock: Sock, start: int = 0) -> None:
    """Every seq-carrying message continues the last: events by one, audience jumps ahead."""
    seq = start
    for m in sock.got:
        if m["type"] == "event":
            assert m["seq"] == seq + 1, (seq, m, sock.got)
            seq = m["seq"]
        elif m["type"] == "audience":
            assert m["seq"] >= seq
            seq = m["seq"]


def test_small_room_gets_every_event_at_once() -> None:
    room = Room(size=10)
    bob = room.sock(user(2, "bob"))
    for i in range(5):
        room.event("joined", f"u{i}")
    assert bob.kinds() == ["joined"] * 5
    room.timers.advance(10)
    assert bob.kinds() == ["joined"] * 5  # nothing was folded, no audience message


def test_large_room_folds_churn_into_a_few_audience_messages() -> None:
    room = Room(size=500)
    bob = room.sock(user(2, "bob"))
    for i in range(100):  # 100 joins within one second
        room.event("joined", f"u{i}")
        room.timers.advance(0.01)
    room.timers.advance(1.0)
    assert [m["type"] for m in bob.got] == ["audience"] * len(bob.got)
    # one flush at once, then one per 0.25 s: at most 2 s × 4 + 1
    assert 1 <= len(bob.got) <= 2 * 4 + 1
    assert bob.got[-1]["seq"] == 100 and bob.got[-1]["listener_count"] == 499
    seqs_ok(bob)


def test_flush_rate_is_bounded_on_the_fake_clock() -> None:
    room = Room(size=500, rate=4.0)
    bob = room.sock(user(2, "bob"))
    for _ in range(1000):  # 1000 churn events over 10 s
        room.event("left", "someone")
        room.timers.advance(0.01)
    assert len(bob.got) <= 10 * 4 + 1
    assert room.broadcast.flushes == len(bob.got)


def test_a_huge_room_gets_its_counts_less_often() -> None:
    """3 000 sockets and a budget of 2 000 messages a second: a flush every 1.5 s."""
    room = Room(size=5000)
    room.broadcast.policy = AudiencePolicy(50, 0.25, 2000.0)
    socks = [room.sock(user(100 + i, f"l{i}")) for i in range(3000)]
    for _ in range(1000):  # churn for 10 s
        room.event("joined", "someone")
        room.timers.advance(0.01)
    flushes = room.broadcast.flushes
    assert flushes <= 10 / 1.5 + 1
    assert all(len(s.got) == flushes for s in socks)
    assert AudiencePolicy(50, 0.25, 2000.0).interval(100) == 0.25
    assert AudiencePolicy(50, 0.25, 0.0).interval(10**6) == 0.25


def test_stage_events_go_out_at_once_after_a_catch_up() -> None:
    room = Room(size=500)
    bob = room.sock(user(2, "bob"))
    room.event("joined", "u1")  # folded: bob is behind
    room.event("role_changed", "carol", role="speaker")
    assert bob.kinds() == ["audience", "role_changed"]
    assert bob.got[0]["seq"] == 1 and bob.got[1]["seq"] == 2
    room.event("muted", "carol", role="speaker", muted=True)  # not behind: no catch-up
    assert bob.kinds() == ["audience", "role_changed", "muted"]
    seqs_ok(bob)


def test_moderators_relays_and_the_subject_get_churn_events() -> None:
    room = Room(size=500)
    mod = room.sock(user(1, "alice"))  # id 1 is a moderator
    relay = room.sock(None)  # another node's trunk
    dave = room.sock(user(4, "dave"))
    bob = room.sock(user(2, "bob"))
    room.event("hand_raised", "dave")
    assert mod.kinds() == ["hand_raised"]
    assert relay.kinds() == ["hand_raised"]
    assert dave.kinds() == ["hand_raised"]  # his own hand
    assert bob.kinds() == []
    room.timers.advance(1)
    # the flush reaches everyone (moderators and relays too: their counts)
    assert mod.kinds()[-1] == bob.kinds()[-1] == relay.kinds()[-1] == "audience"
    for sock in (mod, relay, dave, bob):
        seqs_ok(sock)


def test_shrinking_below_the_threshold_tells_clients_to_resync() -> None:
    room = Room(size=51)
    bob = room.sock(user(2, "bob"))
    room.event("left", "u1")  # folded, 51 > 50
    room.size = 50
    room.event("joined", "u2")  # not coalesced any more: resync, then per event
    kinds = [(m["type"], m.get("coalesced")) for m in bob.got]
    assert kinds == [("audience", False), ("event", None)]
    room.timers.advance(1)
    assert len(bob.got) == 2


def test_coalescing_off_is_the_per_event_baseline() -> None:
    room = Room(size=5000, coalesce_above=0)
    bob = room.sock(user(2, "bob"))
    for i in range(20):
        room.event("joined", f"u{i}")
    room.timers.advance(5)
    assert bob.kinds() == ["joined"] * 20


def test_closed_broadcast_flushes_nothing() -> None:
    room = Room(size=500)
    bob = room.sock(user(2, "bob"))
    room.event("joined", "u1")
    room.timers.advance(0)  # the first flush is due at once
    assert len(bob.got) == 1
    room.event("joined", "u2")
    room.broadcast.close()
    room.timers.advance(5)
    assert len(bob.got) == 1


def test_parse_audience_refuses_garbage() -> None:
    good = {"seq": 3, "participant_count": 5, "listener_count": 4, "hand_count": 0}
    assert parse_audience(good) == (3, AudienceCounts(5, 4, 0), False)
    for bad in ({**good, "seq": -1}, {**good, "hand_count": "2"}, {**good, "seq": True}, {}):
        assert parse_audience(bad) is None


def test_a_relay_keeps_counts_from_events_and_views() -> None:
    start = counts_of_view({"participant_count": 10, "listeners": [{}, {}], "hands": ["x"]})
    assert start == AudienceCounts(10, 2, 1)
    joined = {"event": "joined", "participant": {"role": "listener"}}
    after = counts_after(start, joined)
    assert after == AudienceCounts(11, 3, 1)
    after = counts_after(after, {"event": "left", "role": "speaker"})
    assert after == AudienceCounts(10, 3, 1)
    after = counts_after(after, {"event": "hand_lowered", "user": "x"})
    after = counts_after(after, {"event": "hand_lowered", "user": "x"})  # never below 0
    assert after.hand_count == 0
    assert counts_of_view({"participant_count": -4, "listener_count": "9"}) == AudienceCounts(
        0, 0, 0
    )
