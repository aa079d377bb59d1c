"""``Invite``: a person pings someone on another node into a room (docs/federation.md).

``{"type": "Invite", "actor": alice, "object": the room's Event, "target": bob,
"to": [bob]}``, signed by alice and delivered to bob's inbox. ``object`` is the room's id
or the embedded ``Event`` (Salon embeds it for rooms of the sender's own node, so a closed
room, which its node does not serve to others, can be named); ``target`` is an id (an
embedded object with an ``id`` names the same thing). Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from federation.as2 import AS_CONTEXT, EVENT_CONTEXT, ActivityError, host_of
from federation.events import Event


def _id(value: object, field: str) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, Mapping):
        value = value.get("id")
    if not isinstance(value, str):
        raise ActivityError(f"{field} must be one id")
    try:
        host_of(value)
    except ActivityError:
        raise ActivityError(f"{field} must be an absolute http(s) URI, got {value!r}") from None
    return value


@dataclass(frozen=True, kw_only=True)
class Invite:
    TYPE: ClassVar[str] = "Invite"
    id: str
    actor: str
    object: str
    target: str
    to: tuple[str, ...] = ()
    event: Event | None = None  # the embedded room, when it was sent embedded

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Invite:
        if data.get("type") != cls.TYPE:
            raise ActivityError("Invite.type must be 'Invite'")
        raw_to = data.get("to", [])
        to = raw_to if isinstance(raw_to, list) else [raw_to]
        target = data.get("target")
        if target is None and len(to) == 1:
            target = to[0]  # an Invite addressed to one person invites that person
        raw_object = data.get("object")
        event = None
        if isinstance(raw_object, Mapping) and raw_object.get("type") == "Event":
            event = Event.parse(raw_object)
        return cls(
            event=event,
            id=_id(data.get("id"), "Invite.id"),
            actor=_id(data.get("actor"), "Invite.actor"),
            object=_id(data.get("object"), "Invite.object"),
            target=_id(target, "Invite.target"),
            to=tuple(t for t in to if isinstance(t, str)),
        )

    def serialize(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "@context": EVENT_CONTEXT if self.event else AS_CONTEXT,
            "id": self.id,
            "type": self.TYPE,
            "actor": self.actor,
            "object": self.event.serialize(context=False) if self.event else self.object,
            "target": self.target,
        }
        if self.to:
            out["to"] = list(self.to)
        return out
