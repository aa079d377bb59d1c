"""``Ping``: ask someone you follow, or who follows you, into the live room you are in.

A local person gets a ``ping`` notification; a remote one an ActivityPub ``Invite`` of the
room, which their own node turns into a notification (federation implements
``RemoteInvites``; docs/federation.md). Pings are rate-limited per sender
(``pings_per_minute``). In a closed room only the host and moderators may ping, and a
ping also puts the person on the room's invitation list, so the link lets them in.
"""

from __future__ import annotations

from typing import Any, Protocol

from node.accounts import handle
from node.clock import Clock
from node.notifications import Notifications
from node.remote import RemoteRoom
from node.rooms.limits import ActionLimiter
from node.rooms.model import JoinMode, Room, RoomRuleError, RoomStatus
from node.rooms.service import RoomService
from node.store.blocks import BlockStore
from node.store.follows import FollowStore
from node.store.users import User

MAX_CANDIDATES = 200


class RemoteInvites(Protocol):
    def reachable(self, target: User) -> bool:
        """Is an inbox of TARGET known (checked before anything is written)?"""

    def invite(self, sender: User, target: User, room_url: str) -> bool:
        """Queue an ``Invite`` of the room at ROOM_URL from SENDER to TARGET's inbox;
        False when no inbox of TARGET is known."""


class Pings:
    def __init__(
        self,
        rooms: RoomService,
        notifications: Notifications,
        follows: FollowStore,
        blocks: BlockStore,
        clock: Clock,
        *,
        per_minute: int,
        remote: RemoteInvites | None = None,
    ) -> None:
        self.rooms = rooms
        self.notifications = notifications
        self.follows = follows
        self.blocks = blocks
        self.remote = remote
        self.limiter = ActionLimiter(clock, per_minute / 60.0, per_minute)

    def allow(self, key: object) -> bool:
        """One ping by KEY (a sender; federation keys remote senders the same way)."""
        return self.limiter.allow(key)

    def related(self, a: int, b: int) -> bool:
        """Does A follow B or B follow A (accepted), with no block between them?"""
        if self.blocks.between(a, b):
            return False
        return "accepted" in (self.follows.state(a, b), self.follows.state(b, a))

    def candidates(self, user: User) -> list[dict[str, Any]]:
        """People USER may ping: followed or following, minus blocks (the picker)."""
        ids: dict[int, None] = {}
        for direction in ("following", "followers"):
            for uid, _ in self.follows.page(user.id, direction, "accepted", MAX_CANDIDATES, 0):
                ids.setdefault(uid, None)
        users = self.rooms.users.many(list(ids))
        out = []
        for uid in ids:
            person = users.get(uid)
            if person is None or self.blocks.between(user.id, uid):
                continue
            out.append(
                {"user": handle(person), "display_name": person.display_name or person.username}
            )
        return out[:MAX_CANDIDATES]

    def ping(self, room_id: str, sender: User, target_name: object) -> User:
        """Checks, then the notification or the ``Invite``; the pinged user."""
        name = _name(target_name)
        room = self.rooms.get(room_id)
        if room.status is not RoomStatus.LIVE:
            raise RoomRuleError("conflict", f"the room is {room.status.value}, not live")
        if sender.id not in room.participants:
            raise RoomRuleError("forbidden", "join the room before pinging people into it")
        target = self._target(sender, name)
        if target.id in room.bans:
            raise RoomRuleError("forbidden", "that user was removed from this room")
        if room.join_mode is JoinMode.CLOSED:
            if not self._moderates(room, sender.id):
                raise RoomRuleError(
                    "forbidden", "only the host and moderators can ping people into a closed room"
                )
            if target.id not in room.invites:
                self.rooms.act(room.id, sender, "invite", handle(target))
        self._send(sender, target, f"{self.rooms.settings.base_url}/rooms/{room.id}", room.title)
        return target

    def ping_remote(self, room: RemoteRoom, sender: User, target_name: object) -> User:
        """A ping into a room on another node that SENDER joined through this one."""
        name = _name(target_name)
        if not room.is_member(sender):
            raise RoomRuleError("forbidden", "join the room before pinging people into it")
        if room.join_mode == JoinMode.CLOSED.value:
            raise RoomRuleError(
                "forbidden", "only the room's own node can ping people into a closed room"
            )
        target = self._target(sender, name)
        self._send(sender, target, room.uri, room.title)
        return target

    def _target(self, sender: User, name: str) -> User:
        if not self.allow(("ping", sender.id)):
            raise RoomRuleError("rate_limited", "too many pings; slow down", retry_after=60.0)
        target = self.rooms.find_user(name)
        if target is None:
            raise RoomRuleError("not_found", f"no user named {name!r}")
        if target.id == sender.id:
            raise RoomRuleError("invalid", "you are already in the room")
        if not self.related(sender.id, target.id):
            raise RoomRuleError("forbidden", "you can ping people you follow or who follow you")
        if not target.is_local and (self.remote is None or not self.remote.reachable(target)):
            raise RoomRuleError("unreachable", "cannot reach that user's node")
        return target

    def _send(self, sender: User, target: User, url: str, title: str) -> None:
        if target.is_local:
            self.notifications.notify(
                target.id,
                "ping",
                room_url=url,
                title=title,
                actor=handle(sender),
                key=f"ping:{url}:{sender.id}",
            )
        elif self.remote is None or not self.remote.invite(sender, target, url):
            raise RoomRuleError("unreachable", "cannot reach that user's node")

    @staticmethod
    def _moderates(room: Room, user_id: int) -> bool:
        present = room.participants.get(user_id)
        return user_id in room.moderator_ids() or bool(present and present.is_moderator)


def _name(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 500:
        raise RoomRuleError("invalid", "user must be a handle such as bob or bob@host")
    return raw.strip().lstrip("@")
