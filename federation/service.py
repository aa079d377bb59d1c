"""Federation as the rest of the node sees it.

``People`` answers the node's ``RemotePeople`` protocol (node/remote.py): looking up remote
users and the hallway cards of their rooms. ``Federation`` holds the parts the composition
root built (cli/app.py), for federation's own routes, the admin CLI and tests; no component
receives it — each is given only what it uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from federation.actors import ActorDirectory, ActorDocuments
from federation.as2 import ActivityError
from federation.fetch import FetchError, SafeClient
from federation.identity import Signers, Urls
from federation.inbox import Inbox, SignedRequests
from federation.outbox import FollowBridge, Publisher, RoomAnnouncer, RoomDocuments
from federation.sender import DeliveryWorker
from federation.store import count_rows
from federation.store.actors import RemoteActorStore
from federation.store.deliveries import DeliveryStore
from federation.store.inbox import SeenActivities
from federation.store.policies import DomainPolicies
from federation.store.rooms import RemoteRoomStore
from node.accounts import handle
from node.clock import Clock
from node.remote import LookupFailed
from node.rooms.hallway import HallwayCard
from node.settings import Settings
from node.store.db import Database
from node.store.follows import FollowStore
from node.store.users import User, UserStore

log = logging.getLogger(__name__)


class People:
    """Remote people and their rooms, for the client API (``node.remote.RemotePeople``)."""

    def __init__(
        self,
        directory: ActorDirectory,
        users: UserStore,
        follows: FollowStore,
        remote_rooms: RemoteRoomStore,
    ) -> None:
        self.directory = directory
        self.users = users
        self.follows = follows
        self.remote_rooms = remote_rooms

    async def lookup(self, acct: str) -> User:
        """``@user@host`` to a users row (WebFinger + actor fetch for unknown remotes)."""
        try:
            return await self.directory.lookup(acct)
        except ActivityError as exc:
            code = "not_found" if "no user" in str(exc) else "invalid"
            raise LookupFailed(code, str(exc)) from None
        except FetchError as exc:
            code = "not_found" if exc.status in (404, 410) else "unreachable"
            raise LookupFailed(code, f"cannot look up {acct}: {exc}") from None

    def remote_cards(self, viewer: User) -> list[HallwayCard]:
        """Hallway cards for live and upcoming rooms of remote people the viewer follows."""
        following = self.follows.following_ids(viewer.id)
        rows = self.remote_rooms.active_rooms_of(following)
        if not rows:
            return []
        hosts = self.users.many(sorted({r.host_id for r in rows}))
        cards = []
        for row in rows:
            host = hosts.get(row.host_id)
            doc = row.document
            if host is None or host.limited or host.suspended:
                continue
            if (
                doc.get("joinMode") == "social"
                and self.follows.state(host.id, viewer.id) != "accepted"
            ):
                continue
            speakers = doc.get("speakers") or []
            cards.append(
                HallwayCard(
                    id=row.uri,
                    url=doc.get("url") or row.uri,
                    title=doc.get("name", ""),
                    description=doc.get("summary") or "",
                    join_mode=doc.get("joinMode") or "open",
                    status=row.status,
                    host=handle(host),
                    host_display_name=host.display_name or host.username,
                    start_time=doc.get("startTime"),
                    listener_count=doc.get("listenerCount") or 0,
                    speakers=[{"user": s} for s in speakers if isinstance(s, str)],
                    extra={
                        "remote": True,
                        "node": host.domain,
                        "updated": doc.get("updated"),
                        "recording": doc.get("recording") is True,
                    },
                )
            )
        return cards


@dataclass(frozen=True)
class Federation:
    """The parts of federation, built once by the composition root."""

    settings: Settings
    clock: Clock
    db: Database
    urls: Urls
    users: UserStore
    follows: FollowStore
    actors: RemoteActorStore
    remote_rooms: RemoteRoomStore
    policies: DomainPolicies
    deliveries: DeliveryStore
    seen: SeenActivities
    client: SafeClient
    signers: Signers
    directory: ActorDirectory
    documents: ActorDocuments
    room_documents: RoomDocuments
    signed: SignedRequests
    inbox: Inbox
    publisher: Publisher
    bridge: FollowBridge
    announcer: RoomAnnouncer
    worker: DeliveryWorker

    def count(self, table: str) -> int:
        """Rows in one federation table (tests assert that refusals store nothing)."""
        return count_rows(self.db, table)


FEDERATION = web.AppKey("federation", Federation)
