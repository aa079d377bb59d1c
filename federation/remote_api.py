"""Our users' side of remote rooms: ``/api/remote-rooms`` and its room WebSocket.

The WebSocket speaks exactly the local room protocol (docs/api.md), so a client needs no
second implementation: only the URL differs. Handles are local to this node (``bob`` is
ours, ``alice@A`` is not).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from federation.joins import JoinFailed, JoinRefused
from federation.service import Federation
from federation.trunk_relay import RemoteRoom, alias_of
from media.engine import MediaConfig
from node.rooms.model import RoomRuleError
from node.rooms.service import Subscription
from node.store.users import User
from node.web.http import USER, current_user, error, read_json
from node.web.websocket import origin_ok, write_events

log = logging.getLogger(__name__)


class RemoteRooms:
    """Every remote room our users are in, one trunk each."""

    def __init__(self, fed: Federation, config: MediaConfig) -> None:
        self.fed = fed
        self.config = config
        self.rooms: dict[str, RemoteRoom] = {}
        self._grace: dict[tuple[str, int], asyncio.Task[None]] = {}
        self.closing = False

    async def join(self, user: User, url: object, token: object) -> RemoteRoom:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise RoomRuleError("invalid", "url must be the room's http(s) URL")
        if token is not None and not isinstance(token, str):
            raise RoomRuleError("invalid", "invite_token must be a string")
        parts = urlsplit(url)
        path = parts.path.rstrip("/")
        if "/rooms/" not in path:
            raise RoomRuleError("invalid", f"{url} is not a room URL (…/rooms/ID)")
        uri = f"{parts.scheme}://{parts.netloc}{path}"
        if parts.netloc == self.fed.ctx.urls.host:
            raise RoomRuleError("invalid", "that room is on this node: join it at /api/rooms")
        if self.fed.ctx.refused(parts.netloc):
            raise RoomRuleError("forbidden", "this node does not federate with that domain")
        room = self.rooms.get(alias_of(uri))
        if room is None or room.ended:
            room = self.rooms[alias_of(uri)] = RemoteRoom(self.fed, self.config, uri)
        try:
            await room.admit(user, token)
        except JoinRefused as exc:
            raise RoomRuleError("forbidden", f"the room refused: {exc}") from None
        except (JoinFailed, TimeoutError) as exc:
            raise RoomRuleError("conflict", f"cannot reach the room: {exc}") from None
        return room

    def get(self, alias: str) -> RemoteRoom:
        room = self.rooms.get(alias)
        if room is None or room.ended:
            raise RoomRuleError("not_found", "no such remote room")
        return room

    def socket_closed(self, room: RemoteRoom, user: User) -> None:
        """Keep bob's seat for the reconnect grace period, then leave for him."""
        if self.closing:
            return  # shutting down: the origin frees the seat when our trunk goes
        if any(s.user is not None and s.user.id == user.id for s in room.subs):
            return
        key = (room.alias, user.id)

        async def later() -> None:
            await asyncio.sleep(self.fed.ctx.settings.reconnect_grace_seconds)
            if not any(s.user is not None and s.user.id == user.id for s in room.subs):
                await room.leave(user)

        self._grace[key] = asyncio.create_task(later())
        self._grace[key].add_done_callback(lambda _t: self._grace.pop(key, None))

    async def close(self) -> None:
        self.closing = True
        for task in list(self._grace.values()):
            task.cancel()
        for room in list(self.rooms.values()):
            for sub in list(room.subs):
                sub.close(1001, "server shutting down")
            await room.close()
        self.rooms.clear()


REMOTE = web.AppKey("remote_rooms", RemoteRooms)
routes = web.RouteTableDef()


@routes.post("/api/remote-rooms")
async def join_remote(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await read_json(request)
    remote = request.app[REMOTE]
    room = await remote.join(user, body.get("url"), body.get("invite_token"))
    return web.json_response(await room.state(user))


@routes.get("/api/remote-rooms/{alias}")
async def remote_state(request: web.Request) -> web.Response:
    user = current_user(request)
    room = request.app[REMOTE].get(request.match_info["alias"])
    if user.id not in room.members:
        raise RoomRuleError("forbidden", "join the room first (POST /api/remote-rooms)")
    return web.json_response(await room.state(user))


@routes.get("/api/remote-rooms/{alias}/ws")
async def remote_socket(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    if user is None:
        return error(401, "sign in first")
    if not origin_ok(request):
        return error(403, "cross-origin WebSocket refused")
    remote = request.app[REMOTE]
    room = remote.get(request.match_info["alias"])
    if user.id not in room.members:
        return error(403, "join the room first (POST /api/remote-rooms)")
    state = await room.state(user)
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=256 * 1024)
    await ws.prepare(request)
    sub = Subscription(room.alias, user, request.app[REMOTE].fed.ctx.settings.ws_queue_size)
    room.subs.add(sub)
    await ws.send_json({"type": "state", "room": state})
    writer = asyncio.create_task(write_events(ws, sub))
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except json.JSONDecodeError as exc:
                sub.offer({"type": "error", "error": f"malformed JSON: {exc}"})
                continue
            if isinstance(data, dict):
                reply = await _handle(room, user, data)
                if reply is not None:
                    sub.offer(reply)
    finally:
        room.subs.discard(sub)
        if sub.closed:
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(asyncio.shield(writer), 5.0)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        if user.id in room.members:
            remote.socket_closed(room, user)
    return ws


async def _handle(room: RemoteRoom, user: User, data: dict[str, Any]) -> dict[str, Any] | None:
    kind, msg_id = data.get("type"), data.get("id")
    try:
        if kind == "command":
            action, target = data.get("action"), data.get("user")
            if not isinstance(action, str):
                raise RoomRuleError("invalid", "command needs an 'action' string")
            if target is not None and not isinstance(target, str):
                raise RoomRuleError("invalid", "user must be a username string")
            if action == "leave":
                await room.leave(user)
            else:
                await room.command(user, action, target)
            return {"type": "reply", "id": msg_id, "ok": True}
        if kind == "signal":
            await room.signal(user, data)
            return None
        if kind == "ping":
            return {"type": "pong", "id": msg_id}
        raise RoomRuleError("invalid", f"unknown message type {kind!r}")
    except RoomRuleError as exc:
        return {"type": "error", "id": msg_id, "error": exc.message}
