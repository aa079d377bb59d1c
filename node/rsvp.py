"""RSVPs ("Notify me") to scheduled rooms, the host's count, and calendars.

One service for every way an RSVP arrives: a local user asking about a local room, a
local user asking about a remote room (federation sends the ``Follow`` of the room through
``RemoteRsvps``), and a remote actor's ``Follow`` of one of our rooms (federation calls
``rsvp`` with the actor's users row). The same checks apply to all: the room exists and is
scheduled or live, the person may see it (join mode, bans, blocks, domain policy), and
one account holds at most ``rsvps_per_user`` RSVPs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import re
import secrets
from typing import Protocol
from urllib.parse import urlsplit

from node.calendar import CalendarRoom, calendar
from node.clock import Clock
from node.errors import DomainError
from node.rooms.hallway import Viewer, visible
from node.rooms.limits import ActionLimiter
from node.rooms.model import Room, RoomStatus
from node.rooms.service import RoomService
from node.settings import Settings
from node.store.follows import FollowStore
from node.store.rsvps import Rsvp, RsvpLimitReached, RsvpStore
from node.store.users import User, UserStore

log = logging.getLogger(__name__)

#: Feed tokens as handed out: ``secrets.token_urlsafe(32)`` (43 characters).
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
NO_ROOM = "no such room"


class RsvpError(DomainError):
    """An RSVP the rules refuse."""


class RemoteRsvps(Protocol):
    """RSVPs to rooms on other nodes, through our user's actor (federation/rsvp.py)."""

    async def ask(self, user: User, room_uri: str) -> str:
        """Send USER's ``Follow`` of the room to its node; the Follow's id. RsvpError when
        the room's node refuses or cannot be reached (nothing is stored then)."""

    def cancel(self, user: User, room_uri: str, activity_id: str | None) -> None:
        """Queue USER's ``Undo`` of that Follow."""

    def describe(self, room_uri: str) -> CalendarRoom | None:
        """The remote room as its host last announced it; None if unknown here."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RsvpService:
    def __init__(
        self,
        store: RsvpStore,
        rooms: RoomService,
        users: UserStore,
        follows: FollowStore,
        settings: Settings,
        clock: Clock,
        remote: RemoteRsvps | None = None,
    ) -> None:
        self.store = store
        self.rooms = rooms
        self.users = users
        self.follows = follows
        self.settings = settings
        self.clock = clock
        self.remote = remote
        self._changes = ActionLimiter(
            clock, settings.rsvp_changes_per_minute / 60.0, settings.rsvp_changes_per_minute
        )
        self.room_prefix = f"{settings.base_url}/rooms/"
        self.own_host = settings.base_url.split("://", 1)[-1].rstrip("/")

    # ---- which room ----------------------------------------------------------------
    def room_key(self, ref: object) -> str:
        """A local room id, or a remote room's URI; our own room URLs become ids."""
        if not isinstance(ref, str) or not ref or len(ref) > 2000:
            raise RsvpError("invalid", "room must be a room id or a room URL")
        if ref.startswith(self.room_prefix):
            ref = ref[len(self.room_prefix) :]
        elif ref.startswith(self.settings.base_url + "/"):
            raise RsvpError("not_found", NO_ROOM)  # ours, but not a room
        if ref.startswith(("https://", "http://")):
            if any(c.isspace() or not c.isprintable() for c in ref):
                raise RsvpError("invalid", "room must be a room id or a room URL")
            return ref
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", ref):
            raise RsvpError("not_found", NO_ROOM)
        return ref

    @staticmethod
    def is_remote(key: str) -> bool:
        return key.startswith(("https://", "http://"))

    def may_see(self, room: Room, user: User | None) -> bool:
        """What the hallway shows the same person (join mode, bans), plus blocks."""
        if user is None:
            return room.join_mode.value == "open" and room.status is not RoomStatus.ENDED
        viewer = Viewer(
            user_id=user.id,
            following=frozenset(),
            followed_by=frozenset(
                uid
                for uid in room.moderator_ids()
                if self.follows.state(uid, user.id) == "accepted"
            ),
        )
        if not visible(room, viewer):
            return False
        return not self.rooms.gate.blocked_by_moderators(room, {user.id})

    def _local_room(self, room_id: str, user: User) -> Room:
        room = self.rooms.find(room_id)
        if room is None or not self.may_see_ended(room, user):
            raise RsvpError("not_found", NO_ROOM)
        if user.domain is not None and self.rooms.gate.domains.refused(user.domain):
            raise RsvpError("forbidden", "this node does not federate with your domain")
        if room.status not in (RoomStatus.SCHEDULED, RoomStatus.LIVE):
            raise RsvpError("conflict", f"the room is {room.status.value}")
        return room

    # ---- asking and cancelling -------------------------------------------------------
    async def ask(self, user: User, ref: object) -> str:
        """USER asks to be notified about a room here or elsewhere; the room's key."""
        key = self.room_key(ref)
        self._check_rate(user)
        if not self.is_remote(key):
            self.rsvp(user, key)
            return key
        if self.remote is None or user.domain is not None:
            raise RsvpError("not_found", NO_ROOM)
        if self.store.has(user.id, key):
            return key
        if self.rooms.gate.domains.refused(urlsplit(key).netloc.lower()):
            raise RsvpError("forbidden", "this node does not federate with that room's node")
        self._check_room_for_more(user)
        activity_id = await self.remote.ask(user, key)
        try:
            self._add(user, key, activity_id)
        except RsvpError:
            # a concurrent request took the last place meanwhile: take the Follow back
            self.remote.cancel(user, key, activity_id)
            raise
        return key

    def rsvp(self, user: User, room_id: str, activity_id: str | None = None) -> Room:
        """An RSVP to one of our rooms, by a local user or (ACTIVITY_ID) a remote actor."""
        room = self._local_room(room_id, user)
        self._add(user, room.id, activity_id)
        return room

    def _check_room_for_more(self, user: User) -> None:
        if len(self.store.rooms_of(user.id)) >= self.settings.rsvps_per_user:
            raise self._limit_error()

    def _limit_error(self) -> RsvpError:
        limit = self.settings.rsvps_per_user
        return RsvpError(
            "conflict", f"you already asked to be notified about {limit} rooms; cancel one first"
        )

    def _add(self, user: User, key: str, activity_id: str | None) -> None:
        try:
            added = self.store.add(
                user.id,
                key,
                self.clock.now(),
                limit=self.settings.rsvps_per_user,
                activity_id=activity_id,
            )
        except RsvpLimitReached:
            raise self._limit_error() from None
        if added:
            log.info("rsvp: %s asked about %s", user.username, key)

    def _check_rate(self, user: User) -> None:
        if not self._changes.allow(user.id):
            raise RsvpError("rate_limited", "too many Notify me changes; slow down", 60.0)

    def cancel(self, user: User, ref: object) -> str:
        key = self.room_key(ref)
        self._check_rate(user)
        removed = self.store.remove(user.id, key)
        if removed is None:
            raise RsvpError("not_found", "you did not ask to be notified about that room")
        if self.is_remote(key) and self.remote is not None and user.domain is None:
            self.remote.cancel(user, key, removed.activity_id)
        return key

    def by_activity(self, activity_id: str) -> Rsvp | None:
        """The RSVP a remote ``Follow`` (by its id) made."""
        return self.store.by_activity(activity_id)

    def withdraw(self, user: User, room_id: str) -> bool:
        """A remote actor's ``Undo`` of its Follow of our room."""
        return self.store.remove(user.id, room_id) is not None

    # ---- reading ---------------------------------------------------------------------
    def count(self, room_id: str) -> int:
        return self.store.count(room_id)

    def has(self, user: User, key: str) -> bool:
        return self.store.has(user.id, key)

    def rooms_of(self, user: User) -> list[str]:
        return self.store.rooms_of(user.id)

    def describe(self, key: str) -> CalendarRoom | None:
        if self.is_remote(key):
            return self.remote.describe(key) if self.remote is not None else None
        room = self.rooms.find(key)
        return None if room is None else self.calendar_room(room)

    def allowed(self, key: str, user_ids: list[int]) -> list[int]:
        """Those of USER_IDS who may still see the room (a host may have blocked someone
        since they asked); remote rooms are their own node's to decide."""
        if self.is_remote(key):
            return user_ids
        room = self.rooms.find(key)
        if room is None:
            return []
        users = self.users.many(user_ids)
        return [uid for uid in user_ids if uid in users and self.may_see_ended(room, users[uid])]

    def calendar_room(self, room: Room) -> CalendarRoom:
        host = self.users.get(room.host_id)
        name = host.username if host else "?"
        host_handle = f"{name}@{host.domain or self.own_host}" if host else "?"
        start = room.started_at or room.start_time or room.created_at
        return CalendarRoom(
            url=f"{self.room_prefix}{room.id}",
            title=room.title,
            description=room.description,
            host=host_handle,
            status=room.status.value,
            start=start,
            end=room.ended_at,
            took_place=room.started_at is not None,
        )

    # ---- calendars -------------------------------------------------------------------
    def room_calendar(self, room_id: str, viewer: User | None) -> bytes:
        room = self.rooms.find(room_id) if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", room_id) else None
        if room is None or not self.may_see_ended(room, viewer):
            raise RsvpError("not_found", NO_ROOM)
        return calendar([self.calendar_room(room)], self.clock.now(), room.title)

    def may_see_ended(self, room: Room, viewer: User | None) -> bool:
        """An ended room's calendar stays readable by whoever could see it before."""
        if room.status is not RoomStatus.ENDED:
            return self.may_see(room, viewer)
        if viewer is not None and viewer.id in room.moderator_ids():
            return True
        return self.may_see(dataclasses.replace(room, status=RoomStatus.SCHEDULED), viewer)

    def feed_rooms(self, user: User) -> list[CalendarRoom]:
        """Rooms USER asked about (here and elsewhere) and the rooms USER hosts."""
        found: dict[str, CalendarRoom] = {}
        for room in self.rooms.hosted_by(user.id):
            found[room.id] = self.calendar_room(room)
        for key in self.store.rooms_of(user.id):
            if key not in found and (described := self.describe(key)) is not None:
                found[key] = described
        return sorted(found.values(), key=lambda r: (r.start, r.url))

    def new_calendar_token(self, user: User) -> str:
        """A fresh feed token for USER (only its hash is stored; the old one stops)."""
        token = secrets.token_urlsafe(32)
        self.store.set_calendar_token(user.id, token_hash(token), self.clock.now())
        return token

    def calendar_active(self, user: User) -> bool:
        return self.store.has_calendar_token(user.id)

    def revoke_calendar(self, user: User) -> bool:
        """Turn USER's feed off: its URL stops working."""
        return self.store.delete_calendar_token(user.id)

    def feed(self, token: str) -> bytes | None:
        """The calendar behind a feed token; None for a token that is not one."""
        if not TOKEN_RE.fullmatch(token):
            return None
        digest = token_hash(token)
        found = self.store.calendar_token(digest)
        if found is None or not hmac.compare_digest(found[1], digest):
            return None
        user = self.users.get(found[0])
        if user is None or user.domain is not None or user.suspended:
            return None
        name = f"Salon: {user.display_name or user.username}"
        return calendar(self.feed_rooms(user), self.clock.now(), name)

    def feed_url(self, token: str) -> str:
        return f"{self.settings.base_url}/calendar/{token}.ics"
