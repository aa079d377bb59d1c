"""Notifications that this node's own rooms cause: a ``RoomObserver``.

- a room goes live (created live, or a scheduled one started): the host's local followers
  hear ``room_started`` (not for closed rooms, which are invite-only and never announced);
- ``invited_to_speak`` and ``made_moderator`` go to the local user they name.

Remote followers hear of the room through their own node (federation announces it); a
remote participant's node turns the room's events into its user's notifications.
"""

from __future__ import annotations

import logging
import sqlite3

from node.accounts import handle
from node.notifications import Notifications
from node.rooms.model import JoinMode, Room, RoomEvent, RoomStatus
from node.store.blocks import BlockStore
from node.store.follows import FollowStore
from node.store.users import UserStore

log = logging.getLogger(__name__)


class RoomNotices:
    def __init__(
        self,
        notifications: Notifications,
        users: UserStore,
        follows: FollowStore,
        blocks: BlockStore,
        base_url: str,
    ) -> None:
        self.notifications = notifications
        self.users = users
        self.follows = follows
        self.blocks = blocks
        self.base_url = base_url

    def room_event(self, room: Room, event: RoomEvent) -> None:
        try:
            if (event.kind == "room_created" and room.status is RoomStatus.LIVE) or (
                event.kind == "room_started"
            ):
                self._started(room)
            elif event.kind == "invited_to_speak":
                self._to_target(room, event, "invited_to_speak")
            elif event.kind == "role_changed" and event.data.get("role") == "moderator":
                self._to_target(room, event, "made_moderator")
        except (sqlite3.Error, ValueError) as exc:
            # a notification must never undo or block the room change that caused it
            log.warning("notices [%s]: %s: %s", room.id, event.kind, exc)

    def _url(self, room: Room) -> str:
        return f"{self.base_url}/rooms/{room.id}"

    def _started(self, room: Room) -> None:
        if room.join_mode is not JoinMode.CLOSED:
            self.remote_started(room.host_id, self._url(room), room.title)

    def remote_started(self, host_id: int, url: str, title: str) -> None:
        """The room at URL, hosted by HOST_ID (here or on another node), went live: the
        host's followers on this node hear of it once per room."""
        host = self.users.get(host_id)
        if host is None:
            return
        followers = self.follows.local_follower_ids(host.id)
        blocked = set(self.blocks.blocker_ids(host.id)) | set(self.blocks.blocked_ids(host.id))
        self.notifications.notify_many(
            [uid for uid in followers if uid not in blocked],
            "room_started",
            room_url=url,
            title=title,
            actor=handle(host),
            key=f"room_started:{url}",
        )

    def _to_target(self, room: Room, event: RoomEvent, kind: str) -> None:
        target = event.data.get("user")
        if not isinstance(target, int) or (target == room.host_id and kind == "made_moderator"):
            return
        by = event.data.get("by")
        actor = self.users.get(by) if isinstance(by, int) else None
        self.notifications.notify(
            target,
            kind,
            room_url=self._url(room),
            title=room.title,
            actor=handle(actor) if actor else None,
            key=f"{kind}:{room.id}:{room.seq}",
        )
