"""Reports across nodes (Mastodon's ``Flag``) and the ``Delete`` a suspension sends.

A forwarded report is a ``Flag`` from the node's Application actor — never the reporter —
whose ``object`` lists the reported actor (and, for a room, the room and its speakers on
that node) and whose ``content`` is the comment. An incoming ``Flag`` becomes a remote
report on the moderation desk only when every object it names is ours; otherwise it is
dropped with 202 and nothing stored, as it is from a refused domain.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from federation.activities import Activity, Actor, Delete, parse_activity
from federation.actors import plain_text
from federation.as2 import AS_CONTEXT, PUBLIC, ActivityError, Reference, host_of, same_host
from federation.identity import Urls
from federation.invites import Invite
from federation.joins import JoinRefused
from federation.outbox import Publisher
from federation.store.actors import RemoteActorStore
from federation.store.rooms import RemoteRoomStore
from node.moderation import MAX_COMMENT, ModerationDesk
from node.remote import ReportedRoom
from node.rooms.service import RoomService
from node.store.users import User, UserStore

log = logging.getLogger(__name__)

#: A Flag names the reported actor, a room and its speakers; more is not a Salon report.
MAX_FLAG_OBJECTS = 20


class ActorSuspended(JoinRefused):
    """403: the sending actor is suspended on this node (refused everywhere)."""


class ActivityDropped(ActivityError):
    """202 with nothing kept (not even the activity id): well-formed and signed, but about
    things that are not ours — the sender learns nothing from the answer."""


def _uri(value: object, field: str) -> str:
    if isinstance(value, Mapping):
        value = value.get("id")
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ActivityError(f"{field} must be an http(s) URI")
    return value


@dataclass(frozen=True, kw_only=True)
class Flag:
    """``Flag``: ``object`` is one URI or a list of them; ``content`` the comment."""

    TYPE: ClassVar[str] = "Flag"
    id: str
    actor: str
    objects: tuple[str, ...]
    content: str = ""
    to: tuple[str, ...] = ()

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Flag:
        if data.get("type") != cls.TYPE:
            raise ActivityError("Flag.type must be 'Flag'")
        raw = data.get("object")
        items = raw if isinstance(raw, list) else [raw]
        if not items or len(items) > MAX_FLAG_OBJECTS:
            raise ActivityError(f"Flag.object must name 1 to {MAX_FLAG_OBJECTS} objects")
        content = data.get("content", "")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise ActivityError("Flag.content must be a string")
        to = data.get("to", [])
        to_list = to if isinstance(to, list) else [to]
        return cls(
            id=_uri(data.get("id"), "Flag.id"),
            actor=_uri(data.get("actor"), "Flag.actor"),
            objects=tuple(_uri(item, "Flag.object") for item in items),
            content=content,
            to=tuple(t for t in to_list if isinstance(t, str)),
        )

    def serialize(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "@context": AS_CONTEXT,
            "id": self.id,
            "type": self.TYPE,
            "actor": self.actor,
            "object": list(self.objects),
            "content": self.content,
        }
        if self.to:
            out["to"] = list(self.to)
        return out


Inbound = Activity | Flag | Invite


def parse_inbound(data: object) -> Inbound:
    """``parse_activity`` plus ``Flag``, which only this module models, and ``Invite``
    (federation/invites.py)."""
    if isinstance(data, Mapping) and data.get("type") == Flag.TYPE:
        return Flag.parse(data)
    if isinstance(data, Mapping) and data.get("type") == Invite.TYPE:
        return Invite.parse(data)
    return parse_activity(data)


class FlagDesk:
    """Incoming ``Flag``s onto the moderation desk; refusals of suspended actors."""

    def __init__(
        self, urls: Urls, users: UserStore, rooms: RoomService, desk: ModerationDesk
    ) -> None:
        self.urls = urls
        self.users = users
        self.rooms = rooms
        self.desk = desk

    def check_sender(self, actor: Actor) -> None:
        """A suspended remote account is refused on every inbox path (follow, join, …)."""
        sender = self.users.by_actor_uri(actor.id)
        if sender is not None and sender.suspended:
            raise ActorSuspended(f"{actor.id} is suspended on this node")

    def receive(self, flag: Flag, actor: Actor) -> str:
        targets: list[User] = []
        room_uri: str | None = None
        for uri in flag.objects:
            name = self.urls.username_of(uri)
            user = self.users.by_name(name) if name else None
            room_id = self.urls.room_id_of(uri)
            room = self.rooms.find(room_id) if room_id else None
            if user is not None:
                targets.append(user)
            elif room is not None:
                room_uri = uri
                host = self.users.get(room.host_id)
                if host is not None:
                    targets.append(host)
            else:
                log.info("flags: Flag %s names %s, not ours: dropped", flag.id, uri)
                raise ActivityDropped("Flag naming objects that are not ours dropped")
        if not targets:
            raise ActivityDropped("Flag naming nobody dropped")
        comment = plain_text(flag.content, MAX_COMMENT)
        report_id = self.desk.receive_flag(
            host_of(actor.id), flag.id, targets[0], room_uri, comment
        )
        return f"Flag stored as report {report_id}"


class ModerationRelay:
    """The desk's ``ReportRelay``: remote rooms as reports see them, ``Flag`` out, and the
    ``Delete`` of a suspended local actor to its followers' nodes."""

    def __init__(
        self,
        urls: Urls,
        users: UserStore,
        actors: RemoteActorStore,
        remote_rooms: RemoteRoomStore,
        publisher: Publisher,
    ) -> None:
        self.urls = urls
        self.users = users
        self.actors = actors
        self.remote_rooms = remote_rooms
        self.publisher = publisher

    def remote_room(self, uri: str) -> ReportedRoom | None:
        row = self.remote_rooms.room(uri)
        host = self.users.get(row.host_id) if row else None
        if row is None or host is None:
            return None
        speakers = row.document.get("speakers") or []
        return ReportedRoom(
            uri=row.uri,
            host=host,
            title=str(row.document.get("name", "")),
            speakers=tuple(s for s in speakers if isinstance(s, str)),
        )

    def forward(self, target: User, room: ReportedRoom | None, comment: str) -> str | None:
        remote = self.actors.actor_by_user(target.id)
        if remote is None:
            return None
        objects = [remote.actor_uri]
        if room is not None:
            # only objects the target's node owns, or it would drop the Flag
            objects += [s for s in room.speakers if same_host(s, remote.actor_uri)]
            if same_host(room.uri, remote.actor_uri):
                objects.append(room.uri)
        flag = Flag(
            id=self.urls.new_activity_id(),
            actor=self.urls.node_actor,
            objects=tuple(dict.fromkeys(objects)),
            content=comment,
            to=(remote.actor_uri,),
        )
        self.publisher.publish(flag.serialize(), None, [remote.delivery_inbox], public=False)
        return flag.id

    def account_suspended(self, user: User) -> int:
        inboxes = self.actors.remote_follower_inboxes(user.id)
        if not inboxes:
            return 0
        uri = self.urls.actor(user.username)
        delete = Delete(
            id=self.urls.new_activity_id(), actor=uri, object=Reference(uri), to=(PUBLIC,)
        )
        return self.publisher.publish(delete.serialize(), user, inboxes, public=True)
