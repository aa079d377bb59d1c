"""What each verified incoming activity does to this node's state.

Every handler gets an activity whose actor is proven (the inbox checked the signature);
handlers still check that the activity talks about things that actor may speak for:
its own follows, rooms attributed to it and living on its host, its own document.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from federation.activities import (
    Accept,
    Actor,
    Block,
    Create,
    Delete,
    Follow,
    Join,
    Leave,
    Reject,
    Undo,
    Update,
)
from federation.actors import ActorDirectory
from federation.as2 import ActivityError, Reference, host_of, same_host
from federation.blocks import BlockHandlers
from federation.events import Event
from federation.fetch import SafeClient
from federation.flags import Flag, FlagDesk, Inbound
from federation.identity import Signers, Urls
from federation.invites import Invite
from federation.joins import JoinDesk
from federation.outbox import FollowBridge
from federation.pings import PingDesk
from federation.rfc3339 import TimestampError, parse_rfc3339
from federation.rsvp import RsvpOrigin, RsvpRelay
from federation.store.actors import FollowActivityStore, RemoteActorStore
from federation.store.policies import DomainPolicies
from federation.store.rooms import RemoteRoomStore
from node.clock import Clock
from node.room_notices import RoomNotices
from node.rooms.model import JoinMode, RoomStatus
from node.rooms.service import RoomService
from node.store.blocks import BlockStore
from node.store.follows import FollowStore
from node.store.users import UserStore

log = logging.getLogger(__name__)


class Handlers:
    """Dispatches each verified activity to the handler of its kind."""

    def __init__(
        self,
        follows: FollowHandlers,
        actors: ActorHandlers,
        rooms: RoomAnnouncements,
        joins: JoinDesk,
        directory: ActorDirectory,
        users: UserStore,
        flags: FlagDesk,
        blocks: BlockHandlers,
        rsvps: RsvpOrigin | None = None,
        rsvp_answers: RsvpRelay | None = None,
        pings: PingDesk | None = None,
    ) -> None:
        self.pings = pings
        self.rsvps = rsvps  # Follow of one of our rooms (federation/rsvp.py)
        self.rsvp_answers = rsvp_answers
        self.flags = flags
        self.follows = follows
        self.actors = actors
        self.rooms = rooms
        self.joins = joins
        self.directory = directory
        self.users = users
        self.blocks = blocks

    async def handle(self, activity: Inbound, actor: Actor, data: dict[str, Any]) -> str:
        self.flags.check_sender(actor)
        if isinstance(activity, Flag):
            return self.flags.receive(activity, actor)
        if isinstance(activity, Invite):
            if self.pings is None:
                return "Invite ignored"
            return await self.pings.receive(activity)
        if isinstance(activity, Follow):
            if self.rsvps is not None and self.rsvps.follows_room(activity):
                return self.rsvps.follow(activity, actor)
            return await self.follows.follow(activity, actor)
        if isinstance(activity, Accept | Reject):
            if self.rsvp_answers is not None and self.rsvp_answers.answers(activity):
                return self.rsvp_answers.answer(activity, actor)
            return self.follows.answer(activity, actor)
        if isinstance(activity, Block):
            return self.blocks.block(activity, actor)
        if isinstance(activity, Undo):
            if self.blocks.undoes_block(activity):
                return self.blocks.undo(activity, actor)
            if self.rsvps is not None and self.rsvps.undoes(activity):
                return self.rsvps.undo(activity, actor)
            return self.follows.undo(activity, actor)
        if isinstance(activity, Create | Update):
            if isinstance(activity.object, Actor):
                return self.actors.update(activity.object, actor, data.get("object"))
            return await self.rooms.announced(activity, actor)
        if isinstance(activity, Delete):
            if activity.object.id == actor.id:
                return self.actors.delete(actor)
            return self.rooms.delete(activity.object.id, actor)
        if isinstance(activity, Join | Leave):
            document = self.directory.document(actor.id) or actor.serialize()
            user = self.users.get(self.directory.remember(actor, document))
            if user is None:
                raise ActivityError(f"cannot store the actor {actor.id}")
            if isinstance(activity, Join):
                return await self.joins.join(activity, data, user)
            return self.joins.leave(activity, user)
        return f"{type(activity).__name__} ignored"


class FollowHandlers:
    """Follow, Accept/Reject of our follows, Undo of follows."""

    def __init__(
        self,
        urls: Urls,
        users: UserStore,
        follows: FollowStore,
        actors: RemoteActorStore,
        follow_activities: FollowActivityStore,
        policies: DomainPolicies,
        directory: ActorDirectory,
        bridge: FollowBridge,
        clock: Clock,
        blocks: BlockStore,
    ) -> None:
        self.urls = urls
        self.users = users
        self.follows = follows
        self.blocks = blocks
        self.actors = actors
        self.follow_activities = follow_activities
        self.policies = policies
        self.directory = directory
        self.bridge = bridge
        self.clock = clock

    async def follow(self, activity: Follow, actor: Actor) -> str:
        username = self.urls.username_of(activity.object)
        followee = self.users.by_name(username) if username else None
        if followee is None:
            raise ActivityError(f"Follow.object is not a user of this node: {activity.object}")
        document = self.directory.document(actor.id) or actor.serialize()
        follower_id = self.directory.remember(actor, document)
        follower = self.users.get(follower_id)
        assert follower is not None
        self.follow_activities.put_follow_activity(follower.id, followee.id, activity.id)
        if self.blocks.between(follower.id, followee.id):
            self.bridge.answer(follower, followee, accepted=False)
            return "follow refused: one of the two has blocked the other"
        current = self.follows.state(follower.id, followee.id)
        if current == "accepted":
            self.bridge.answer(follower, followee, accepted=True)
            return "already following; Accept sent again"
        manual = followee.locked or follower.limited or self.policies.limited(host_of(actor.id))
        state = "pending" if manual else "accepted"
        self.follows.put(follower.id, followee.id, state, self.clock.now())
        if state == "accepted":
            self.bridge.answer(follower, followee, accepted=True)
        return f"follow {state}"

    def answer(self, activity: Accept | Reject, actor: Actor) -> str:
        target = activity.object
        if isinstance(target, Follow):
            if target.object != actor.id:
                raise ActivityError(f"{activity.TYPE}.object is not a Follow of {actor.id}")
            pair = self.follow_activities.follow_by_activity(target.id)
            if pair is None:
                pair = self._pair(target.actor, actor.id)
        elif isinstance(target, Reference):
            pair = self.follow_activities.follow_by_activity(target.id)
        else:
            return f"{activity.TYPE} of {type(target).__name__} ignored"
        if pair is None:
            return f"{activity.TYPE} of an unknown follow ignored"
        follower_id, followee_id = pair
        remote = self.actors.actor_by_user(followee_id)
        if remote is None or remote.actor_uri != actor.id:
            raise ActivityError(f"{actor.id} cannot answer a follow of someone else")
        if self.follows.state(follower_id, followee_id) is None:
            return "follow no longer requested"
        if isinstance(activity, Accept):
            self.follows.put(follower_id, followee_id, "accepted", self.clock.now())
            return "follow accepted"
        self.follows.remove(follower_id, followee_id)
        self.follow_activities.forget_follow_activity(follower_id, followee_id)
        return "follow rejected"

    def _pair(self, follower_uri: str, followee_uri: str) -> tuple[int, int] | None:
        username = self.urls.username_of(follower_uri)
        follower = self.users.by_name(username) if username else None
        followee = self.actors.actor_by_uri(followee_uri)
        if follower is None or followee is None:
            return None
        return follower.id, followee.user_id

    def undo(self, activity: Undo, actor: Actor) -> str:
        target = activity.object
        pair = self.follow_activities.follow_by_activity(target.id)
        if pair is None and isinstance(target, Follow):
            if target.actor != actor.id:
                raise ActivityError("Undo.object.actor must be the Undo's actor")
            username = self.urls.username_of(target.object)
            followee = self.users.by_name(username) if username else None
            remote = self.actors.actor_by_uri(actor.id)
            if followee and remote:
                pair = (remote.user_id, followee.id)
        if pair is None:
            return "Undo of an unknown object ignored"
        follower_id, followee_id = pair
        remote = self.actors.actor_by_user(follower_id)
        if remote is None or remote.actor_uri != actor.id:
            raise ActivityError(f"{actor.id} cannot undo a follow of someone else")
        self.follows.remove(follower_id, followee_id)
        self.follow_activities.forget_follow_activity(follower_id, followee_id)
        return "follow undone"


class ActorHandlers:
    """Update and Delete of a remote actor's own document."""

    def __init__(
        self, actors: RemoteActorStore, directory: ActorDirectory, rooms: RoomService
    ) -> None:
        self.actors = actors
        self.directory = directory
        self.rooms = rooms

    def update(self, updated: Actor, actor: Actor, raw: object) -> str:
        if updated.id != actor.id:
            raise ActivityError("an actor may only update its own document")
        if self.actors.actor_by_uri(actor.id) is None:
            self.directory.forget(actor.id)
            return "update of an unknown actor ignored"
        document = raw if isinstance(raw, dict) else updated.serialize()
        self.directory.remember(updated, document)
        return "actor updated"

    def delete(self, actor: Actor) -> str:
        """The actor deleted itself: its seats in our live rooms go first (events tell
        everyone), then its users row with everything hanging off it."""
        self.directory.forget(actor.id)
        stored = self.actors.actor_by_uri(actor.id)
        if stored is not None:
            self.rooms.forget_user(stored.user_id)
        removed = self.actors.delete_actor(actor.id)
        return "actor deleted" if removed else "delete of an unknown actor ignored"


