"""Attacks on reactions riding on a coalesced room's flushes (node/rooms/broadcast.py
``merge_reactions`` / ``RoomBroadcast.react``): a hostile origin's `audience` or
`reactions` batch for a relay node's sockets — floods of people, huge or odd lists,
values of the wrong type — never grows a flush beyond its caps nor passes garbage on."""

from __future__ import annotations

from typing import Any

import pytest

from node.clock import FakeClock
from node.rooms.broadcast import (
    REACTION_KINDS_EACH,
    AudienceCounts,
    AudiencePolicy,
    RoomBroadcast,
    merge_reactions,
)

pytestmark = pytest.mark.timeout(30)


class Sock:
    user = None  # a relay trunk's socket, say
    closed = False

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    def offer(self, message: dict[str, Any], droppable: bool = False) -> None:
        self.got.append(message)


class Now:
    def __init__(self) -> None:
        self.due: list[Any] = []

    def __call__(self, delay: float, fn: Any) -> Any:
        self.due.append(fn)
        return self

    def cancel(self) -> None:
        return None


HOSTILE: list[object] = [
    None,
    "clap",
    ["clap"],
    {"bob@b": "clap"},
    {"bob@b": {"clap": True}},
    {"bob@b": [None, 1, 2.5, ["clap"], {"k": "v"}]},
    {"": []},
]


def test_hostile_batches_pass_nothing_but_strings_per_handle() -> None:
    for batch in HOSTILE:
        assert merge_reactions({}, batch) == {}, batch
    odd = merge_reactions({}, {"bob@b": ["clap", "clap", "\u202eevil", "x" * 10_000]})
    assert odd == {"bob@b": ["clap", "\u202eevil", "x" * 10_000]}  # clients show known ones
    many = merge_reactions({}, {"bob@b": [str(i) for i in range(100_000)]})
    assert len(many["bob@b"]) == REACTION_KINDS_EACH


def test_a_flood_of_people_is_capped_per_flush() -> None:
    clock, timers = FakeClock(), Now()
    subs: set[Any] = set()
    sock = Sock()
    subs.add(sock)
    broadcast = RoomBroadcast(
        AudiencePolicy(50, 0.25, 2000.0, reactions_cap=200),
        subs,
        counts=lambda: AudienceCounts(1000, 990, 0),
        size=lambda: 1000,
        moderators=lambda: (),
        monotonic=clock.monotonic,
        schedule=timers,
    )
    for round_ in range(50):  # 50 batches of 1 000 "people" each before one flush
        assert broadcast.react({f"p{round_}-{i}@evil": ["clap"] for i in range(1000)})
    for batch in HOSTILE:
        broadcast.react(batch)
    assert len(timers.due) == 1  # one flush armed, not one per batch
    timers.due.pop()()
    assert len(sock.got) == 1
    assert sock.got[0]["type"] == "reactions" and len(sock.got[0]["reactions"]) == 200
