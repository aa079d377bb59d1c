"""Remote joins: a user of another node asks to join one of our rooms, and the reverse.

Origin side: ``Join{actor: bob@B, object: room}`` arrives signed with bob's key; the room's
rules decide (open; social: a host/moderator follows bob; closed: invited or holding the
invite token in ``inviteToken``). The answer is an ``Accept``/``Reject`` (with the reason
in ``summary``) delivered to bob's inbox, and, so that B need not wait for that delivery,
the inbox's HTTP answer says the same at once: 202 accepted, 403 ``{"error": reason}``.
Relay side: ``request_join`` sends that Join and reads the answer.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from federation.activities import Accept, Join, Leave, Reject
from federation.actors import ActorDirectory
from federation.as2 import AS_CONTEXT, SALON_CONTEXT, ActivityError, host_of
from federation.fetch import FetchError, SafeClient
from federation.identity import Signers, Urls
from federation.outbox import Publisher
from federation.store.actors import RemoteActorStore
from node.rooms.model import RoomRuleError
from node.rooms.service import RoomService
from node.store.users import User, UserStore

log = logging.getLogger(__name__)


class JoinRefused(ActivityError):
    """The room's rules refuse the join; the message is the reason shown to the user."""


class JoinFailed(Exception):
    """The origin node could not be asked (unreachable, malformed answer)."""


class JoinDesk:
    """The origin's half: turn remote Join/Leave activities into room actions."""

    def __init__(
        self,
        urls: Urls,
        users: UserStore,
        actors: RemoteActorStore,
        publisher: Publisher,
        rooms: RoomService,
    ) -> None:
        self.urls = urls
        self.users = users
        self.actors = actors
        self.publisher = publisher
        self.rooms = rooms

    def _room_id(self, uri: str) -> str:
        room_id = self.urls.room_id_of(uri)
        if room_id is None:
            raise ActivityError(f"Join.object is not a room of this node: {uri}")
        return room_id

    async def join(self, activity: Join, data: dict[str, Any], actor_user: User) -> str:
        room_id = self._room_id(activity.object)
        token = data.get("inviteToken")
        try:
            room = self.rooms.join(room_id, actor_user, token if isinstance(token, str) else None)
        except RoomRuleError as exc:
            self._answer(activity, actor_user, room_id, accepted=False, reason=exc.message)
            raise JoinRefused(exc.message) from None
        self._answer(activity, actor_user, room.id, accepted=True, reason=None)
        return "join accepted"

    def leave(self, activity: Leave, actor_user: User) -> str:
        room_id = self._room_id(activity.object)
        room = self.rooms.active(room_id)
        if room is None or actor_user.id not in room.participants:
            return "not in that room"
        self.rooms.act(room_id, actor_user, "leave")
        return "left"

    def _answer(
        self, join: Join, actor_user: User, room_id: str, *, accepted: bool, reason: str | None
    ) -> None:
        room = self.rooms.find(room_id)
        host = self.users.get(room.host_id) if room else None
        remote = self.actors.actor_by_user(actor_user.id)
        if host is None or remote is None:
            return
        kind = Accept if accepted else Reject
        answer = kind(
            id=self.urls.new_activity_id(),
            actor=self.urls.actor(host.username),
            object=join,
            to=(join.actor,),
        ).serialize()
        if reason:
            answer["summary"] = reason
        inbox = remote.shared_inbox or remote.inbox
        self.publisher.publish(answer, host, [inbox], public=False)


class RemoteJoins:
    """The relay's half: ask another node's room to admit one of our users, or let go."""

    def __init__(
        self,
        urls: Urls,
        client: SafeClient,
        signers: Signers,
        directory: ActorDirectory,
        publisher: Publisher,
    ) -> None:
        self.urls = urls
        self.client = client
        self.signers = signers
        self.directory = directory
        self.publisher = publisher

    async def request(self, user: User, room_uri: str, token: str | None) -> None:
        """Ask the room's node to admit USER; JoinRefused(reason) or JoinFailed on failure."""
        client = self.client
        parts = urlsplit(room_uri)
        inbox = f"{parts.scheme}://{parts.netloc}/inbox"  # closed rooms are not published
        to: tuple[str, ...] = ()
        try:
            event = await client.get_json(room_uri, self.signers.node)
        except FetchError as exc:
            if exc.status != 404:
                raise JoinFailed(f"cannot fetch the room {room_uri}: {exc}") from None
        else:
            host_uri = event.get("attributedTo")
            if event.get("type") != "Event" or not isinstance(host_uri, str):
                raise JoinFailed(f"{room_uri} is not a Salon room")
            if host_of(host_uri) != host_of(room_uri):
                raise JoinFailed("the room's host is not on the room's node")
            try:
                host = await self.directory.fetch(host_uri)
            except (FetchError, ActivityError) as exc:
                raise JoinFailed(f"cannot fetch the room's host: {exc}") from None
            inbox = host.shared_inbox or host.inbox
            to = (host_uri,)
        join = Join(
            id=self.urls.new_activity_id(),
            actor=self.urls.actor(user.username),
            object=room_uri,
            to=to,
        ).serialize()
        if token:
            join["@context"] = [AS_CONTEXT, SALON_CONTEXT]
            join["inviteToken"] = token
        try:
            status, answer = await client.post_json(inbox, join, self.signers.user(user))
        except FetchError as exc:
            raise JoinFailed(str(exc)) from None
        if status == 403:
            reason = (answer or {}).get("error") or "the room refused the join"
            raise JoinRefused(str(reason))
        if status >= 300:
            message = (answer or {}).get("error") or f"HTTP {status}"
            raise JoinFailed(f"the room's node answered: {message}")
        log.info("joins: %s admitted to %s", user.username, room_uri)

    def leave(self, user: User, room_uri: str) -> None:
        """Queue a Leave for USER (delivered even if the origin is briefly away)."""
        leave = Leave(
            id=self.urls.new_activity_id(),
            actor=self.urls.actor(user.username),
            object=room_uri,
        ).serialize()
        parts = urlsplit(room_uri)
        self.publisher.publish(
            leave, user, [f"{parts.scheme}://{parts.netloc}/inbox"], public=False
        )
