"""RFC 3339 date-times (section 5.6), as remote nodes write ``updated``, ``startTime``…

Pure. Accepted: ``T`` or ``t`` between date and time, fractional seconds of any length
(kept to the microsecond, the resolution of ``datetime``), ``Z``, ``z`` or a numeric
``+hh:mm``/``-hh:mm`` offset (``-00:00``, "offset unknown", is UTC), a leap second
(``:60``, read as the last microsecond of that minute). Everything else is refused — an
ISO 8601 form RFC 3339 does not allow (no offset, week dates, basic format, a date alone),
a space instead of ``T`` — so two nodes never disagree on what a timestamp means, and
timestamps are compared as instants, never as text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


class TimestampError(ValueError):
    """Not an RFC 3339 date-time."""


def parse_rfc3339(value: str) -> datetime:
    """VALUE as an aware datetime in UTC; ``TimestampError`` if it is not RFC 3339."""
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise TimestampError(f"not an RFC 3339 date-time: {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    fraction = match.group(7) or ""
    micro = int((fraction + "000000")[:6])
    if second == 60:  # a leap second: the last instant representable in that minute
        second, micro = 59, 999_999
    offset = timedelta(0)
    if match.group(8) is None:
        hours, minutes = int(match.group(10)), int(match.group(11))
        if hours > 23 or minutes > 59:
            raise TimestampError(f"not an RFC 3339 date-time (offset): {value!r}")
        offset = timedelta(hours=hours, minutes=minutes)
        if match.group(9) == "-":
            offset = -offset
    try:
        parsed = datetime(year, month, day, hour, minute, second, micro, timezone(offset))
    except ValueError as exc:
        raise TimestampError(f"not an RFC 3339 date-time ({exc}): {value!r}") from None
    return parsed.astimezone(UTC)
