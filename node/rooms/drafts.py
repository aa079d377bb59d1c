"""What a client sends to create or edit a room, checked before anything changes:
``RoomDraft`` (``parse_draft``) and the field parsers ``RoomService.update_details`` uses
too. Pure but for the clock; each refusal is a ``RoomRuleError`` whose message the API
returns as it is (docs/api.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from node.clock import Clock
from node.rooms.model import JoinMode, RoomRuleError
from node.text import check_text

MAX_TITLE = 200
MAX_DESCRIPTION = 2000
MAX_SCHEDULE_AHEAD = 366 * 86400
MAX_EPOCH = 10**11  # start times are epoch seconds below this (year ~5138)


@dataclass(frozen=True)
class RoomDraft:
    title: str
    description: str
    join_mode: JoinMode
    start_time: float | None
    record: bool = False


def parse_draft(body: dict[str, Any], clock: Clock) -> RoomDraft:
    """A new room from BODY (``POST /api/rooms``); a start time is checked against CLOCK."""
    only_fields(body, {"title", "description", "join_mode", "start_time", "record"})
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        raise RoomRuleError("invalid", "title is required")
    title = parse_title(title)
    description = parse_description(body.get("description", ""))
    mode_raw = body.get("join_mode", "open")
    try:
        join_mode = JoinMode(mode_raw)
    except ValueError:
        raise RoomRuleError("invalid", "join_mode must be open, social or closed") from None
    start_time = parse_start_time(body.get("start_time"))
    if start_time is not None:
        now = clock.now()
        if start_time < now - 60:
            raise RoomRuleError("invalid", "start_time is in the past")
        if start_time > now + MAX_SCHEDULE_AHEAD:
            raise RoomRuleError("invalid", "start_time is more than a year ahead")
    record = body.get("record", False)
    if not isinstance(record, bool):
        raise RoomRuleError("invalid", "record must be true or false")
    return RoomDraft(title, description, join_mode, start_time, record)


def only_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RoomRuleError("invalid", f"unknown field(s): {', '.join(unknown)}")


def parse_title(raw: object) -> str:
    """A room title: 1-MAX_TITLE characters once surrounding space is stripped."""
    title = check_text(raw, "title", MAX_TITLE).strip()
    if not title:
        raise RoomRuleError("invalid", f"title must be 1-{MAX_TITLE} characters")
    return title


def parse_description(raw: object) -> str:
    return check_text(raw, "description", MAX_DESCRIPTION, lines=True)


def parse_start_time(raw: object) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise RoomRuleError("invalid", "start_time must be an ISO 8601 time or epoch seconds")
    if isinstance(raw, int | float):
        if isinstance(raw, float) and not math.isfinite(raw):
            raise RoomRuleError("invalid", "start_time must be a finite number")
        if not 0 <= raw < MAX_EPOCH:  # compared before float(): 10**400 would overflow
            raise RoomRuleError("invalid", "start_time is out of range")
        return float(raw)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise RoomRuleError("invalid", "start_time must be an ISO 8601 time") from None
        if parsed.tzinfo is None:
            raise RoomRuleError("invalid", "start_time needs a time zone (e.g. Z or +02:00)")
        return parsed.timestamp()
    raise RoomRuleError("invalid", "start_time must be an ISO 8601 time or epoch seconds")
