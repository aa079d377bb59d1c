"""Outgoing activities: follows and their answers, and room announcements.

Both are fed by seams of the node: ``AccountService.follow_hooks`` (someone followed,
unfollowed, approved or rejected) and ``RoomService.observers`` (a room changed). Each
outgoing activity is stored once with one delivery row per destination inbox, then the
delivery worker is woken. Room ``Update``s are rate-limited per room: changes inside the
interval are folded into one trailing ``Update`` that ``flush`` sends when it is due.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from federation.activities import (
    PUBLIC,
    Accept,
    Create,
    Event,
    Follow,
    Reject,
    Undo,
    Update,
    host_of,
)
from federation.context import Context
from node.rooms.model import JoinMode, Room, RoomEvent, RoomStatus
from node.store.users import User

log = logging.getLogger(__name__)

#: Room changes announced at once; every other change waits for the rate limit.
_LIFECYCLE = {"room_created": "Create", "room_started": "Update", "room_ended": "Update"}


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class Publisher:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def publish(
        self, document: dict[str, Any], signer: User | None, inboxes: list[str], public: bool
    ) -> int:
        """Queue DOCUMENT for each inbox (deduplicated, never our own host); rows added."""
        own = self.ctx.urls.host
        targets = []
        for inbox in dict.fromkeys(inboxes):
            host = host_of(inbox)
            if host != own:
                targets.append((inbox, host))
        if not targets:
            return 0
        added = self.ctx.deliveries.enqueue(
            document["id"],
            document,
            signer.id if signer else None,
            targets,
            self.ctx.clock.now(),
            public=public,
        )
        log.info("outbox: %s %s queued for %d inbox(es)", document["type"], document["id"], added)
        self.ctx.wake.set()
        return added


class FollowBridge:
    """Turns local follow decisions that involve a remote user into activities."""

    def __init__(self, ctx: Context, publisher: Publisher) -> None:
        self.ctx = ctx
        self.publisher = publisher

    def __call__(self, follower: User, followee: User, what: str) -> None:
        if what in ("follow", "unfollow") and follower.is_local and not followee.is_local:
            self._to_followee(follower, followee, what)
        elif what in ("accept", "reject") and followee.is_local and not follower.is_local:
            self.answer(follower, followee, accepted=what == "accept")

    def _to_followee(self, follower: User, followee: User, what: str) -> None:
        remote = self.ctx.store.actor_by_user(followee.id)
        if remote is None:
            log.warning("outbox: no actor document for %s", followee.username)
            return
        me = self.ctx.actor_uri(follower)
        if what == "follow":
            follow = Follow(
                id=self.ctx.urls.new_activity_id(),
                actor=me,
                object=remote.actor_uri,
                to=(remote.actor_uri,),
            )
            self.ctx.store.put_follow_activity(follower.id, followee.id, follow.id)
            self.publisher.publish(follow.serialize(), follower, [remote.inbox], public=False)
            return
        follow_id = self.ctx.store.follow_activity(follower.id, followee.id)
        self.ctx.store.forget_follow_activity(follower.id, followee.id)
        undo = Undo(
            id=self.ctx.urls.new_activity_id(),
            actor=me,
            object=Follow(
                id=follow_id or f"{me}#follows/{followee.id}", actor=me, object=remote.actor_uri
            ),
            to=(remote.actor_uri,),
        )
        self.publisher.publish(undo.serialize(), follower, [remote.inbox], public=False)

    def answer(self, follower: User, followee: User, *, accepted: bool) -> None:
        """Accept or Reject a remote follower's Follow; the answer has its own id here."""
        remote = self.ctx.store.actor_by_user(follower.id)
        if remote is None:
            return
        me = self.ctx.urls.actor(followee.username)
        follow_id = self.ctx.store.follow_activity(follower.id, followee.id)
        follow = Follow(
            id=follow_id or f"{remote.actor_uri}#follows/{followee.username}",
            actor=remote.actor_uri,
            object=me,
        )
        model = Accept if accepted else Reject
        answer = model(
            id=self.ctx.urls.new_activity_id(), actor=me, object=follow, to=(remote.actor_uri,)
        )
        if not accepted:
            self.ctx.store.forget_follow_activity(follower.id, followee.id)
        self.publisher.publish(answer.serialize(), followee, [remote.inbox], public=False)


class RoomAnnouncer:
    """A ``RoomObserver``: Create/Update of the room's Event to the host's remote followers."""

    def __init__(self, ctx: Context, publisher: Publisher) -> None:
        self.ctx = ctx
        self.publisher = publisher
        self._last_sent: dict[str, float] = {}
        self._dirty: dict[str, Room] = {}
        self._created: set[str] = set()

    def room_event(self, room: Room, event: RoomEvent) -> None:
        if room.join_mode is JoinMode.CLOSED:
            return  # invite-only rooms are not announced
        kind = _LIFECYCLE.get(event.kind)
        if kind is None:
            self._dirty[room.id] = room
            return
        self._dirty.pop(room.id, None)
        self.announce(room, kind)
        if room.status is RoomStatus.ENDED:
            self._last_sent.pop(room.id, None)
            self._created.discard(room.id)

    def flush(self) -> int:
        """Send the trailing Update of every room whose rate-limit interval has passed."""
        now = self.ctx.clock.monotonic()
        interval = self.ctx.settings.announce_interval_seconds
        sent = 0
        for room_id, room in list(self._dirty.items()):
            if now - self._last_sent.get(room_id, float("-inf")) < interval:
                continue
            del self._dirty[room_id]
            if room.status is not RoomStatus.ENDED:
                self.announce(room, "Update")
                sent += 1
        return sent

    def announce(self, room: Room, kind: str) -> None:
        host = self.ctx.users.get(room.host_id)
        if host is None or not host.is_local:
            return
        self._last_sent[room.id] = self.ctx.clock.monotonic()
        inboxes = self.ctx.store.remote_follower_inboxes(host.id)
        if not inboxes:
            return
        event = room_event_object(self.ctx, room, host)
        model = Create if kind == "Create" else Update
        activity = model(
            id=self.ctx.urls.new_activity_id(),
            actor=event.attributed_to,
            object=event,
            to=event.to,
            cc=event.cc,
        )
        public = room.join_mode is JoinMode.OPEN
        self.publisher.publish(activity.serialize(), host, inboxes, public=public)


def room_event_object(ctx: Context, room: Room, host: User) -> Event:
    """The room as an AS2 ``Event`` with Salon terms (docs/federation.md)."""
    host_uri = ctx.urls.actor(host.username)
    followers = f"{host_uri}/followers"
    open_room = room.join_mode is JoinMode.OPEN
    stage = [p.user_id for p in room.speakers()]
    users = ctx.users.many(stage)
    speakers = tuple(ctx.actor_uri(users[uid]) for uid in stage if uid in users)
    return Event(
        id=ctx.urls.room(room.id),
        name=room.title,
        attributed_to=host_uri,
        summary=room.description or None,
        url=ctx.urls.room(room.id),
        start_time=_dt(room.started_at or room.start_time),
        end_time=_dt(room.ended_at),
        updated=_dt(ctx.clock.now()),
        status=room.status,
        join_mode=room.join_mode,
        speakers=tuple(s for s in speakers if s),
        listener_count=len(room.listeners()),
        relay=f"{ctx.urls.room(room.id)}/trunk",
        to=(PUBLIC,) if open_room else (followers,),
        cc=(followers,) if open_room else (),
    )
