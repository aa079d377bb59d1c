"""The federation facade the web API and the CLI call (one object per node)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from federation.activities import ActivityError
from federation.actors import ActorDirectory
from federation.context import Context
from federation.fetch import FetchError
from federation.handlers import Handlers
from federation.inbox import Inbox
from federation.outbox import FollowBridge, Publisher, RoomAnnouncer
from federation.sender import DeliveryWorker
from node.accounts import handle
from node.store.users import User

log = logging.getLogger(__name__)


class LookupError_(ValueError):
    """A remote user could not be found; ``status`` is the HTTP status for the API."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Federation:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.directory = ActorDirectory(ctx)
        self.publisher = Publisher(ctx)
        self.bridge = FollowBridge(ctx, self.publisher)
        self.announcer = RoomAnnouncer(ctx, self.publisher)
        self.handlers = Handlers(ctx, self.directory, self.bridge)
        self.inbox = Inbox(ctx, self.directory, self.handlers)
        self.worker = DeliveryWorker(ctx, after_pass=self.announcer.flush)

    async def lookup(self, acct: str) -> User:
        """``@user@host`` to a users row (WebFinger + actor fetch for unknown remotes)."""
        try:
            return await self.directory.lookup(acct)
        except ActivityError as exc:
            raise LookupError_(404 if "no user" in str(exc) else 400, str(exc)) from None
        except FetchError as exc:
            status = 404 if exc.status in (404, 410) else 502
            raise LookupError_(status, f"cannot look up {acct}: {exc}") from None

    def remote_cards(self, viewer: User) -> list[dict[str, Any]]:
        """Hallway cards for live and upcoming rooms of remote people the viewer follows."""
        following = self.ctx.follows.following_ids(viewer.id)
        rows = self.ctx.store.active_rooms_of(following)
        if not rows:
            return []
        hosts = self.ctx.users.many(sorted({r.host_id for r in rows}))
        cards = []
        for row in rows:
            host = hosts.get(row.host_id)
            doc = row.document
            if host is None:
                continue
            if (
                doc.get("joinMode") == "social"
                and self.ctx.follows.state(host.id, viewer.id) != "accepted"
            ):
                continue
            speakers = doc.get("speakers") or []
            cards.append(
                {
                    "id": row.uri,
                    "url": doc.get("url") or row.uri,
                    "remote": True,
                    "node": host.domain,
                    "title": doc.get("name", ""),
                    "description": doc.get("summary") or "",
                    "join_mode": doc.get("joinMode") or "open",
                    "status": row.status,
                    "host": handle(host),
                    "host_display_name": host.display_name or host.username,
                    "start_time": doc.get("startTime"),
                    "listener_count": doc.get("listenerCount") or 0,
                    "speakers": [{"user": s} for s in speakers[:6] if isinstance(s, str)],
                    "updated": doc.get("updated"),
                }
            )
        return cards


FEDERATION = web.AppKey("federation", Federation)