class RoomAnnouncements:
    """Create/Update/Delete of rooms hosted by remote people our users follow."""

    def __init__(
        self,
        actors: RemoteActorStore,
        remote_rooms: RemoteRoomStore,
        client: SafeClient,
        signers: Signers,
        clock: Clock,
        rsvps: RsvpRelay | None = None,
        notices: RoomNotices | None = None,
    ) -> None:
        """NOTICES tells the host's local followers when one of its rooms goes live; RSVPS
        makes rooms our users asked to be notified about wanted too."""
        self.rsvps = rsvps
        self.notices = notices
        self.actors = actors
        self.remote_rooms = remote_rooms
        self.client = client
        self.signers = signers
        self.clock = clock

    async def announced(self, activity: Create | Update, actor: Actor) -> str:
        event = activity.object
        if isinstance(event, Reference) or (
            isinstance(event, Event) and not same_host(event.id, actor.id)
        ):
            event = await self._refetch_event(event.id)
        if not isinstance(event, Event):
            return f"{activity.TYPE} of a non-room object ignored"
        if event.attributed_to != actor.id or not same_host(event.id, actor.id):
            raise ActivityError("a room must be attributed to the announcing actor, on its host")
        if not event.is_salon_room:
            return "non-Salon Event ignored"
        host = self.actors.actor_by_uri(actor.id)
        wanted = self.rsvps is not None and self.rsvps.wanted(event.id)
        if host is None or not (wanted or self.actors.followed_locally(host.user_id)):
            return "announcement from an actor nobody here follows ignored"
        stored = self.remote_rooms.room(event.id)
        if stored is not None and event.updated is not None:
            before = _updated(stored.document)
            if before is not None and before > event.updated:  # instants, not text
                return "stale room announcement ignored"
        assert event.status is not None
        self.remote_rooms.put_room(
            event.id, host.user_id, event.status, event.serialize(), self.clock.now()
        )
        went_live = event.status is RoomStatus.LIVE and (
            stored is None or stored.status != RoomStatus.LIVE.value
        )
        if went_live and self.notices is not None and event.join_mode is not JoinMode.CLOSED:
            self.notices.remote_started(host.user_id, event.id, event.name)
        if self.rsvps is not None:
            self.rsvps.stored(event.id, event.status.value)
        return f"room {event.status}"

    async def _refetch_event(self, uri: str) -> Event | Reference:
        """An object not on its actor's host is trusted only as fetched from its own id."""
        document = await self.client.get_json(uri, self.signers.node)
        if document.get("type") != "Event":
            return Reference(uri)
        event = Event.parse(document)
        if event.id != uri:
            raise ActivityError(f"object fetched from {uri} has another id")
        return event

    def delete(self, uri: str, actor: Actor) -> str:
        room = self.remote_rooms.room(uri)
        if room is None:
            return "Delete of an unknown object ignored"
        remote = self.actors.actor_by_user(room.host_id)
        if remote is None or remote.actor_uri != actor.id:
            raise ActivityError("only a room's host may delete it")
        self.remote_rooms.delete_room(uri)
        return "room deleted"


def _updated(document: dict[str, Any]) -> datetime | None:
    """A stored room version's ``updated`` (written by ``Event.serialize``), as a time."""
    value = document.get("updated")
    if not isinstance(value, str):
        return None
    try:
        return parse_rfc3339(value)
    except TimestampError:
        return None
