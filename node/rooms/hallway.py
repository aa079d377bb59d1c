"""The hallway: which active rooms a viewer sees, in what order, and as what card (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from node.rooms.model import JoinMode, Room, RoomStatus


@dataclass(frozen=True)
class Viewer:
    user_id: int
    following: frozenset[int]  # whom the viewer follows
    followed_by: frozenset[int]  # who follows the viewer (decides social rooms)


def visible(room: Room, viewer: Viewer) -> bool:
    """Open rooms to all; social rooms to people a host/moderator follows; closed to invitees."""
    if room.status is RoomStatus.ENDED or viewer.user_id in room.bans:
        return False
    mods = room.moderator_ids()
    if viewer.user_id in mods or viewer.user_id in room.participants:
        return True
    if room.join_mode is JoinMode.SOCIAL:
        return bool(mods & viewer.followed_by)
    if room.join_mode is JoinMode.CLOSED:
        return viewer.user_id in room.invites
    return True


def followed_score(room: Room, viewer: Viewer) -> int:
    """How many of the room's host and speakers the viewer follows."""
    people = {room.host_id, *(p.user_id for p in room.speakers())}
    return len(people & viewer.following)


def rank(rooms: Iterable[Room], viewer: Viewer) -> list[Room]:
    """Live rooms before upcoming ones; rooms of people you follow first, then by size.

    Live rooms tie-break on participants (desc), then newest start; upcoming rooms on the
    soonest start time.
    """
    shown = [r for r in rooms if visible(r, viewer)]
    live = [r for r in shown if r.status is RoomStatus.LIVE]
    upcoming = [r for r in shown if r.status is RoomStatus.SCHEDULED]
    live.sort(
        key=lambda r: (
            -followed_score(r, viewer),
            -len(r.participants),
            -(r.started_at or 0.0),
            r.id,
        )
    )
    upcoming.sort(
        key=lambda r: (
            followed_score(r, viewer) == 0,
            r.start_time if r.start_time is not None else float("inf"),
            r.id,
        )
    )
    return live + upcoming


CARD_SPEAKERS = 6  # speakers a card shows


@dataclass(frozen=True)
class HallwayCard:
    """One room in a hallway, whether it lives here or another node announced it.

    EXTRA holds what only one kind has: for a local room the rest of the room view (``seq``,
    ``hands``, ``you``, …); for a remote one ``remote``, ``node`` and ``updated``.
    """

    id: str
    url: str
    title: str
    description: str
    join_mode: str
    status: str
    host: str | None
    host_display_name: str | None
    start_time: float | str | None
    listener_count: int
    speakers: list[dict[str, Any]]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "title": self.title,
            "description": self.description,
            "join_mode": self.join_mode,
            "status": self.status,
            "host": self.host,
            "host_display_name": self.host_display_name,
            "start_time": self.start_time,
            "listener_count": self.listener_count,
            "speakers": self.speakers[:CARD_SPEAKERS],
            **self.extra,
        }


def merge(local: list[HallwayCard], remote: list[HallwayCard]) -> list[HallwayCard]:
    """Live rooms before upcoming ones; within each, local rooms before remote ones."""

    def live(cards: list[HallwayCard], wanted: bool) -> list[HallwayCard]:
        return [card for card in cards if (card.status == "live") is wanted]

    return live(local, True) + live(remote, True) + live(local, False) + live(remote, False)
