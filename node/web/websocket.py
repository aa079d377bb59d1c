"""The room WebSocket: full state, then ordered events; client commands and signalling.

Protocol (docs/api.md): the server first sends ``{"type": "state", "room": ...}``, then
``{"type": "event", "seq": N, "event": KIND, ...}`` in order and ``{"type": "speaking"}``
level updates. Clients send ``{"type": "command", "id": X, "action": A, "user": U?}`` and get
``{"type": "reply", "id": X, "ok": true}`` or ``{"type": "error", "id": X, "error": "..."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import WSMessage, WSMsgType, web

from node.errors import DomainError
from node.rooms.model import RoomRuleError
from node.rooms.service import RoomService, Subscription
from node.store.users import User
from node.web.api import ROOMS, SETTINGS
from node.web.http import USER, error

log = logging.getLogger(__name__)

SignalHandler = Callable[[str, User, dict[str, Any]], Awaitable[None]]
SOCKETS: web.AppKey[set[Any]] = web.AppKey("sockets")
SIGNALS = web.AppKey("signals", list[SignalHandler])
MAX_MESSAGE = 256 * 1024
WRITER_FLUSH_SECONDS = 5.0

routes = web.RouteTableDef()


def origin_ok(request: web.Request) -> bool:
    """Cookie-authenticated sockets must come from our own pages (cross-site WS hijacking):
    the Origin's scheme, host and port must be those of the node's base URL."""
    origin = request.headers.get("Origin")
    if origin is None or request.headers.get("Authorization"):
        return True

    def site(url: str) -> tuple[str, str, int | None]:
        parts = urlsplit(url)
        default = {"http": 80, "https": 443}.get(parts.scheme)
        try:
            return parts.scheme, (parts.hostname or ""), parts.port or default
        except ValueError:  # a malformed port
            return "", "", None

    ours = site(request.app[SETTINGS].base_url)
    return ours[1] != "" and site(origin) == ours


class RoomChannel(Protocol):
    """What the socket loop needs from a room, whether it lives here or on another node."""

    def holding(self) -> AbstractContextManager[None]:
        """Closes a command causes wait until its reply is queued."""

    async def command(self, user: User, action: str, target: str | None) -> None: ...

    async def signal(self, user: User, message: dict[str, Any]) -> None: ...


class LocalRoom:
    """A room of this node, as one socket sees it."""

    def __init__(self, rooms: RoomService, signals: list[SignalHandler], room_id: str) -> None:
        self.rooms = rooms
        self.signals = signals
        self.room_id = room_id

    def holding(self) -> AbstractContextManager[None]:
        return self.rooms.holding_closes()

    async def command(self, user: User, action: str, target: str | None) -> None:
        self.rooms.act(self.room_id, user, action, target)

    async def signal(self, user: User, message: dict[str, Any]) -> None:
        if not self.signals:
            raise RoomRuleError("conflict", "this node has no media engine")
        for handler in self.signals:
            await handler(self.room_id, user, message)


@routes.get("/api/rooms/{id}/ws")
async def room_socket(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    if user is None:
        return error(401, "sign in first")
    if not origin_ok(request):
        return error(403, "cross-origin WebSocket refused")
    rooms = request.app[ROOMS]
    room_id = request.match_info["id"]
    sub = rooms.connect(room_id, user, request.query.get("invite"))
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_MESSAGE)
    try:
        await ws.prepare(request)
    except BaseException:
        rooms.disconnect(sub)
        raise
    request.app[SOCKETS].add(ws)
    room = rooms.get(room_id)
    channel = LocalRoom(rooms, request.app[SIGNALS], room_id)
    try:
        await serve_socket(ws, sub, rooms.view(room, user), channel)
    finally:
        rooms.disconnect(sub)
        request.app[SOCKETS].discard(ws)
        if not ws.closed:
            await ws.close(code=sub.close_code, message=sub.close_reason.encode())
    return ws


async def serve_socket(
    ws: web.WebSocketResponse, sub: Subscription, state: dict[str, Any], channel: RoomChannel
) -> None:
    """The room protocol on one prepared socket: the state, then events and replies in
    order while client messages are read; returns when the client or the room closes."""
    await ws.send_json({"type": "state", "room": state})
    user = sub.user
    assert user is not None  # client sockets always belong to a user
    writer = asyncio.create_task(write_events(ws, sub), name=f"ws-writer-{sub.room_id}-{user.id}")
    try:
        async for msg in ws:
            data = _message(msg, sub)
            if data is None:
                continue
            with channel.holding():
                reply = await _handle(channel, user, data)
                if reply is not None:
                    # through the queue, so a reply follows the events its command caused
                    # and precedes the close it may cause (leave, end)
                    sub.offer(reply)
    finally:
        if sub.closed:
            # we are closing (leave, end, removal): let the writer flush and close cleanly
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(asyncio.shield(writer), WRITER_FLUSH_SECONDS)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


async def write_events(ws: web.WebSocketResponse, sub: Subscription) -> None:
    """Send SUB's queue in order; close with its code when it ends."""
    while True:
        message = await sub.queue.get()
        if message is None:
            await ws.close(code=sub.close_code, message=sub.close_reason.encode())
            return
        try:
            await ws.send_json(message)
        except ConnectionError:
            return


def _message(msg: WSMessage, sub: Subscription) -> dict[str, Any] | None:
    """A client message as a JSON object; anything else is answered with an error event."""
    if msg.type is not WSMsgType.TEXT:
        if msg.type is WSMsgType.BINARY:
            sub.offer({"type": "error", "error": "binary messages are not accepted"})
        return None
    try:
        data = json.loads(msg.data)
    except json.JSONDecodeError as exc:
        sub.offer({"type": "error", "error": f"malformed JSON: {exc}"})
        return None
    if not isinstance(data, dict):
        sub.offer({"type": "error", "error": "messages must be JSON objects"})
        return None
    return data


async def _handle(channel: RoomChannel, user: User, data: dict[str, Any]) -> dict[str, Any] | None:
    kind = data.get("type")
    msg_id = data.get("id")
    try:
        if kind == "command":
            action = data.get("action")
            target = data.get("user")
            if not isinstance(action, str):
                raise RoomRuleError("invalid", "command needs an 'action' string")
            if target is not None and not isinstance(target, str):
                raise RoomRuleError("invalid", "user must be a username string")
            await channel.command(user, action, target)
            return {"type": "reply", "id": msg_id, "ok": True}
        if kind == "signal":
            await channel.signal(user, data)
            return None
        if kind == "ping":
            return {"type": "pong", "id": msg_id}
        raise RoomRuleError("invalid", f"unknown message type {kind!r}")
    except DomainError as exc:
        return {"type": "error", "id": msg_id, "error": exc.message}


async def close_sockets(app: web.Application) -> None:
    """Shutdown: tell every client why, instead of dropping the TCP connection."""
    app[ROOMS].close_all()
    sockets: set[Any] = app[SOCKETS]
    for ws in sorted(sockets, key=id):
        if not ws.closed:
            await ws.close(code=1001, message=b"server shutting down")
