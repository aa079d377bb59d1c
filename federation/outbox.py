"""Outgoing activities: follows and their answers, and room announcements.

Both are fed by seams of the node: ``AccountService.follow_hooks`` (someone followed,
unfollowed, approved or rejected) and ``RoomService.observers`` (a room changed). Each
outgoing activity is stored once with one delivery row per destination inbox, then the
delivery worker is woken. Room ``Update``s are rate-limited per room: changes inside the
interval are folded into one trailing ``Update`` that ``flush`` sends when it is due.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

from federation.activities import Accept, Create, Follow, Reject, Undo, Update
from federation.actors import ActorDirectory
from federation.as2 import PUBLIC, host_of
from federation.events import Audio, Event
from federation.identity import Urls
from federation.store.actors import FollowActivityStore, RemoteActorStore
from federation.store.deliveries import DeliveryStore
from node.clock import Clock
from node.rooms.model import JoinMode, Room, RoomEvent, RoomStatus
from node.store.replays import ReplayStore
from node.store.users import User, UserStore

log = logging.getLogger(__name__)

#: Room changes announced at once; every other change waits for the rate limit.
_LIFECYCLE = {"room_created": "Create", "room_started": "Update", "room_ended": "Update"}


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class RsvpInboxes(Protocol):
    """Inboxes of remote actors who RSVPed to a room (federation/rsvp.py)."""

    def inboxes(self, room_id: str) -> list[str]: ...


class Publisher:
    """Stores an outgoing activity with one delivery row per inbox and wakes the worker."""

    def __init__(self, urls: Urls, deliveries: DeliveryStore, clock: Clock) -> None:
        self.urls = urls
        self.deliveries = deliveries
        self.clock = clock
        #: Set whenever rows are queued, so the worker sends them without waiting for a poll.
        self.wake = asyncio.Event()

    def publish(
        self, document: dict[str, Any], signer: User | None, inboxes: list[str], public: bool
    ) -> int:
        """Queue DOCUMENT for each inbox (deduplicated, never our own host); rows added."""
        own = self.urls.host
        targets = []
        for inbox in dict.fromkeys(inboxes):
            host = host_of(inbox)
            if host != own:
                targets.append((inbox, host))
        if not targets:
            return 0
        added = self.deliveries.enqueue(
            document["id"],
            document,
            signer.id if signer else None,
            targets,
            self.clock.now(),
            public=public,
        )
        log.info("outbox: %s %s queued for %d inbox(es)", document["type"], document["id"], added)
        self.wake.set()
        return added


class FollowBridge:
    """Turns local follow decisions that involve a remote user into activities."""

    def __init__(
        self,
        urls: Urls,
        actors: RemoteActorStore,
        follow_activities: FollowActivityStore,
        directory: ActorDirectory,
        publisher: Publisher,
    ) -> None:
        self.urls = urls
        self.actors = actors
        self.follow_activities = follow_activities
        self.directory = directory
        self.publisher = publisher

    def __call__(self, follower: User, followee: User, what: str) -> None:
        if what in ("follow", "unfollow") and follower.is_local and not followee.is_local:
            self._to_followee(follower, followee, what)
        elif what in ("accept", "reject") and followee.is_local and not follower.is_local:
            self.answer(follower, followee, accepted=what == "accept")

    def _to_followee(self, follower: User, followee: User, what: str) -> None:
        remote = self.actors.actor_by_user(followee.id)
        if remote is None:
            log.warning("outbox: no actor document for %s", followee.username)
            return
        me = self.directory.actor_uri(follower)
        if what == "follow":
            follow = Follow(
                id=self.urls.new_activity_id(),
                actor=me,
                object=remote.actor_uri,
                to=(remote.actor_uri,),
            )
            self.follow_activities.put_follow_activity(follower.id, followee.id, follow.id)
            self.publisher.publish(follow.serialize(), follower, [remote.inbox], public=False)
            return
        follow_id = self.follow_activities.follow_activity(follower.id, followee.id)
        self.follow_activities.forget_follow_activity(follower.id, followee.id)
        undo = Undo(
            id=self.urls.new_activity_id(),
            actor=me,
            object=Follow(
                id=follow_id or f"{me}#follows/{followee.id}", actor=me, object=remote.actor_uri
            ),
            to=(remote.actor_uri,),
        )
        self.publisher.publish(undo.serialize(), follower, [remote.inbox], public=False)

    def answer(self, follower: User, followee: User, *, accepted: bool) -> None:
        """Accept or Reject a remote follower's Follow; the answer has its own id here."""
        remote = self.actors.actor_by_user(follower.id)
        if remote is None:
            return
        me = self.urls.actor(followee.username)
        follow_id = self.follow_activities.follow_activity(follower.id, followee.id)
        follow = Follow(
            id=follow_id or f"{remote.actor_uri}#follows/{followee.username}",
            actor=remote.actor_uri,
            object=me,
        )
        model = Accept if accepted else Reject
        answer = model(
            id=self.urls.new_activity_id(), actor=me, object=follow, to=(remote.actor_uri,)
        )
        if not accepted:
            self.follow_activities.forget_follow_activity(follower.id, followee.id)
        self.publisher.publish(answer.serialize(), followee, [remote.inbox], public=False)


