"""The room WebSocket: full state, then ordered events; client commands and signalling.

Protocol (docs/api.md): the server first sends ``{"type": "state", "room": ...}``, then
``{"type": "event", "seq": N, "event": KIND, ...}`` in order and ``{"type": "speaking"}``
level updates. Clients send ``{"type": "command", "id": X, "action": A, "user": U?}`` and get
``{"type": "reply", "id": X, "ok": true}`` or ``{"type": "error", "id": X, "error": "..."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import WSMessage, WSMsgType, web

from node.errors import DomainError
from node.rooms import protocol
from node.rooms.broadcast import Shared
from node.rooms.model import RoomRuleError
from node.rooms.protocol import ChatRequest, ClientMessage, Ping, ProtocolError, Signal
from node.rooms.service import RoomService
from node.rooms.subscription import Subscription
from node.store.users import User
from node.web.api import ROOMS, SETTINGS
from node.web.http import USER, HttpError, error

log = logging.getLogger(__name__)

SignalHandler = Callable[[str, User, dict[str, Any]], Awaitable[None]]
SOCKETS: web.AppKey[set[Any]] = web.AppKey("sockets")
SIGNALS = web.AppKey("signals", list[SignalHandler])
MAX_MESSAGE = protocol.MAX_FRAME
WRITER_FLUSH_SECONDS = 5.0


class SocketCounter:
    """Room WebSockets open per account, local and remote rooms together."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[int, int] = {}

    def claim(self, user: User) -> None:
        count = self._open.get(user.id, 0)
        if count >= self.limit:
            raise HttpError(429, f"at most {self.limit} room sockets per account")
        self._open[user.id] = count + 1

    def release(self, user: User) -> None:
        count = self._open.get(user.id, 0) - 1
        if count > 0:
            self._open[user.id] = count
        else:
            self._open.pop(user.id, None)


SOCKET_COUNTER = web.AppKey("socket_counter", SocketCounter)
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

    async def chat(self, user: User, request: ChatRequest) -> None:
        """A ``chat``, ``react`` or ``delete_message`` (node/rooms/chat_service.py)."""


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

    async def chat(self, user: User, request: ChatRequest) -> None:
        self.rooms.chat.handle(self.rooms.get(self.room_id), user, request)


@routes.get("/api/rooms/{id}/ws")
async def room_socket(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    if user is None:
        return error(401, "sign in first")
    if not origin_ok(request):
        return error(403, "cross-origin WebSocket refused")
    rooms = request.app[ROOMS]
    room_id = request.match_info["id"]
    counter = request.app[SOCKET_COUNTER]
    counter.claim(user)
    try:
        sub = rooms.connect(room_id, user, request.query.get("invite"))
    except BaseException:
        counter.release(user)
        raise
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_MESSAGE)
    try:
        await ws.prepare(request)
    except BaseException:
        rooms.disconnect(sub)
        counter.release(user)
        raise
    request.app[SOCKETS].add(ws)
    room = rooms.get(room_id)
    channel = LocalRoom(rooms, request.app[SIGNALS], room_id)
    try:
        await serve_socket(ws, sub, rooms.view(room, user), channel)
    finally:
        rooms.disconnect(sub)
        counter.release(user)
        request.app[SOCKETS].discard(ws)
        if not ws.closed:
            await ws.close(code=sub.close_code, message=sub.close_reason.encode())
    return ws


async def serve_socket(
    ws: web.WebSocketResponse, sub: Subscription, state: dict[str, Any], channel: RoomChannel
) -> None:
    """The room protocol on one prepared socket: the state, then events and replies in
    order while client messages are read; returns when the client or the room closes."""
    await ws.send_json(protocol.state(state))
    user = sub.user
    assert user is not None  # client sockets always belong to a user
    writer = asyncio.create_task(write_events(ws, sub), name=f"ws-writer-{sub.room_id}-{user.id}")
    try:
        async for msg in ws:
            message = _message(msg, sub)
            if message is None:
                continue
            with channel.holding():
                reply = await _handle(channel, user, message)
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
            if isinstance(message, Shared):  # one encoding for every socket of the room
                await ws.send_str(message.text())
            else:
                await ws.send_json(message)
        except ConnectionError:
            return


def _message(msg: WSMessage, sub: Subscription) -> ClientMessage | None:
    """A client message; anything else is answered with an error message and skipped."""
    if msg.type is not WSMsgType.TEXT:
        if msg.type is WSMsgType.BINARY:
            sub.offer(protocol.error(None, "binary messages are not accepted"))
        return None
    try:
        data = protocol.decode_frame(msg.data)
    except ProtocolError as exc:
        sub.offer(protocol.error(None, exc.message))
        return None
    try:
        return protocol.parse_client(data)
    except ProtocolError as exc:
        sub.offer(protocol.error(_echo_id(data), exc.message))
        return None


def _echo_id(data: dict[str, Any]) -> protocol.MessageId:
    try:
        return protocol.message_id(data)
    except ProtocolError:
        return None


async def _handle(
    channel: RoomChannel, user: User, message: ClientMessage
) -> dict[str, Any] | None:
    if isinstance(message, Ping):
        return protocol.pong(message.id)
    if isinstance(message, Signal):
        try:
            await channel.signal(user, message.serialize())
        except DomainError as exc:
            return protocol.error(message.id, exc.message)
        return None
    try:
        if isinstance(message, protocol.Chat | protocol.React | protocol.DeleteMessage):
            await channel.chat(user, message)
            return protocol.reply(message.id)
        await channel.command(user, message.action, message.user)
    except DomainError as exc:
        return protocol.error(message.id, exc.message)
    return protocol.reply(message.id)


async def close_sockets(app: web.Application) -> None:
    """Shutdown: tell every client why, instead of dropping the TCP connection."""
    app[ROOMS].close_all()
    sockets: set[Any] = app[SOCKETS]
    for ws in sorted(sockets, key=id):
        if not ws.closed:
            await ws.close(code=1001, message=b"server shutting down")
