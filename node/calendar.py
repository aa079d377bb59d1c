"""iCalendar (RFC 5545) for rooms: one VEVENT per room, in a VCALENDAR (pure, no I/O).

Written here rather than with a library: Salon needs one component with a handful of
properties, and the rules that matter for safety are few and explicit — TEXT values are
escaped (§3.3.11: backslash, semicolon, comma, newline), control characters that have no
place in a property value are dropped (a CR or LF in a room title must never start a new
property), every content line is folded at 75 octets without splitting a UTF-8 sequence
(§3.1), and lines end in CRLF.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

PRODID = "-//Salon//Salon rooms//EN"
#: How long a room is assumed to last in a calendar until it has really ended.
ASSUMED_DURATION = 3600.0
LINE_OCTETS = 75


@dataclass(frozen=True)
class CalendarRoom:
    """What a calendar shows of one room, local or remote."""

    url: str  # the room's page (and Event id)
    title: str
    description: str
    host: str  # the host's handle, alice@host
    status: str  # scheduled | live | ended
    start: float  # epoch seconds: when it started, or is scheduled to
    end: float | None  # when it ended; None while it has not
    took_place: bool  # False for a room that ended without ever going live (cancelled)


def uid(room_url: str) -> str:
    """Stable across nodes: the room id and the room's node, from the room's URL."""
    parts = urlsplit(room_url)
    room_id = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return f"{room_id}@{parts.netloc.lower()}"


def sequence(status: str) -> int:
    """Bumped at each change of the room's times: going live fixes DTSTART, ending DTEND."""
    return {"scheduled": 0, "live": 1}.get(status, 2)


def text(value: str) -> str:
    """A TEXT value (§3.3.11): escaped, with CR/LF as ``\\n`` and other controls dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    kept = []
    for char in value:
        if char == "\n":
            kept.append("\\n")
        elif char in "\\;,":
            kept.append("\\" + char)
        elif unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn") or char in "\u2028\u2029":
            continue  # controls, lone surrogates, private use and unassigned: not text
        else:
            kept.append(char)
    return "".join(kept)


def uri(value: str) -> str:
    """A URI value: no escaping in iCalendar, so anything that could break a line goes."""
    return "".join(c for c in value if c.isprintable() and not c.isspace())


def stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%dT%H%M%SZ")


def fold(line: str) -> bytes:
    """One content line, folded at 75 octets (continuations start with a space)."""
    data = line.encode("utf-8")
    if len(data) <= LINE_OCTETS:
        return data + b"\r\n"
    out = bytearray()
    limit = LINE_OCTETS
    chunk = bytearray()
    for char in line:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > limit:
            out += chunk + b"\r\n "
            chunk = bytearray()
            limit = LINE_OCTETS - 1  # the leading space counts
        chunk += encoded
    out += chunk + b"\r\n"
    return bytes(out)


def vevent(room: CalendarRoom, now: float) -> list[str]:
    end = room.end if room.end is not None else max(room.start, 0.0) + ASSUMED_DURATION
    if end <= room.start:
        end = room.start + 60.0
    status = "CONFIRMED" if room.took_place or room.status != "ended" else "CANCELLED"
    description = room.description
    if description:
        description += "\n\n"
    description += f"Hosted by {room.host} on Salon: {room.url}"
    return [
        "BEGIN:VEVENT",
        f"UID:{text(uid(room.url))}",
        f"DTSTAMP:{stamp(now)}",
        f"SEQUENCE:{sequence(room.status)}",
        f"DTSTART:{stamp(room.start)}",
        f"DTEND:{stamp(end)}",
        f"SUMMARY:{text(room.title)}",
        f"DESCRIPTION:{text(description)}",
        f"URL:{uri(room.url)}",
        f"STATUS:{status}",
        "END:VEVENT",
    ]


def calendar(rooms: Iterable[CalendarRoom], now: float, name: str) -> bytes:
    """A VCALENDAR holding one VEVENT per room, ready to send as ``text/calendar``."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{text(name)}",
    ]
    for room in rooms:
        lines.extend(vevent(room, now))
    lines.append("END:VCALENDAR")
    return b"".join(fold(line) for line in lines)