class RoomAnnouncer:
    """A ``RoomObserver``: Create/Update of the room's Event to the host's remote followers."""

    def __init__(
        self,
        users: UserStore,
        actors: RemoteActorStore,
        documents: RoomDocuments,
        publisher: Publisher,
        clock: Clock,
        *,
        interval: float,
        rsvps: RsvpInboxes | None = None,
    ) -> None:
        self.rsvps = rsvps  # remote actors who asked to be notified hear it too
        self.users = users
        self.actors = actors
        self.documents = documents
        self.publisher = publisher
        self.clock = clock
        self.interval = interval
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
        now = self.clock.monotonic()
        interval = self.interval
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
        host = self.users.get(room.host_id)
        if host is None or not host.is_local:
            return
        self._last_sent[room.id] = self.clock.monotonic()
        inboxes = self.actors.remote_follower_inboxes(host.id)
        if self.rsvps is not None:
            inboxes = list(dict.fromkeys([*inboxes, *self.rsvps.inboxes(room.id)]))
        if not inboxes:
            return
        event = self.documents.event(room, host)
        model = Create if kind == "Create" else Update
        activity = model(
            id=self.documents.urls.new_activity_id(),
            actor=event.attributed_to,
            object=event,
            to=event.to,
            cc=event.cc,
        )
        public = room.join_mode is JoinMode.OPEN
        self.publisher.publish(activity.serialize(), host, inboxes, public=public)

    def replay_changed(self, room: Room) -> None:
        """A ``ReplayObserver``: the ended room's Event gains or loses its ``Audio``."""
        if room.join_mode is not JoinMode.CLOSED and room.status is RoomStatus.ENDED:
            self.announce(room, "Update")


class RoomDocuments:
    """Our rooms as AS2 ``Event``s with Salon terms (docs/federation.md §5)."""

    def __init__(
        self,
        urls: Urls,
        users: UserStore,
        directory: ActorDirectory,
        clock: Clock,
        replays: ReplayStore | None = None,
    ) -> None:
        self.urls = urls
        self.users = users
        self.directory = directory
        self.clock = clock
        self.replays = replays

    def attachments(self, room: Room) -> tuple[Audio, ...]:
        """An ended room's ready replay, as the ``Audio`` other servers can play."""
        if self.replays is None or room.status is not RoomStatus.ENDED:
            return ()
        replay = self.replays.get(room.id)
        if replay is None or not replay.ready:
            return ()
        url = f"{self.urls.room(room.id)}/replay.ogg"
        return (Audio(url=url, duration=round(replay.duration, 3), name=room.title),)

    def event(self, room: Room, host: User) -> Event:
        host_uri = self.urls.actor(host.username)
        followers = f"{host_uri}/followers"
        open_room = room.join_mode is JoinMode.OPEN
        stage = [p.user_id for p in room.speakers()]
        users = self.users.many(stage)
        speakers = tuple(self.directory.actor_uri(users[uid]) for uid in stage if uid in users)
        return Event(
            id=self.urls.room(room.id),
            name=room.title,
            attributed_to=host_uri,
            summary=room.description or None,
            url=self.urls.room(room.id),
            start_time=_dt(room.started_at or room.start_time),
            end_time=_dt(room.ended_at),
            updated=_dt(self.clock.now()),
            status=room.status,
            join_mode=room.join_mode,
            speakers=tuple(s for s in speakers if s),
            listener_count=len(room.listeners()),
            relay=f"{self.urls.room(room.id)}/trunk",
            recording=room.record,
            attachments=self.attachments(room),
            to=(PUBLIC,) if open_room else (followers,),
            cc=(followers,) if open_room else (),
        )
