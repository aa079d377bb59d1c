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
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

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
    """Cookie-authenticated sockets must come from our own pages (cross-site WS hijacking)."""
    origin = request.headers.get("Origin")
    if origin is None or request.headers.get("Authorization"):
        return True
    ours = {urlsplit(request.app[SETTINGS].base_url).netloc, request.host}
    return urlsplit(origin).netloc in ours


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
    await ws.send_json({"type": "state", "room": rooms.view(room, user)})
    writer = asyncio.create_task(write_events(ws, sub), name=f"ws-writer-{room_id}-{user.id}")
    try:
        await _read(request, ws, rooms, sub)
    finally:
        if sub.closed:
            # we are closing (leave, end, removal): let the writer flush and close cleanly
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(asyncio.shield(writer), WRITER_FLUSH_SECONDS)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        rooms.disconnect(sub)
        request.app[SOCKETS].discard(ws)
        if not ws.closed:
            await ws.close(code=sub.close_code, message=sub.close_reason.encode())
    return ws


async def write_events(ws: web.WebSocketResponse, sub: Subscription) -> None:
    """Send SUB's queue in order; close with its code when it ends (also remote rooms)."""
    while True:
        message = await sub.queue.get()
        if message is None:
            await ws.close(code=sub.close_code, message=sub.close_reason.encode())
            return
        try:
            await ws.send_json(message)
        except ConnectionError:
            return


async def _read(
    request: web.Request, ws: web.WebSocketResponse, rooms: RoomService, sub: Subscription
) -> None:
    async for msg in ws:
        if msg.type is not WSMsgType.TEXT:
            if msg.type is WSMsgType.BINARY:
                sub.offer({"type": "error", "error": "binary messages are not accepted"})
            continue
        try:
            data = json.loads(msg.data)
        except json.JSONDecodeError as exc:
            sub.offer({"type": "error", "error": f"malformed JSON: {exc}"})
            continue
        if not isinstance(data, dict):
            sub.offer({"type": "error", "error": "messages must be JSON objects"})
            continue
        with rooms.holding_closes():
            reply = await _handle(request, rooms, sub, data)
            if reply is not None:
                # through the queue, so a reply follows the events its command caused and
                # precedes the close it may cause (leave, end)
                sub.offer(reply)


async def _handle(
    request: web.Request, rooms: RoomService, sub: Subscription, data: dict[str, Any]
) -> dict[str, Any] | None:
    kind = data.get("type")
    msg_id = data.get("id")
    user = sub.user
    assert user is not None  # client sockets always belong to a user
    try:
        if kind == "command":
            action = data.get("action")
            target = data.get("user")
            if not isinstance(action, str):
                raise RoomRuleError("invalid", "command needs an 'action' string")
            if target is not None and not isinstance(target, str):
                raise RoomRuleError("invalid", "user must be a username string")
            rooms.act(sub.room_id, user, action, target)
            return {"type": "reply", "id": msg_id, "ok": True}
        if kind == "signal":
            handlers = request.app[SIGNALS]
            if not handlers:
                raise RoomRuleError("conflict", "this node has no media engine")
            for handler in handlers:
                await handler(sub.room_id, user, data)
            return None
        if kind == "ping":
            return {"type": "pong", "id": msg_id}
        raise RoomRuleError("invalid", f"unknown message type {kind!r}")
    except RoomRuleError as exc:
        return {"type": "error", "id": msg_id, "error": exc.message}


async def close_sockets(app: web.Application) -> None:
    """Shutdown: tell every client why, instead of dropping the TCP connection."""
    app[ROOMS].close_all()
    sockets: set[Any] = app[SOCKETS]
    for ws in sorted(sockets, key=id):
        if not ws.closed:
            await ws.close(code=1001, message=b"server shutting down")
