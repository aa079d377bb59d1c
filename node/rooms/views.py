"""What clients see of a room: the full view, hallway cards and event messages.

Pure presentation over the room model and the stores it needs to name people; the room
service asks it after every change, and nothing here changes a room.
"""

from __future__ import annotations

import dataclasses
import heapq
import operator
from collections.abc import Callable
from typing import Any

from node.accounts import handle
from node.rooms.block_marks import mark_blocks
from node.rooms.broadcast import AudiencePolicy
from node.rooms.gate import Gate
from node.rooms.hallway import HallwayCard
from node.rooms.model import (
    STAGE_ROLES,
    JoinMode,
    Participant,
    Room,
    RoomEvent,
    RoomRuleError,
    RoomStatus,
)
from node.store.follows import FollowStore
from node.store.rsvps import RsvpStore
from node.store.users import User, UserStore

BY_JOINING = operator.attrgetter("joined_at", "user_id")  # model.Room.listeners' order


def by_stage_time(p: Participant) -> tuple[float, int]:
    """model.Room.speakers' order."""
    return (p.stage_since or p.joined_at, p.user_id)


CARD_FIELDS = [f.name for f in dataclasses.fields(HallwayCard) if f.name != "extra"]


class RoomViews:
    def __init__(
        self,
        users: UserStore,
        follows: FollowStore,
        gate: Gate,
        base_url: str,
        rsvps: RsvpStore | None = None,
        audience: AudiencePolicy | None = None,
        monotonic: Callable[[], float] | None = None,
        names_seconds: float = 0.0,
    ) -> None:
        """AUDIENCE: above its size a view lists only the first listeners (``coalesced``);
        NAMES_SECONDS: how long their user rows are reused (with MONOTONIC; 0 = never)."""
        self.rsvps = rsvps
        self.audience = audience
        self.users = users
        self.follows = follows
        self.gate = gate
        self.base_url = base_url
        self.monotonic = monotonic
        self.names_seconds = names_seconds
        self._names: dict[int, tuple[User, float]] = {}  # a coalesced room's first page

    def _listener_users(self, ids: list[int], coalesced: bool) -> dict[int, User]:
        """The users of a view's listeners. A coalesced room's first page is much the same
        from one join to the next: its rows are kept ``names_seconds`` (a display name may
        be that much behind in a view), so a join does not read them all again."""
        if not coalesced or self.monotonic is None or self.names_seconds <= 0:
            return self.users.many(ids)
        now = self.monotonic()
        cached = self._names
        found: dict[int, User] = {}
        missing = []
        for uid in ids:
            hit = cached.get(uid)
            if hit is not None and now - hit[1] < self.names_seconds:
                found[uid] = hit[0]
            else:
                missing.append(uid)
        fetched = self.users.many(missing) if missing else {}
        found.update(fetched)
        if len(cached) > 8 * max(len(ids), 1):  # bounded: only recent pages stay
            cached.clear()
        for uid, user in fetched.items():
            cached[uid] = (user, now)
        return found

    def event_message(self, room: Room, seq: int, event: RoomEvent) -> dict[str, Any]:
        data = dict(event.data)
        ids = [v for k, v in data.items() if k in ("user", "by") and isinstance(v, int)]
        users = self.users.many(ids)
        for key in ("user", "by"):
            value = data.get(key)
            if isinstance(value, int):
                data[key] = handle(users[value]) if value in users else None
        if event.kind in ("disconnected", "reconnected") and "role" not in data:
            someone = room.participants.get(event.data["user"])
            if someone is not None:
                data["role"] = someone.role.value
        if event.kind == "joined":
            p = room.participants.get(event.data["user"])
            if p is not None:
                data["participant"] = self._participant_view(p, users)
        return {"type": "event", "seq": seq, "event": event.kind, **data}

    def view(self, room: Room, viewer: User | None, levels: dict[int, float]) -> dict[str, Any]:
        # Listeners someone on stage follows (accepted), for the "Followed by the speakers"
        # group: one query for the whole room, bounded by the stage's size.
        # One pass splits the room (a join in a room of thousands builds the joiner's view).
        stage: list[Participant] = []
        listeners: list[Participant] = []
        for p in room.participants.values():
            (stage if p.role in STAGE_ROLES else listeners).append(p)
        speakers = sorted(stage, key=by_stage_time)
        coalesced = self.audience is not None and self.audience.coalesces(len(room.participants))
        if not coalesced:  # a coalesced room's view lists a first page: no need to sort all
            listeners.sort(key=BY_JOINING)
        stage_ids = sorted(p.user_id for p in speakers)
        listener_ids = {p.user_id for p in listeners}
        followed: frozenset[int] = frozenset()
        if stage_ids and listener_ids:
            followed = frozenset(self.follows.followed_by(stage_ids)) & listener_ids
        if coalesced and self.audience is not None:
            listeners = first_listeners(
                listeners, followed, self.audience.coalesce_above, viewer.id if viewer else None
            )
        hands = room.hands()
        users = self.users.many([room.host_id, *stage_ids, *(p.user_id for p in hands)])
        users.update(self._listener_users([p.user_id for p in listeners], coalesced))
        host = users.get(room.host_id)
        data: dict[str, Any] = {
            "id": room.id,
            "url": f"{self.base_url}/rooms/{room.id}",
            "title": room.title,
            "description": room.description,
            "join_mode": room.join_mode.value,
            "status": room.status.value,
            "host": handle(host) if host else None,
            "host_display_name": (host.display_name or host.username) if host else None,
            "start_time": room.start_time,
            "started_at": room.started_at,
            "ended_at": room.ended_at,
            "seq": room.seq,
            "participant_count": len(room.participants),
            "listener_count": len(listener_ids),
            "hand_count": len(hands),
            "coalesced": coalesced,
            "recording": room.record,  # issue #14: recorded (live) or to be recorded (scheduled)
            "speakers": [self._participant_view(p, users) for p in speakers],
            "listeners": [self._participant_view(p, users, followed) for p in listeners],
            "hands": [handle(users[p.user_id]) for p in hands if p.user_id in users],
            "levels": self._current_levels(room, users, levels),
        }
        if viewer is not None:
            me = room.participants.get(viewer.id)
            data["you"] = self._participant_view(me, users, followed) if me else None
            if viewer.id in room.moderator_ids():
                data["invite_link"] = f"{self.base_url}/rooms/{room.id}?invite={room.invite_token}"
            mark_blocks(data, room, viewer, self.gate, users, speakers)
            if self.rsvps is not None:  # "Notify me" (node/rsvp.py)
                data["you_rsvped"] = self.rsvps.has(viewer.id, room.id)
                if viewer.id in room.moderator_ids():
                    data["rsvp_count"] = self.rsvps.count(room.id)
        return data

    @staticmethod
    def check_listeners_access(room: Room, viewer: User) -> None:
        """A closed room's audience is for its members: participants, invitees, host
        and moderators (RoomRuleError forbidden otherwise)."""
        if room.join_mode is not JoinMode.CLOSED:
            return
        if viewer.id not in {*room.participants, *room.invites, *room.moderator_ids()}:
            raise RoomRuleError("forbidden", "only the room's members may see who listens")

    def listener_page(
        self, room: Room, after: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Listeners with a user id above AFTER, in id order, and the cursor of the next
        page (None at the end): ``GET /api/rooms/{id}/listeners``."""
        audience = sorted(
            (p for p in room.participants.values() if not p.on_stage and p.user_id > after),
            key=lambda p: p.user_id,
        )
        page = audience[:limit]
        users = self.users.many([p.user_id for p in page])
        items = [self._participant_view(p, users) for p in page]
        more = len(audience) > limit
        return items, (page[-1].user_id if more and page else None)

    def _current_levels(
        self, room: Room, users: dict[int, User], levels: dict[int, float]
    ) -> dict[str, float]:
        """The last speaking levels, of people still in the room and able to be heard."""
        if room.status is not RoomStatus.LIVE:
            return {}
        return {
            handle(users[uid]): round(level, 3)
            for uid, level in levels.items()
            if uid in users and (p := room.participants.get(uid)) is not None and p.can_speak
        }

    def card(self, room: Room, viewer: User, levels: dict[int, float]) -> HallwayCard:
        """A hallway card: the view without the full audience list, levels or invite link."""
        view = self.view(room, viewer, levels)
        core = {name: view.pop(name) for name in CARD_FIELDS}
        view.pop("listeners")
        view.pop("levels")
        view.pop("invite_link", None)
        return HallwayCard(**core, extra=view)

    @staticmethod
    def _participant_view(
        p: Participant, users: dict[int, User], followed: frozenset[int] | None = None
    ) -> dict[str, Any]:
        """FOLLOWED (in the room view): listeners someone on stage follows; adds the
        ``followed_by_speakers`` flag to listeners. Events leave it out (clients refetch)."""
        user = users.get(p.user_id)
        data = {
            "user": handle(user) if user else None,
            "display_name": (user.display_name or user.username) if user else None,
            "role": p.role.value,
            "muted": p.muted,
            "mute_locked": p.mute_locked,
            "hand_raised": p.hand_raised_at is not None,
            "invited_to_speak": p.invited_to_speak,
            "connected": p.connected,
        }
        if followed is not None and not p.on_stage:
            data["followed_by_speakers"] = p.user_id in followed
        return data


def first_listeners(
    listeners: list[Participant], followed: frozenset[int], count: int, viewer_id: int | None
) -> list[Participant]:
    """A coalesced room's view lists COUNT listeners (those the speakers follow first) and
    the viewer, wherever they sit; the rest come from the paged listener list."""
    if followed:
        first = [p for p in listeners if p.user_id in followed]
        shown = heapq.nsmallest(count, first, key=BY_JOINING)
        if len(shown) < count:
            rest = [p for p in listeners if p.user_id not in followed]
            shown += heapq.nsmallest(count - len(shown), rest, key=BY_JOINING)
    else:
        shown = heapq.nsmallest(count, listeners, key=BY_JOINING)
    if viewer_id is not None and all(p.user_id != viewer_id for p in shown):
        shown += [p for p in listeners if p.user_id == viewer_id]
    return shown
