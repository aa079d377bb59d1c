"""The origin's end of relay trunks: ``GET /rooms/{id}/trunk`` (a WebSocket).

A remote node B opens it with a GET signed by B's node actor. Over it B says who of its
users are in the room and which audio stream carries each; A sends the room's events and
answers B's commands for B's users. Media flows over the encrypted UDP trunk whose keys
are agreed here (media/trunk.py, media/relay.py). A ignores anything B says about users
that are not B's own, and B's users hold their seats only while the trunk is up.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from nacl.public import PrivateKey

from federation.activities import ActivityError, host_of
from federation.identity import Urls
from federation.inbox import SignatureRejected, SignedRequests
from federation.store.actors import RemoteActorStore
from federation.store.policies import DomainPolicies
from media.relay import OriginTrunk, open_socket
from media.trunk import Direction, Sealer, TrunkError, parse_public_key
from node.rooms.audio import RoomAudio
from node.rooms.model import RoomRuleError
from node.rooms.service import RoomService, Subscription
from node.settings import Settings
from node.store.users import User, UserStore

log = logging.getLogger(__name__)

HANDLE_KEYS = ("user", "by", "host")
HELLO_TIMEOUT = 10.0


def rewrite_handles(value: Any, fix: Callable[[Any], Any]) -> Any:
    """Apply FIX to every handle in a room message (``user``, ``by``, ``host``, hands, levels)."""
    if isinstance(value, list):
        return [rewrite_handles(v, fix) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in HANDLE_KEYS:
            out[key] = fix(item)
        elif key == "hands" and isinstance(item, list):
            out[key] = [fix(h) for h in item]
        elif key == "levels" and isinstance(item, dict):
            out[key] = {fix(h): v for h, v in item.items()}
        else:
            out[key] = rewrite_handles(item, fix)
    return out


def canonical(value: Any, own_host: str) -> Any:
    """Handles that mean the same on every node: our ``alice`` becomes ``alice@A``."""

    def fix(handle: Any) -> Any:
        if isinstance(handle, str) and handle and "@" not in handle:
            return f"{handle}@{own_host}"
        return handle

    return rewrite_handles(value, fix)


class OriginSession:
    """One open trunk: a remote node's WebSocket plus its UDP media trunk."""

    def __init__(
        self, desk: TrunkDesk, room_id: str, node_host: str, ws: web.WebSocketResponse
    ) -> None:
        self.desk = desk
        self.rooms = desk.rooms
        self.audio = desk.audio
        self.room_id = room_id
        self.node_host = node_host
        self.ws = ws
        self.own_host = desk.urls.host
        self.seats: dict[int, User] = {}
        self.trunk: OriginTrunk | None = None
        self.sub: Subscription | None = None

    async def run(self) -> None:
        hello = await self.ws.receive_json(timeout=HELLO_TIMEOUT)
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            await self.ws.close(code=4400, message=b"expected hello")
            return
        try:
            peer = parse_public_key(base64.b64decode(str(hello.get("key", "")), validate=True))
        except (TrunkError, ValueError):
            await self.ws.close(code=4400, message=b"bad trunk key")
            return
        own = PrivateKey.generate()
        trunk_id = secrets.randbits(32)
        try:
            sealer_check = Sealer(trunk_id, own, peer, Direction.ORIGIN_TO_RELAY)
        except TrunkError:
            await self.ws.close(code=4400, message=b"bad trunk key")
            return
        del sealer_check
        settings = self.desk.settings
        sock = await open_socket(settings.trunk_bind_address, port_range=settings.ice_port_range)
        media = self.audio.media(self.room_id)
        self.trunk = OriginTrunk(media, trunk_id, own, peer, sock)
        advertised = urlsplit(settings.base_url).hostname or settings.host
        await self.ws.send_json(
            {
                "type": "media",
                "trunk_id": trunk_id,
                "udp": [advertised, sock.address[1]],
                "key": base64.b64encode(bytes(own.public_key)).decode(),
            }
        )
        self.sub = self.rooms.watch(self.room_id)
        writer = asyncio.create_task(self._forward(self.sub))
        try:
            async for msg in self.ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except json.JSONDecodeError:
                    continue
                if isinstance(data, dict):
                    reply = self._handle(data)
                    if reply is not None:
                        await self.ws.send_json(reply)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await self.close()

    async def _forward(self, sub: Subscription) -> None:
        while True:
            message = await sub.queue.get()
            if message is None:
                await self.ws.close(code=sub.close_code, message=sub.close_reason.encode())
                return
            await self.ws.send_json(canonical(message, self.own_host))

    def _user(self, actor_uri: object) -> User:
        """One of the trunk node's users, known to us; anything else is refused."""
        if not isinstance(actor_uri, str):
            raise RoomRuleError("invalid", "actor must be a string")
        try:
            host = host_of(actor_uri)
        except ActivityError:
            raise RoomRuleError("invalid", "actor must be a URL") from None
        if host != self.node_host:
            raise RoomRuleError("forbidden", f"{actor_uri} is not a user of {self.node_host}")
        row = self.desk.actors.actor_by_uri(actor_uri)
        user = self.desk.users.get(row.user_id) if row else None
        if user is None:
            raise RoomRuleError("forbidden", f"{actor_uri} has not joined this room")
        return user

    def _handle(self, data: dict[str, Any]) -> dict[str, Any] | None:
        kind, msg_id = data.get("type"), data.get("id")
        try:
            if kind == "users":
                return self._seat(data)
            if kind == "command":
                user = self._user(data.get("actor"))
                target = data.get("user")
                if target is not None and not isinstance(target, str):
                    raise RoomRuleError("invalid", "user must be a handle string")
                if isinstance(target, str) and target.endswith("@" + self.own_host):
                    target = target[: -len(self.own_host) - 1]
                self.rooms.act(self.room_id, user, str(data.get("action")), target)
                return {"type": "reply", "id": msg_id, "ok": True}
            if kind == "get_state":
                user = self._user(data.get("actor"))
                room = self.rooms.get(self.room_id)
                view = canonical(self.rooms.view(room, user), self.own_host)
                return {"type": "state", "id": msg_id, "room": view}
            raise RoomRuleError("invalid", f"unknown trunk message {kind!r}")
        except RoomRuleError as exc:
            # the HTTP status the same refusal gets in the client API (403 for foreign users)
            return {"type": "error", "id": msg_id, "status": exc.status, "error": exc.message}

    def _seat(self, data: dict[str, Any]) -> dict[str, Any]:
        """B lists its users in the room and their stream ids; seats held while we run."""
        self.desk.seat_messages += 1
        streams = data.get("streams")
        if not isinstance(streams, dict):
            raise RoomRuleError("invalid", "users needs a 'streams' object")
        room = self.rooms.live(self.room_id)
        if room is None:
            raise RoomRuleError("conflict", "the room is not live")
        missing = []
        assert self.trunk is not None
        for actor_uri, stream in streams.items():
            try:
                user = self._user(actor_uri)
            except RoomRuleError:
                missing.append(actor_uri)
                continue
            if user.id not in room.participants or not isinstance(stream, int):
                missing.append(actor_uri)
                continue
            if user.id not in self.seats:
                self.seats[user.id] = user
                self.rooms.hold_seat(self.room_id, user)
            self.trunk.add_stream(stream, str(user.id))
            participant = room.participants.get(user.id)
            if participant is not None:
                self.trunk.set_can_speak(str(user.id), participant.can_speak)
        return {"type": "seats", "missing": missing}

    async def close(self) -> None:
        if self.sub is not None:
            self.rooms.unwatch(self.sub)
        for user in self.seats.values():
            self.rooms.release_seat(self.room_id, user)
        self.seats.clear()
        if self.trunk is not None:
            await self.trunk.close()
            self.trunk = None


