"""Pings across nodes: our ``Invite``s out (``node.pings.RemoteInvites``), theirs in.

An incoming ``Invite`` (its signature and actor already checked by the inbox) becomes a
``ping`` notification only when: the target is a user of this node; the room is a Salon
room, live or scheduled, read from its own id (a signed GET: the title shown is the
room's, never the sender's word); the sender and the target follow one another in at
least one direction by *our* records, with no block between them; and the sender is under
the ping rate limit. Anything else is dropped with 202 and nothing kept, so a stranger
learns nothing about who is here or whom they follow.
"""

from __future__ import annotations

import logging

from federation.as2 import ActivityError, same_host
from federation.events import Event
from federation.fetch import FetchError, SafeClient
from federation.flags import ActivityDropped
from federation.identity import Signers, Urls
from federation.invites import Invite
from federation.outbox import Publisher, RoomDocuments
from federation.store.actors import RemoteActorStore
from node.accounts import handle
from node.notifications import Notifications
from node.pings import Pings
from node.rooms.model import RoomStatus
from node.rooms.service import RoomService
from node.store.users import User, UserStore

log = logging.getLogger(__name__)


class InviteSender:
    """Our user pings a remote person: an ``Invite`` to that person's inbox."""

    def __init__(
        self,
        urls: Urls,
        actors: RemoteActorStore,
        publisher: Publisher,
        rooms: RoomService,
        documents: RoomDocuments,
    ) -> None:
        self.urls = urls
        self.actors = actors
        self.publisher = publisher
        self.rooms = rooms
        self.documents = documents

    def _event(self, room_url: str) -> Event | None:
        """Our own room as its ``Event`` (embedded: a closed one is not served to others)."""
        room_id = self.urls.room_id_of(room_url)
        room = self.rooms.active(room_id) if room_id else None
        host = self.documents.users.get(room.host_id) if room else None
        return self.documents.event(room, host) if room and host else None

    def reachable(self, target: User) -> bool:
        return self.actors.actor_by_user(target.id) is not None

    def invite(self, sender: User, target: User, room_url: str) -> bool:
        remote = self.actors.actor_by_user(target.id)
        if remote is None:
            return False
        invite = Invite(
            id=self.urls.new_activity_id(),
            actor=self.urls.actor(sender.username),
            object=room_url,
            target=remote.actor_uri,
            to=(remote.actor_uri,),
            event=self._event(room_url),
        )
        self.publisher.publish(invite.serialize(), sender, [remote.inbox], public=False)
        return True


class PingDesk:
    """Incoming ``Invite``s to our users."""

    def __init__(
        self,
        urls: Urls,
        users: UserStore,
        actors: RemoteActorStore,
        client: SafeClient,
        signers: Signers,
        pings: Pings,
        notifications: Notifications,
    ) -> None:
        self.urls = urls
        self.users = users
        self.actors = actors
        self.client = client
        self.signers = signers
        self.pings = pings
        self.notifications = notifications

    async def receive(self, invite: Invite) -> str:
        username = self.urls.username_of(invite.target)
        target = self.users.by_name(username) if username else None
        if target is None:
            raise ActivityDropped("Invite of someone who is not on this node dropped")
        sender_row = self.actors.actor_by_uri(invite.actor)
        sender = self.users.get(sender_row.user_id) if sender_row else None
        if sender is None or not self.pings.related(sender.id, target.id):
            raise ActivityDropped("Invite from a stranger dropped")
        if not self.pings.allow(("ping", sender.id)):
            raise ActivityDropped("too many pings from this actor; dropped")
        room_url, title = await self._room(invite)
        self.notifications.notify(
            target.id,
            "ping",
            room_url=room_url,
            title=title,
            actor=handle(sender),
            key=f"ping:{room_url}:{invite.actor}",
        )
        return f"ping for {target.username}"

    async def _room(self, invite: Invite) -> tuple[str, str]:
        """The room's URL and title: ours from memory; an embedded one from the sender's
        own node as sent (its signature covers it); others as fetched from their id."""
        uri = invite.object
        room_id = self.urls.room_id_of(uri)
        if room_id is not None:
            room = self.pings.rooms.live(room_id)
            if room is None:
                raise ActivityDropped("Invite into a room of this node that is not live dropped")
            return self.urls.room(room.id), room.title
        if uri.startswith(self.urls.base + "/"):
            raise ActivityDropped("Invite of an object of this node that is not a room dropped")
        event = invite.event
        if event is None or not same_host(event.id, invite.actor):
            try:
                document = await self.client.get_json(uri, self.signers.node)
                event = Event.parse(document)
            except (FetchError, ActivityError) as exc:
                raise ActivityError(f"Invite.object is not a room: {exc}") from None
            if event.id != uri:
                raise ActivityError(f"object fetched from {uri} has another id")
        if event.status not in (RoomStatus.LIVE, RoomStatus.SCHEDULED):
            raise ActivityDropped("Invite into a room that is not live dropped")
        return event.id, event.name
