"""RSVP helpers shared by tests: a notification centre that records, and .ics reading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import icalendar


@dataclass(frozen=True)
class Sent:
    user_id: int
    kind: str
    room_url: str
    title: str
    actor: str | None
    key: str | None


class RecordingNotifications:
    """Implements the pinned ``Notifications.notify`` signature and keeps every call."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def notify(
        self,
        user_id: int,
        kind: str,
        *,
        room_url: str,
        title: str,
        actor: str | None = None,
        key: str | None = None,
    ) -> None:
        self.sent.append(Sent(user_id, kind, room_url, title, actor, key))


def events(body: str | bytes) -> list[Any]:
    """The VEVENTs of an iCalendar document, parsed by the icalendar library."""
    raw = body.encode() if isinstance(body, str) else body
    calendar = icalendar.Calendar.from_ical(raw)
    return [c for c in calendar.walk("VEVENT")]
