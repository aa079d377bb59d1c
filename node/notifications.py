"""In-app notifications: stored per user, pushed live to the user's notification sockets.

``Notifications.notify`` is the one way in (rooms starting, pings, RSVP reminders, stage
invitations, moderator appointments). Each notification is stored first (deduplicated by
a per-user key, the user's oldest beyond ``notifications_per_user`` pruned), then handed
to every delivery: the live sockets are one; Web Push would be another ``Delivery``
(docs/architecture.md), registered by the composition root, without touching callers.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import Iterable
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from node.clock import Clock
from node.store.notifications import Notification, NotificationStore
from node.store.users import UserStore

log = logging.getLogger(__name__)

KINDS = frozenset(
    {"room_started", "ping", "rsvp_starting", "rsvp_soon", "invited_to_speak", "made_moderator"}
)
MAX_TITLE = 200
MAX_ACTOR = 300
MAX_URL = 2000
MAX_KEY = 2200
PAGE_LIMIT = 50


class Delivery(Protocol):
    """Something that carries a stored notification to its user (live sockets; Web Push)."""

    def deliver(self, notification: Notification, unread: int) -> None: ...


def clean(text: str, limit: int) -> str:
    """Text from anywhere (a remote room title) made fit to store and show: valid Unicode,
    no control characters, at most LIMIT characters."""
    text = text.encode("utf-8", "replace").decode("utf-8", "replace")
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return text.strip()[:limit]


class NotificationStream:
    """One open notification socket's queue; closed (code 4008) when the client lags."""

    def __init__(self, user_id: int, maxsize: int) -> None:
        self.user_id = user_id
        self.maxsize = maxsize
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.closed = False
        self.close_code = 1000
        self.close_reason = ""

    def offer(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= self.maxsize:
            self.close(4008, "client too slow; reconnect")
            return
        self.queue.put_nowait(message)

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code, self.close_reason = code, reason
        self.queue.put_nowait(None)


class LiveSockets:
    """The ``Delivery`` to the user's open notification sockets."""

    def __init__(self, own_host: str) -> None:
        self.own_host = own_host
        self._streams: dict[int, set[NotificationStream]] = {}

    def open(self, user_id: int, maxsize: int) -> NotificationStream:
        stream = NotificationStream(user_id, maxsize)
        self._streams.setdefault(user_id, set()).add(stream)
        return stream

    def close(self, stream: NotificationStream) -> None:
        streams = self._streams.get(stream.user_id)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._streams[stream.user_id]

    def deliver(self, notification: Notification, unread: int) -> None:
        message = {
            "type": "notification",
            "notification": to_json(notification, self.own_host),
            "unread": unread,
        }
        self.send(notification.user_id, message)

    def send(self, user_id: int, message: dict[str, Any]) -> None:
        for stream in list(self._streams.get(user_id, ())):
            stream.offer(message)

    def close_all(self) -> None:
        for streams in list(self._streams.values()):
            for stream in list(streams):
                stream.close(1001, "server shutting down")


def link_for(room_url: str, own_host: str) -> str:
    """The web client's page for a room: our own rooms directly, others' through our node
    (the remote room proxy), as ``roomPageFor`` in the client builds it."""
    parts = urlsplit(room_url)
    path = parts.path.rstrip("/")
    if parts.netloc == own_host and path.startswith("/rooms/"):
        return path + (f"?{parts.query}" if parts.query else "")
    return "/remote?url=" + quote(room_url, safe="")


def to_json(notification: Notification, own_host: str) -> dict[str, Any]:
    return {
        "id": notification.id,
        "kind": notification.kind,
        "room_url": notification.room_url,
        "link": link_for(notification.room_url, own_host),
        "title": notification.title,
        "actor": notification.actor,
        "created_at": notification.created_at,
        "read": notification.read,
    }


class Notifications:
    def __init__(
        self,
        store: NotificationStore,
        users: UserStore,
        clock: Clock,
        *,
        own_host: str,
        keep: int,
        queue_size: int,
        deliveries: Iterable[Delivery] = (),
    ) -> None:
        """KEEP: notifications kept per user; QUEUE_SIZE: messages queued per socket.
        DELIVERIES: carriers besides the live sockets (Web Push later)."""
        self.store = store
        self.users = users
        self.clock = clock
        self.own_host = own_host
        self.keep = keep
        self.queue_size = queue_size
        self.live = LiveSockets(own_host)
        self.deliveries: list[Delivery] = [self.live, *deliveries]

    def notify(
        self,
        user_id: int,
        kind: str,
        *,
        room_url: str,
        title: str,
        actor: str | None = None,
        key: str | None = None,
    ) -> None:
        """Store and push one notification to a local user; the same KEY is stored once."""
        self.notify_many([user_id], kind, room_url=room_url, title=title, actor=actor, key=key)

    def notify_many(
        self,
        user_ids: list[int],
        kind: str,
        *,
        room_url: str,
        title: str,
        actor: str | None = None,
        key: str | None = None,
    ) -> None:
        """``notify`` for several people at once, stored in one transaction (a room's start
        for all of its host's followers here). Remote and unknown ids are skipped."""
        if kind not in KINDS:
            raise ValueError(f"unknown notification kind {kind!r}")
        url = clean(room_url, MAX_URL)
        if not url.startswith(("https://", "http://")):
            raise ValueError("room_url must be an http(s) URL")
        users = self.users.many(list(dict.fromkeys(user_ids)))
        local = [uid for uid, user in users.items() if user.is_local]
        if not local:
            return  # remote people hear of things through their own node
        now = self.clock.now()
        dedupe = clean(key, MAX_KEY) if key else f"{kind}:{url}:{now}"
        stored = self.store.add_many(
            local,
            kind,
            url,
            clean(title, MAX_TITLE) or "a room",
            clean(actor, MAX_ACTOR) if actor else None,
            dedupe,
            now,
            self.keep,
        )
        for notification in stored:
            log.info("notifications: %s for user %d (%s)", kind, notification.user_id, url)
            unread = self.store.unread(notification.user_id)
            for delivery in self.deliveries:
                delivery.deliver(notification, unread)

    # ---- reading ----------------------------------------------------------------------
    def page(self, user_id: int, before: int | None, limit: int) -> list[dict[str, Any]]:
        limit = max(1, min(limit, PAGE_LIMIT))
        return [to_json(n, self.own_host) for n in self.store.page(user_id, before, limit)]

    def unread(self, user_id: int) -> int:
        return self.store.unread(user_id)

    def mark_read(self, user_id: int, ids: list[int] | None) -> int:
        """IDS None: all of them. Every socket of the user hears the new unread count."""
        changed = (
            self.store.mark_all_read(user_id) if ids is None else self.store.mark_read(user_id, ids)
        )
        if changed:
            self.live.send(user_id, {"type": "unread", "count": self.store.unread(user_id)})
        return changed

    # ---- live sockets -----------------------------------------------------------------
    def subscribe(self, user_id: int) -> NotificationStream:
        return self.live.open(user_id, self.queue_size)

    def unsubscribe(self, stream: NotificationStream) -> None:
        self.live.close(stream)
