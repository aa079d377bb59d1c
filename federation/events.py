"""A Salon room on the wire: the AS2 ``Event`` with Salon's terms, and its ``Audio``
attachment (the replay) with xsd:duration values. Pure: no I/O.

Specs: ActivityStreams 2.0 vocabulary (``Event``, ``Audio``, ``duration``), Salon's own
terms (``SALON_CONTEXT``, docs/federation.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self, TypeVar

from federation.as2 import (
    EVENT_CONTEXT,
    ActivityError,
    check_type,
    first_ref,
    format_datetime,
    optional_str,
    optional_uri,
    put_addresses,
    read_addresses,
    read_datetime,
    read_link,
    read_object,
    read_ref,
    read_uri,
    required_uri,
)
from node.rooms.model import JoinMode, RoomStatus

_E = TypeVar("_E", RoomStatus, JoinMode)

_DURATION = re.compile(
    r"P(?:([0-9]{1,6})D)?(?:T(?:([0-9]{1,6})H)?(?:([0-9]{1,6})M)?(?:([0-9]{1,9}(?:\.[0-9]{1,9})?)S)?)?"
)


def format_duration(seconds: float) -> str:
    """An xsd:duration such as ``PT1234.5S`` (AS2 §4 ``duration``)."""
    text = f"{max(0.0, seconds):.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def parse_duration(value: object, field: str) -> float:
    if not isinstance(value, str) or value in ("P", "PT") or value.endswith("T"):
        raise ActivityError(f"{field} must be an xsd:duration such as PT90S")
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ActivityError(f"{field} must be an xsd:duration such as PT90S")
    days, hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + secs


@dataclass(frozen=True)
class Audio:
    """An ``Audio`` attachment of an Event: the room's replay (docs/federation.md §5.2)."""

    url: str
    media_type: str = "audio/ogg"
    duration: float | None = None
    name: str | None = None

    @classmethod
    def parse(cls, data: object) -> Self:
        audio = read_object(data, "Audio")
        check_type(audio, "Audio", "Audio")
        url = read_link(audio.get("url"))
        if url is None:
            raise ActivityError("Audio.url is required")
        media_type = audio.get("mediaType")
        if media_type is None:
            raw = audio.get("url")
            if isinstance(raw, Mapping):
                media_type = raw.get("mediaType")
        raw_duration = audio.get("duration")
        duration = None if raw_duration is None else parse_duration(raw_duration, "Audio.duration")
        return cls(
            url=read_uri(url, "Audio.url"),
            media_type=media_type if isinstance(media_type, str) else "audio/ogg",
            duration=duration,
            name=optional_str(audio, "name", "Audio"),
        )

    def serialize(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "Audio", "mediaType": self.media_type, "url": self.url}
        if self.duration is not None:
            out["duration"] = format_duration(self.duration)
        if self.name is not None:
            out["name"] = self.name
        return out


def audio_attachments(value: object) -> tuple[Audio, ...]:
    """The ``Audio`` entries of ATTACHMENT; other kinds (images, links) are not Salon's."""
    items = value if isinstance(value, list) else [] if value is None else [value]
    return tuple(
        Audio.parse(item)
        for item in items[:10]
        if isinstance(item, Mapping) and item.get("type") == "Audio"
    )


@dataclass(frozen=True, kw_only=True)
class Event:
    """A Salon room as an AS2 ``Event`` plus Salon terms.

    Non-Salon ``Event`` objects (Mobilizon, Gancio) parse too: they have no ``status`` and
    then the Salon terms are not read at all, because Mobilizon uses ``joinMode`` with its
    own values under its own namespace.
    """

    id: str
    name: str
    attributed_to: str
    summary: str | None = None
    url: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    updated: datetime | None = None
    status: RoomStatus | None = None
    join_mode: JoinMode | None = None
    speakers: tuple[str, ...] = ()
    listener_count: int | None = None
    relay: str | None = None
    recording: bool | None = None  # the room is (or will be) recorded (issue #14)
    attachments: tuple[Audio, ...] = ()
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()

    @property
    def is_salon_room(self) -> bool:
        return self.status is not None

    @classmethod
    def parse(cls, data: object) -> Self:
        event = read_object(data, "Event")
        check_type(event, "Event", "Event")
        name = event.get("name")
        if not isinstance(name, str):
            raise ActivityError("Event.name is required")
        salon: dict[str, Any] = {}
        if event.get("status") is not None:
            salon = _salon_terms(event)
        return cls(
            id=required_uri(event, "id", "Event"),
            name=name,
            attributed_to=first_ref(event.get("attributedTo"), "Event.attributedTo"),
            summary=optional_str(event, "summary", "Event"),
            url=read_link(event.get("url")),
            start_time=read_datetime(event, "startTime", "Event"),
            end_time=read_datetime(event, "endTime", "Event"),
            updated=read_datetime(event, "updated", "Event"),
            attachments=audio_attachments(event.get("attachment")),
            to=read_addresses(event, "to", "Event"),
            cc=read_addresses(event, "cc", "Event"),
            **salon,
        )

    def serialize(self, *, context: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"@context": EVENT_CONTEXT} if context else {}
        out.update(id=self.id, type="Event", name=self.name, attributedTo=self.attributed_to)
        if self.summary is not None:
            out["summary"] = self.summary
        if self.url is not None:
            out["url"] = self.url
        times = {"startTime": self.start_time, "endTime": self.end_time, "updated": self.updated}
        out.update({k: format_datetime(v) for k, v in times.items() if v is not None})
        if self.attachments:
            out["attachment"] = [audio.serialize() for audio in self.attachments]
        put_addresses(out, self.to, self.cc)
        if self.status is not None:
            out["status"] = self.status
            if self.join_mode is not None:
                out["joinMode"] = self.join_mode
            out["speakers"] = list(self.speakers)
            if self.listener_count is not None:
                out["listenerCount"] = self.listener_count
            if self.relay is not None:
                out["relay"] = self.relay
            if self.recording is not None:
                out["recording"] = self.recording
        return out


def _member(kind: type[_E], raw: object, where: str) -> _E:
    """RAW as a member of the enum KIND (the room model's own vocabulary)."""
    values = [member.value for member in kind]
    if raw not in values:
        raise ActivityError(f"{where} must be one of {', '.join(values)}")
    return kind(raw)


def _salon_terms(event: Mapping[str, Any]) -> dict[str, Any]:
    status = _member(RoomStatus, event.get("status"), "Event.status")
    raw_mode = event.get("joinMode")
    join_mode = None if raw_mode is None else _member(JoinMode, raw_mode, "Event.joinMode")
    count = event.get("listenerCount")
    if count is not None and (type(count) is not int or count < 0):
        raise ActivityError("Event.listenerCount must be a non-negative integer")
    speakers = event.get("speakers")
    if not isinstance(speakers, list):
        speakers = [] if speakers is None else [speakers]
    recording = event.get("recording")
    if recording is not None and not isinstance(recording, bool):
        raise ActivityError("Event.recording must be true or false")
    return {
        "status": status,
        "recording": recording,
        "join_mode": join_mode,
        "speakers": tuple(read_ref(s, "Event.speakers") for s in speakers),
        "listener_count": count,
        "relay": optional_uri(event, "relay", "Event"),
    }
