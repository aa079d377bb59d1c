"""RSVPs across nodes: ``Follow`` of a room's ``Event`` (docs/federation.md §RSVP).

Relay side (``RemoteRsvpClient``, node's ``RemoteRsvps``): our bob asks to be notified
about ``https://A/rooms/R``. We learn the room (from its host's announcements, or by a
signed GET of the Event), then POST ``Follow{actor: bob, object: R}`` signed with bob's key
to the host's inbox and read the answer at once, as a ``Join`` does: 202 recorded, 403
refused (the reason in ``error``). Cancelling queues ``Undo{Follow}``.

Origin side (``RsvpOrigin``): a ``Follow`` whose object is one of our rooms is an RSVP,
decided by the node's ``RsvpService`` (the room exists and is scheduled or live, the actor
may see it and is not blocked, the per-account limit); accepted ones are answered with an
``Accept`` from the host. ``RsvpAudience`` adds the RSVPing actors' inboxes to the room's
``Create``/``Update`` announcements, so they hear when it goes live even without following
the host; ``RsvpRelay`` lets our inbox take those announcements for rooms our users asked
about and tells the reminders when one went live.
"""

from __future__ import annotations

import hashlib
import logging

from federation.activities import Accept, Actor, Follow, Reject, Undo
from federation.actors import ActorDirectory
from federation.as2 import ActivityError, Reference, host_of, same_host
from federation.events import Event
from federation.fetch import FetchError, SafeClient
from federation.identity import Signers, Urls
from federation.joins import JoinRefused
from federation.outbox import Publisher
from federation.rfc3339 import TimestampError, parse_rfc3339
from federation.store.actors import RemoteActorStore
from federation.store.rooms import RemoteRoomStore
from node.calendar import CalendarRoom
from node.clock import Clock
from node.rooms.model import RoomRuleError
from node.rooms.service import RoomService
from node.rsvp import RsvpError, RsvpService
from node.rsvp_reminders import RsvpReminders
from node.store.rsvps import RsvpStore
from node.store.users import User, UserStore

log = logging.getLogger(__name__)

ACTIVE = ("scheduled", "live")
MAX_REASON = 300  # characters of another node's refusal passed on to our user


class RsvpRefused(JoinRefused):
    """The origin refuses the RSVP; answered 403 with the reason, as a refused Join is."""


