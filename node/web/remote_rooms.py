"""Our users' side of rooms on other nodes: ``/api/remote-rooms`` and its WebSocket.

The WebSocket speaks exactly the local room protocol (docs/api.md) through the same socket
loop, so a client needs no second implementation: only the URL differs. Handles are local
to this node (``bob`` is ours, ``alice@A`` is not). Federation implements the rooms
(``node.remote.RemoteRooms``); this module only serves them.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from node.remote import RemoteRoom, RemoteRooms
from node.rooms.model import RoomRuleError
from node.rooms.protocol import ChatRequest
from node.store.users import User
from node.web.api import SETTINGS
from node.web.http import USER, current_user, error, read_json
from node.web.listeners_api import parse_page
from node.web.websocket import MAX_MESSAGE, SOCKET_COUNTER, origin_ok, serve_socket

REMOTE_ROOMS = web.AppKey("remote_rooms", RemoteRooms)
routes = web.RouteTableDef()


class _Channel:
    """A remote room as the socket loop sees it (``leave`` is ours to do, not a command)."""

    def __init__(self, room: RemoteRoom) -> None:
        self.room = room

    def holding(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    async def command(self, user: User, action: str, target: str | None) -> None:
        if action == "leave":
            await self.room.leave(user)
        else:
            await self.room.command(user, action, target)

    async def signal(self, user: User, message: dict[str, Any]) -> None:
        await self.room.signal(user, message)

    async def chat(self, user: User, request: ChatRequest) -> None:
        await self.room.chat(user, request)


def _member_room(request: web.Request, user: User) -> RemoteRoom:
    room = request.app[REMOTE_ROOMS].get(request.match_info["alias"])
    if not room.is_member(user):
        raise RoomRuleError("forbidden", "join the room first (POST /api/remote-rooms)")
    return room


@routes.post("/api/remote-rooms")
async def join_remote(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await read_json(request)
    room = await request.app[REMOTE_ROOMS].join(user, body.get("url"), body.get("invite_token"))
    return web.json_response(await room.state(user))


@routes.get("/api/remote-rooms/{alias}")
async def remote_state(request: web.Request) -> web.Response:
    user = current_user(request)
    room = _member_room(request, user)
    return web.json_response(await room.state(user))


@routes.get("/api/remote-rooms/{alias}/listeners")
async def remote_listeners(request: web.Request) -> web.Response:
    """The remote room's audience, paged by its node (node/web/listeners_api.py)."""
    user = current_user(request)
    most = request.app[SETTINGS].listeners_page_max
    after, limit = parse_page(request.query.get("after"), request.query.get("limit"), most)
    room = _member_room(request, user)
    return web.json_response(await room.listeners(user, after, limit))


@routes.get("/api/remote-rooms/{alias}/ws")
async def remote_socket(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    if user is None:
        return error(401, "sign in first")
    if not origin_ok(request):
        return error(403, "cross-origin WebSocket refused")
    room = _member_room(request, user)
    counter = request.app[SOCKET_COUNTER]
    counter.claim(user)
    try:
        state = await room.state(user)
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        sub = room.subscribe(user)
        try:
            await serve_socket(ws, sub, state, _Channel(room))
        finally:
            room.unsubscribe(sub)
    finally:
        counter.release(user)
    return ws
