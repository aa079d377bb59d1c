"""Reminders for RSVPs: "starts in 10 minutes" and "starting now", each sent once.

``run_once()`` looks at every room some local user awaits a reminder for: a scheduled room
whose start is within ``rsvp_reminder_lead_seconds`` sends ``rsvp_soon``; a live room sends
``rsvp_starting``; a room that ended or is no longer known is dropped from every RSVP (it
leaves the calendar feeds with it); a pass costs one lookup per room some local user
RSVPed to. Going live is also heard at once: for local rooms as a ``RoomObserver``
(``room_started``), for remote rooms when federation stores the host's announcement that
it is live (``room_live``). Each reminder is claimed in the store before
it is sent, and carries a dedupe ``key``, so neither a second pass nor a restart repeats it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from node.calendar import CalendarRoom
from node.clock import Clock
from node.rooms.model import Room, RoomEvent
from node.store.rsvps import RsvpStore

log = logging.getLogger(__name__)


class Notifications(Protocol):
    """The notification centre's one entry point (node/notifications.py)."""

    def notify(
        self,
        user_id: int,
        kind: str,
        *,
        room_url: str,
        title: str,
        actor: str | None = None,
        key: str | None = None,
    ) -> None: ...


class RoomCatalog(Protocol):
    """Rooms by RSVP key, local or remote (``RsvpService.describe``)."""

    def describe(self, key: str) -> CalendarRoom | None: ...

    def allowed(self, key: str, user_ids: list[int]) -> list[int]:
        """Those of USER_IDS who may still see the room now."""


class RsvpReminders:
    def __init__(
        self,
        store: RsvpStore,
        catalog: RoomCatalog,
        notifications: Notifications,
        clock: Clock,
        *,
        lead_seconds: float,
        poll_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.notifications = notifications
        self.clock = clock
        self.lead_seconds = lead_seconds
        self.poll_seconds = poll_seconds

    def run_once(self) -> int:
        """One pass over the rooms with pending reminders; how many reminders went out."""
        now = self.clock.now()
        sent = 0
        for key in self.store.watched_rooms():
            room = self.catalog.describe(key)
            if room is None or room.status == "ended":
                removed = self.store.forget_room(key)
                log.info("rsvp: %s is over; %d RSVP(s) dropped", key, removed)
            elif room.status == "live":
                sent += self._send(key, room, "start")
            elif room.start - self.lead_seconds <= now:
                sent += self._send(key, room, "soon")
        return sent

    def room_live(self, key: str) -> int:
        """The room with KEY went live (here, or its host's node says so): tell everyone."""
        room = self.catalog.describe(key)
        if room is None or room.status != "live":
            return 0
        return self._send(key, room, "start")

    def room_event(self, room: Room, event: RoomEvent) -> None:
        """A ``RoomObserver``: a local room that starts reminds its RSVPs at once; one
        that ends drops its RSVPs (and so leaves the calendar feeds)."""
        if event.kind == "room_started":
            self.room_live(room.id)
        elif event.kind == "room_ended":
            self.store.forget_room(room.id)  # local and remote RSVPs: the room is over

    def _send(self, key: str, room: CalendarRoom, mark: str) -> int:
        users = self.catalog.allowed(key, self.store.claim(key, mark))
        if mark == "start":
            self.store.claim(key, "soon")  # too late for "soon" once it is live
        kind = "rsvp_starting" if mark == "start" else "rsvp_soon"
        for user_id in users:
            try:
                self.notifications.notify(
                    user_id,
                    kind,
                    room_url=room.url,
                    title=room.title,
                    actor=room.host,
                    key=f"{kind}:{key}",
                )
            except ValueError as exc:  # a remote room's document the centre will not take
                log.warning("rsvp: %s for %s not stored: %s", kind, key, exc)
        if users:
            log.info("rsvp: %s sent to %d user(s) for %s", kind, len(users), key)
        return len(users)

    async def run(self) -> None:
        """The thin loop around ``run_once`` (cancelled at shutdown)."""
        while True:
            try:
                self.run_once()
            except Exception:
                # one bad room must not stop every reminder: log it loudly and go on
                log.exception("rsvp: reminder pass failed; continuing")
            await asyncio.sleep(self.poll_seconds)