class TrunkDesk:
    """Opens origin trunks: ``GET /rooms/{id}/trunk`` signed by a remote node's actor."""

    def __init__(
        self,
        signed: SignedRequests,
        policies: DomainPolicies,
        actors: RemoteActorStore,
        users: UserStore,
        urls: Urls,
        settings: Settings,
        rooms: RoomService,
        audio: RoomAudio,
    ) -> None:
        self.signed = signed
        self.policies = policies
        self.actors = actors
        self.users = users
        self.urls = urls
        self.settings = settings
        self.rooms = rooms
        self.audio = audio
        #: ``users`` → ``seats`` exchanges handled on every trunk (the cascade bench reads it)
        self.seat_messages = 0

    async def open(self, request: web.Request) -> web.StreamResponse:
        room_id = request.match_info["id"]
        signed = self.signed.request("GET", request.raw_path, request.headers.items(), b"")
        try:
            actor = await self.signed.actor(signed, None)
        except SignatureRejected as exc:
            return web.json_response({"error": f"trunk refused: {exc}"}, status=401)
        node_host = host_of(actor.id)
        if self.policies.refused(node_host):
            return web.json_response(
                {"error": "this node does not federate with your domain"}, status=403
            )
        if self.rooms.live(room_id) is None:
            return web.json_response({"error": "no live room here"}, status=404)
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        log.info("trunk: %s opened a trunk for room %s", node_host, room_id)
        session = OriginSession(self, room_id, node_host, ws)
        try:
            await session.run()
        except (TimeoutError, TypeError, ValueError) as exc:
            log.info("trunk: %s closed: %s", node_host, exc)
        log.info("trunk: %s closed its trunk for room %s", node_host, room_id)
        return ws