def _epoch(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_rfc3339(value).timestamp()
    except TimestampError:
        return None


class RemoteRsvpClient:
    """Our users' RSVPs to rooms on other nodes."""

    def __init__(
        self,
        urls: Urls,
        client: SafeClient,
        signers: Signers,
        directory: ActorDirectory,
        actors: RemoteActorStore,
        remote_rooms: RemoteRoomStore,
        users: UserStore,
        publisher: Publisher,
        clock: Clock,
    ) -> None:
        self.urls = urls
        self.client = client
        self.signers = signers
        self.directory = directory
        self.actors = actors
        self.remote_rooms = remote_rooms
        self.users = users
        self.publisher = publisher
        self.clock = clock

    async def ask(self, user: User, room_uri: str) -> str:
        try:
            host_id, status = await self._room(room_uri)
        except ActivityError:
            raise RsvpError("not_found", "no such room") from None
        except FetchError as exc:
            if exc.status in (404, 410):
                raise RsvpError("not_found", "no such room") from None
            raise RsvpError("unreachable", f"cannot fetch the room {room_uri}: {exc}") from None
        if status not in ACTIVE:
            raise RsvpError("conflict", f"the room is {status}")
        host = self.actors.actor_by_user(host_id)
        if host is None:
            raise RsvpError("not_found", "no such room")
        follow = Follow(
            id=self.urls.new_activity_id(),
            actor=self.urls.actor(user.username),
            object=room_uri,
            to=(host.actor_uri,),
        )
        inbox = host.shared_inbox or host.inbox
        try:
            answer_status, answer = await self.client.post_json(
                inbox, follow.serialize(), self.signers.user(user)
            )
        except FetchError as exc:
            raise RsvpError("unreachable", f"the room's node cannot be reached: {exc}") from None
        if answer_status in (403, 404):
            reason = (answer or {}).get("error") or "the room's node refused"
            raise RsvpError("forbidden", str(reason)[:MAX_REASON])
        if answer_status >= 300:
            message = (answer or {}).get("error") or f"HTTP {answer_status}"
            raise RsvpError("unreachable", f"the room's node answered: {str(message)[:MAX_REASON]}")
        log.info("rsvp: %s asked %s to be notified", user.username, room_uri)
        return follow.id

    async def _room(self, room_uri: str) -> tuple[int, str]:
        """The room's host (users row) and status; fetched and stored if new to us."""
        stored = self.remote_rooms.room(room_uri)
        if stored is not None:
            return stored.host_id, stored.status
        document = await self.client.get_json(room_uri, self.signers.node)
        if document.get("type") != "Event":
            raise ActivityError(f"{room_uri} is not a room")
        event = Event.parse(document)
        if event.id != room_uri:
            raise ActivityError(f"the room fetched from {room_uri} has another id")
        if not event.is_salon_room or event.status is None:
            raise ActivityError(f"{room_uri} is not a Salon room")
        if not same_host(event.attributed_to, room_uri):
            raise ActivityError("the room's host is not on the room's node")
        host = await self.directory.fetch(event.attributed_to)
        host_id = self.directory.remember(host, self.directory.document(host.id) or {})
        self.remote_rooms.put_room(
            event.id, host_id, event.status, event.serialize(), self.clock.now()
        )
        return host_id, event.status.value

    def cancel(self, user: User, room_uri: str, activity_id: str | None) -> None:
        stored = self.remote_rooms.room(room_uri)
        host = self.actors.actor_by_user(stored.host_id) if stored else None
        me = self.urls.actor(user.username)
        digest = hashlib.sha256(room_uri.encode()).hexdigest()[:16]
        undo = Undo(
            id=self.urls.new_activity_id(),
            actor=me,
            object=Follow(id=activity_id or f"{me}#rsvp-{digest}", actor=me, object=room_uri),
            to=(host.actor_uri,) if host else (),
        )
        inbox = (host.shared_inbox or host.inbox) if host else f"{_root(room_uri)}/inbox"
        self.publisher.publish(undo.serialize(), user, [inbox], public=False)

    def describe(self, room_uri: str) -> CalendarRoom | None:
        stored = self.remote_rooms.room(room_uri)
        if stored is None:
            return None
        doc = stored.document
        host = self.users.get(stored.host_id)
        start = _epoch(doc.get("startTime"))
        if start is None:
            return None
        raw_url = doc.get("url")
        url = raw_url if isinstance(raw_url, str) else room_uri
        return CalendarRoom(
            url=url if same_host(url, room_uri) else room_uri,
            title=str(doc.get("name") or ""),
            description=str(doc.get("summary") or ""),
            host=f"{host.username}@{host.domain}" if host else host_of(room_uri),
            status=stored.status,
            start=start,
            end=_epoch(doc.get("endTime")),
            took_place=stored.status != "ended" or _epoch(doc.get("endTime")) is not None,
        )


def _root(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


class RsvpOrigin:
    """Remote actors' RSVPs to our rooms."""

    def __init__(
        self,
        urls: Urls,
        users: UserStore,
        actors: RemoteActorStore,
        directory: ActorDirectory,
        publisher: Publisher,
        rooms: RoomService,
        service: RsvpService,
    ) -> None:
        self.urls = urls
        self.users = users
        self.actors = actors
        self.directory = directory
        self.publisher = publisher
        self.rooms = rooms
        self.service = service

    def follows_room(self, activity: Follow) -> bool:
        return self.urls.room_id_of(activity.object) is not None

    def follow(self, activity: Follow, actor: Actor) -> str:
        room_id = self.urls.room_id_of(activity.object)
        assert room_id is not None
        user = self._user(actor)
        try:
            room = self.service.rsvp(user, room_id, activity.id)
        except (RsvpError, RoomRuleError) as exc:
            raise RsvpRefused(exc.message) from None
        host = self.users.get(room.host_id)
        remote = self.actors.actor_by_user(user.id)
        if host is not None and remote is not None:
            accept = Accept(
                id=self.urls.new_activity_id(),
                actor=self.urls.actor(host.username),
                object=activity,
                to=(actor.id,),
            )
            inbox = remote.shared_inbox or remote.inbox
            self.publisher.publish(accept.serialize(), host, [inbox], public=False)
        return "rsvp recorded"

    def _user(self, actor: Actor) -> User:
        document = self.directory.document(actor.id) or actor.serialize()
        user = self.users.get(self.directory.remember(actor, document))
        if user is None:
            raise ActivityError(f"cannot store the actor {actor.id}")
        return user

    def undoes(self, activity: Undo) -> bool:
        target = activity.object
        if isinstance(target, Follow):
            return self.urls.room_id_of(target.object) is not None
        return isinstance(target, Reference) and self.service.by_activity(target.id) is not None

    def undo(self, activity: Undo, actor: Actor) -> str:
        target = activity.object
        remote = self.actors.actor_by_uri(actor.id)
        if isinstance(target, Follow):
            if target.actor != actor.id:
                raise ActivityError("Undo.object.actor must be the Undo's actor")
            room_id = self.urls.room_id_of(target.object)
        else:
            found = self.service.by_activity(target.id)
            if found is None or remote is None or found.user_id != remote.user_id:
                raise ActivityError(f"{actor.id} cannot undo an RSVP of someone else")
            room_id = found.room
        user = self.users.get(remote.user_id) if remote is not None else None
        if room_id is None or user is None:
            return "Undo of an unknown RSVP ignored"
        return "rsvp withdrawn" if self.service.withdraw(user, room_id) else "no such rsvp"


class RsvpAudience:
    """Inboxes of the remote actors who RSVPed to a room (for its announcements)."""

    def __init__(self, store: RsvpStore, actors: RemoteActorStore) -> None:
        self.store = store
        self.actors = actors

    def inboxes(self, room_id: str) -> list[str]:
        found = []
        for user_id in self.store.remote_users(room_id):
            remote = self.actors.actor_by_user(user_id)
            if remote is not None:
                found.append(remote.shared_inbox or remote.inbox)
        return list(dict.fromkeys(found))


class RsvpRelay:
    """Our inbox's side: announcements of rooms our users asked about, and answers."""

    def __init__(
        self, urls: Urls, users: UserStore, store: RsvpStore, reminders: RsvpReminders
    ) -> None:
        self.urls = urls
        self.users = users
        self.store = store
        self.reminders = reminders

    def wanted(self, room_uri: str) -> bool:
        return self.store.has_local(room_uri)

    def stored(self, room_uri: str, status: str) -> None:
        """A room announcement was stored: a room that went live reminds at once, one
        that ended drops its RSVPs."""
        if status == "live" and self.wanted(room_uri):
            self.reminders.room_live(room_uri)
        elif status == "ended":
            self.store.forget_room(room_uri)

    def answers(self, activity: Accept | Reject) -> bool:
        """An Accept/Reject of one of our users' Follows of a room (not of a person)."""
        target = activity.object
        if isinstance(target, Follow):
            return (
                self.urls.username_of(target.actor) is not None and target.object != activity.actor
            )
        return isinstance(target, Reference) and self.store.by_activity(target.id) is not None

    def answer(self, activity: Accept | Reject, actor: Actor) -> str:
        target = activity.object
        user_id: int | None = None
        room = ""
        if isinstance(target, Follow):
            room = target.object
            username = self.urls.username_of(target.actor)
            user = self.users.by_name(username) if username else None
            user_id = user.id if user else None
        elif isinstance(target, Reference):
            found = self.store.by_activity(target.id)
            if found is not None:
                room, user_id = found.room, found.user_id
        if not room or not same_host(room, actor.id):
            raise ActivityError(f"{actor.id} cannot answer for a room on another node")
        if isinstance(activity, Accept):
            return "rsvp accepted"
        if user_id is not None:
            self.store.remove(user_id, room)
        return "rsvp rejected"
