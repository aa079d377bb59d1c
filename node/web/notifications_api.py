"""The notification centre's API and its per-user WebSocket, and ``Ping`` (docs/api.md).

Socket protocol: the node sends ``{"type": "unread", "count": N}`` on connect and whenever
the count changes by reading, and ``{"type": "notification", "notification": {...},
"unread": N}`` for each new one. Clients may send ``{"type": "ping"}`` (answered
``{"type": "pong"}``); anything else is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re

from aiohttp import WSMsgType, web

from node.accounts import handle
from node.notifications import PAGE_LIMIT, Notifications, NotificationStream
from node.pings import Pings
from node.web.http import USER, HttpError, current_user, error, read_json
from node.web.remote_rooms import REMOTE_ROOMS
from node.web.websocket import SocketCounter, origin_ok

NOTIFICATIONS = web.AppKey("notifications", Notifications)
PINGS = web.AppKey("pings", Pings)
NOTIFICATION_SOCKETS = web.AppKey("notification_sockets", SocketCounter)
MAX_IDS = 500
MAX_SOCKET_MESSAGE = 1024
_INT = re.compile(r"[0-9]{1,15}")
routes = web.RouteTableDef()


def _int_query(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not _INT.fullmatch(raw):
        raise HttpError(400, f"{name} must be a non-negative integer")
    return int(raw)


@routes.get("/api/notifications")
async def list_notifications(request: web.Request) -> web.Response:
    """Newest first, ``limit`` (1-50, default 20) per page; ``before`` = the last id seen."""
    user = current_user(request)
    notifications = request.app[NOTIFICATIONS]
    before = _int_query(request, "before")
    limit = _int_query(request, "limit") or 20
    if limit > PAGE_LIMIT:
        raise HttpError(400, f"limit must be at most {PAGE_LIMIT}")
    items = notifications.page(user.id, before, limit)
    return web.json_response(
        {
            "items": items,
            "unread": notifications.unread(user.id),
            "next_before": items[-1]["id"] if len(items) == limit else None,
        }
    )


@routes.post("/api/notifications/read")
async def mark_read(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await read_json(request)
    notifications = request.app[NOTIFICATIONS]
    unknown = sorted(set(body) - {"ids", "all"})
    if unknown:
        raise HttpError(400, f"unknown field(s): {', '.join(unknown)}")
    if body.get("all") is True and "ids" not in body:
        changed = notifications.mark_read(user.id, None)
    else:
        ids = body.get("ids")
        if (
            "all" in body
            or not isinstance(ids, list)
            or not 1 <= len(ids) <= MAX_IDS
            or not all(type(i) is int and 0 <= i < 2**53 for i in ids)
        ):
            raise HttpError(
                400, f'send {{"ids": [1 to {MAX_IDS} notification ids]}} or {{"all": true}}'
            )
        changed = notifications.mark_read(user.id, ids)
    return web.json_response({"marked": changed, "unread": notifications.unread(user.id)})


@routes.get("/api/notifications/ws")
async def notification_socket(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    if user is None:
        return error(401, "sign in first")
    if not origin_ok(request):
        return error(403, "cross-origin WebSocket refused")
    notifications = request.app[NOTIFICATIONS]
    counter = request.app[NOTIFICATION_SOCKETS]
    counter.claim(user)
    try:
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_SOCKET_MESSAGE)
        await ws.prepare(request)
        stream = notifications.subscribe(user.id)
        try:
            stream.offer({"type": "unread", "count": notifications.unread(user.id)})
            await _serve(ws, stream)
        finally:
            notifications.unsubscribe(stream)
    finally:
        counter.release(user)
    return ws


async def _serve(ws: web.WebSocketResponse, stream: NotificationStream) -> None:
    writer = asyncio.create_task(_write(ws, stream), name=f"notify-ws-{stream.user_id}")
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT and _is_ping(msg.data):
                stream.offer({"type": "pong"})
            if writer.done():
                break
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        if not ws.closed:
            await ws.close(code=stream.close_code, message=stream.close_reason.encode())


def _is_ping(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("type") == "ping"


async def _write(ws: web.WebSocketResponse, stream: NotificationStream) -> None:
    while True:
        message = await stream.queue.get()
        if message is None:
            await ws.close(code=stream.close_code, message=stream.close_reason.encode())
            return
        try:
            await ws.send_json(message)
        except ConnectionError:
            return


@routes.post("/api/rooms/{id}/ping")
async def ping(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await read_json(request)
    unknown = sorted(set(body) - {"user"})
    if unknown:
        raise HttpError(400, f"unknown field(s): {', '.join(unknown)}")
    target = request.app[PINGS].ping(request.match_info["id"], user, body.get("user"))
    return web.json_response({"pinged": handle(target)})


@routes.post("/api/remote-rooms/{alias}/ping")
async def ping_remote(request: web.Request) -> web.Response:
    """Ping someone into a room on another node that you joined through this one."""
    user = current_user(request)
    body = await read_json(request)
    unknown = sorted(set(body) - {"user"})
    if unknown:
        raise HttpError(400, f"unknown field(s): {', '.join(unknown)}")
    room = request.app[REMOTE_ROOMS].get(request.match_info["alias"])
    target = request.app[PINGS].ping_remote(room, user, body.get("user"))
    return web.json_response({"pinged": handle(target)})


@routes.get("/api/me/ping-candidates")
async def ping_candidates(request: web.Request) -> web.Response:
    """People the signed-in user may ping: those they follow and those who follow them."""
    user = current_user(request)
    return web.json_response({"items": request.app[PINGS].candidates(user)})


async def close_streams(app: web.Application) -> None:
    """Shutdown: every notification socket closes with 1001."""
    app[NOTIFICATIONS].live.close_all()
