"""What clients see of a room: the full view, hallway cards and event messages.

Pure presentation over the room model and the stores it needs to name people; the room
service asks it after every change, and nothing here changes a room.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from node.accounts import handle
from node.rooms.block_marks import mark_blocks
from node.rooms.gate import Gate
from node.rooms.hallway import HallwayCard
from node.rooms.model import Participant, Room, RoomEvent, RoomStatus
from node.store.follows import FollowStore
from node.store.rsvps import RsvpStore
from node.store.users import User, UserStore

CARD_FIELDS = [f.name for f in dataclasses.fields(HallwayCard) if f.name != "extra"]


class RoomViews:
    def __init__(
        self,
        users: UserStore,
        follows: FollowStore,
        gate: Gate,
        base_url: str,
        rsvps: RsvpStore | None = None,
    ) -> None:
        self.rsvps = rsvps
        self.users = users
        self.follows = follows
        self.gate = gate
        self.base_url = base_url

    def event_message(self, room: Room, seq: int, event: RoomEvent) -> dict[str, Any]:
        data = dict(event.data)
        ids = [v for k, v in data.items() if k in ("user", "by") and isinstance(v, int)]
        users = self.users.many(ids)
        for key in ("user", "by"):
            value = data.get(key)
            if isinstance(value, int):
                data[key] = handle(users[value]) if value in users else None
        if event.kind == "joined":
            p = room.participants.get(event.data["user"])
            if p is not None:
                data["participant"] = self._participant_view(p, users)
        return {"type": "event", "seq": seq, "event": event.kind, **data}

    def view(self, room: Room, viewer: User | None, levels: dict[int, float]) -> dict[str, Any]:
        ids = [room.host_id, *room.participants]
        users = self.users.many(ids)
        host = users.get(room.host_id)
        # Listeners someone on stage follows (accepted), for the "Followed by the speakers"
        # group: one query for the whole room, bounded by the stage's size.
        stage_ids = sorted(p.user_id for p in room.speakers())
        listener_ids = {p.user_id for p in room.listeners()}
        followed: frozenset[int] = frozenset()
        if stage_ids and listener_ids:
            followed = frozenset(self.follows.followed_by(stage_ids)) & listener_ids
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
            "listener_count": len(room.listeners()),
            "speakers": [self._participant_view(p, users) for p in room.speakers()],
            "listeners": [self._participant_view(p, users, followed) for p in room.listeners()],
            "hands": [handle(users[p.user_id]) for p in room.hands() if p.user_id in users],
            "levels": self._current_levels(room, users, levels),
        }
        if viewer is not None:
            me = room.participants.get(viewer.id)
            data["you"] = self._participant_view(me, users, followed) if me else None
            if viewer.id in room.moderator_ids():
                data["invite_link"] = f"{self.base_url}/rooms/{room.id}?invite={room.invite_token}"
            mark_blocks(data, room, viewer, self.gate, users)
            if self.rsvps is not None:  # "Notify me" (node/rsvp.py)
                data["you_rsvped"] = self.rsvps.has(viewer.id, room.id)
                if viewer.id in room.moderator_ids():
                    data["rsvp_count"] = self.rsvps.count(room.id)
        return data

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
