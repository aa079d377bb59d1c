from __future__ import annotations

from node.rooms import model
from node.rooms.hallway import Viewer, rank, visible
from node.rooms.model import JoinMode, Room, RoomStatus


def room(
    rid: str,
    host: int,
    *,
    live: bool = True,
    mode: JoinMode = JoinMode.OPEN,
    people: int = 0,
    start: float | None = None,
    started: float = 0.0,
) -> Room:
    r = Room(
        id=rid,
        host_id=host,
        title=rid,
        description="",
        join_mode=mode,
        status=RoomStatus.LIVE if live else RoomStatus.SCHEDULED,
        invite_token="x",
        created_at=0.0,
        start_time=start,
        started_at=started if live else None,
    )
    if live:
        model.join(r, host, 1.0)
        for uid in range(1000, 1000 + people):
            model.join(r, uid, 2.0)
    return r


def test_followed_rooms_first_then_by_size_then_upcoming_by_start() -> None:
    viewer = Viewer(user_id=1, following=frozenset({50}), followed_by=frozenset())
    big = room("big", 10, people=30)
    small_followed = room("followed", 50, people=1)
    medium = room("medium", 11, people=5)
    later = room("later", 12, live=False, start=5000.0)
    sooner = room("sooner", 13, live=False, start=4000.0)
    later_followed = room("later-followed", 50, live=False, start=9000.0)
    ranked = rank([big, later, medium, sooner, small_followed, later_followed], viewer)
    assert [r.id for r in ranked] == [
        "followed",
        "big",
        "medium",
        "later-followed",
        "sooner",
        "later",
    ]


def test_followed_speaker_counts_like_followed_host() -> None:
    viewer = Viewer(user_id=1, following=frozenset({77}), followed_by=frozenset())
    a = room("a", 10, people=10)
    b = room("b", 11, people=2)
    model.join(b, 77, 3.0)
    model.invite_to_speak(b, 11, 77)
    model.accept_invite(b, 77, 4.0)
    assert [r.id for r in rank([a, b], viewer)] == ["b", "a"]


def test_visibility_by_join_mode() -> None:
    stranger = Viewer(user_id=1, following=frozenset(), followed_by=frozenset())
    friend = Viewer(user_id=2, following=frozenset(), followed_by=frozenset({10}))
    social = room("s", 10, mode=JoinMode.SOCIAL)
    closed = room("c", 10, mode=JoinMode.CLOSED)
    assert not visible(social, stranger)
    assert visible(social, friend)
    assert not visible(closed, friend)
    closed.invites.add(2)
    assert visible(closed, friend)
    social.bans.add(2)
    assert not visible(social, friend)


def test_ended_rooms_are_not_shown() -> None:
    viewer = Viewer(user_id=1, following=frozenset(), followed_by=frozenset())
    r = room("e", 10)
    model.end(r, 10, 9.0)
    assert rank([r], viewer) == []
