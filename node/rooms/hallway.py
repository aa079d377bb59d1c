"""Hallway ranking: which active rooms a viewer sees, and in what order (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
