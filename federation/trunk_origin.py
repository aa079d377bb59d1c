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
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMessage, WSMsgType, web
from nacl.public import PrivateKey, PublicKey

from federation.as2 import ActivityError, host_of
from federation.identity import Urls
from federation.inbox import SignatureRejected, SignedRequests
from federation.store.actors import RemoteActorStore
from federation.store.policies import DomainPolicies
from media.trunk import Direction, Sealer, TrunkError, parse_public_key
from node.errors import DomainError
from node.rooms import protocol
from node.rooms.audio import RoomAudio, TrunkHandle
from node.rooms.model import RoomRuleError
from node.rooms.protocol import ProtocolError
from node.rooms.service import RoomService
from node.rooms.subscription import Subscription
from node.settings import Settings
from node.store.users import User, UserStore

log = logging.getLogger(__name__)

HANDLE_KEYS = ("user", "by", "host")
HELLO_TIMEOUT = 10.0
RECHECK_SECONDS = 2.0  # how often an open trunk asks the gate again (policy changes)


def rewrite_handles(value: Any, fix: Callable[[Any], Any]) -> Any:
    """Apply FIX to every handle in a room message (``user``, ``by``, ``host``, hands, levels,
    reactions)."""
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
        elif key in ("levels", "reactions") and isinstance(item, dict):
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
    """One open trunk: a remote node's WebSocket plus its UDP media trunk.

    The gate's rules for trunks (docs/security.md): the trunk opens only while the node has
    a user admitted to the room; the mix flows only once one of them is seated here (the
    UDP end is attached to the mixer on the first seat); when the node's last user leaves
    or is removed the trunk closes (4003), and it closes when the room ends (1000).
    """

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
        self.trunk: TrunkHandle | None = None
        self.sub: Subscription | None = None
        self._keys: tuple[int, PrivateKey, PublicKey] | None = None
        self._closing: set[asyncio.Future[bool]] = set()

    async def run(self) -> None:
        try:
            hello = protocol.parse_hello(await self._receive(HELLO_TIMEOUT))
            peer = parse_public_key(base64.b64decode(hello.key, validate=True))
            own = PrivateKey.generate()
            trunk_id = self.audio.engine.port.new_trunk_id()
            Sealer(trunk_id, own, peer, Direction.ORIGIN_TO_RELAY)  # refuses unusable keys
        except (ProtocolError, TrunkError, ValueError):
            await self.ws.close(code=4400, message=b"bad trunk hello")
            return
        settings = self.desk.settings
        self._keys = (trunk_id, own, peer)
        advertised = urlsplit(settings.base_url).hostname or settings.host
        port = self.audio.engine.port.udp_port
        try:  # with media workers: the room's mixer worker's address
            advertised, port = await self.audio.trunk_media_address(self.room_id) or (
                advertised,
                port,
            )
        except RuntimeError as exc:
            log.warning("trunk: no media for %s: %s", self.room_id, exc)
            await self.ws.close(code=1013, message=b"no media worker can take the trunk now")
            return
        key = base64.b64encode(bytes(own.public_key)).decode()
        await self.ws.send_json(protocol.Media(trunk_id, advertised, port, key).serialize())
        self.sub = self.rooms.watch(self.room_id)
        tasks = [
            asyncio.create_task(self._forward(self.sub)),
            asyncio.create_task(self._recheck()),
        ]
        try:
            async for msg in self.ws:
                reply = self._answer(msg)
                if reply is not None:
                    await self.ws.send_json(reply)
        finally:
            for task in tasks:
                task.cancel()
            # aiohttp cancels this handler when the peer's connection drops: the seats and
            # the UDP end must be released all the same
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()

    async def _recheck(self) -> None:
        """An operator may suspend the node's domain while the trunk is open (the API, the
        desk, or `salon admin` from another process): ask the gate again now and then."""
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            room = self.rooms.live(self.room_id)
            if room is not None and not self.desk.gate.seated_from(room, self.node_host):
                log.info("trunk: %s may no longer be in %s; closing", self.node_host, self.room_id)
                await self.ws.close(code=4003, message=b"your node may no longer join this room")
                return

    async def _receive(self, timeout: float) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type is not WSMsgType.TEXT:
            raise ProtocolError("expected a text message")
        return protocol.decode_frame(msg.data)

    def _answer(self, msg: WSMessage) -> dict[str, Any] | None:
        if msg.type is not WSMsgType.TEXT:
            return protocol.error(None, "binary messages are not accepted", 400)
        try:
            data = protocol.decode_frame(msg.data)
        except ProtocolError as exc:
            return protocol.error(None, exc.message, exc.status)
        msg_id: protocol.MessageId = None
        try:
            msg_id = protocol.message_id(data)
            return self._handle(protocol.parse_trunk_request(data))
        except DomainError as exc:
            # the HTTP status the same refusal gets in the client API (403 for foreign users)
            return protocol.error(msg_id, exc.message, exc.status)

    async def _forward(self, sub: Subscription) -> None:
        while True:
            message = await sub.queue.get()
            if message is None:
                await self.ws.close(code=sub.close_code, message=sub.close_reason.encode())
                return
            await self.ws.send_json(canonical(message, self.own_host))
            if message.get("event") in ("left", "removed"):
                await self._seat_lost(removed=message["event"] == "removed")

    async def _seat_lost(self, *, removed: bool) -> None:
        """One of the room's participants went: drop our seats that are gone, and close the
        trunk when none of this node's users is left in the room (4003 when the last one
        was removed, 1000 when they left)."""
        room = self.rooms.live(self.room_id)
        if room is None:
            return
        for user_id in [uid for uid in self.seats if uid not in room.participants]:
            del self.seats[user_id]
        if not self.desk.gate.seated_from(room, self.node_host):
            log.info("trunk: %s has nobody left in %s; closing", self.node_host, self.room_id)
            code = 4003 if removed else 1000
            await self.ws.close(code=code, message=b"no user of your node is in this room")

    def _user(self, actor_uri: str) -> User:
        """One of the trunk node's users, known to us; anything else is refused."""
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

    def _handle(self, request: protocol.TrunkRequest) -> dict[str, Any]:
        if isinstance(request, protocol.Users):
            return self._seat(request)
        user = self._user(request.actor)
        if isinstance(request, protocol.TrunkChat):
            # a trunk speaks only for the users it seated (not merely any user of its node)
            if user.id not in self.seats:
                raise RoomRuleError(
                    "forbidden", f"{request.actor} is not seated through this trunk"
                )
            self.rooms.chat.handle(self.rooms.get(self.room_id), user, request.request)
            return protocol.reply(request.id)
        if isinstance(request, protocol.GetListeners):
            room = self.rooms.get(self.room_id)
            self.rooms.views.check_listeners_access(room, user)
            limit = min(request.limit, self.desk.settings.listeners_page_max)
            items, cursor = self.rooms.views.listener_page(room, request.after, limit)
            count = sum(1 for p in room.participants.values() if not p.on_stage)
            page = protocol.listeners_page(request.id, items, cursor, count)
            return canonical(page, self.own_host)
        if isinstance(request, protocol.GetState):
            room = self.rooms.get(self.room_id)
            view = canonical(self.rooms.view(room, user), self.own_host)
            return protocol.state(view, request.id)
        target = request.user
        if target is not None and target.endswith("@" + self.own_host):
            target = target[: -len(self.own_host) - 1]
        self.rooms.act(self.room_id, user, request.action, target)
        return protocol.reply(request.id)

    def _seat(self, request: protocol.Users) -> dict[str, Any]:
        """B lists its users in the room and their stream ids; seats held while we run."""
        self.desk.seat_messages += 1
        room = self.rooms.live(self.room_id)
        if room is None:
            raise RoomRuleError("conflict", "the room is not live")
        missing = []
        gate = self.desk.gate
        for actor_uri, stream in request.streams.items():
            try:
                user = self._user(actor_uri)
            except RoomRuleError:
                missing.append(actor_uri)
                continue
            if not gate.may_hear(room, user.id) or type(stream) is not int:
                missing.append(actor_uri)
                continue
            trunk = self._attached()
            if user.id not in self.seats:
                self.seats[user.id] = user
                self.rooms.hold_seat(self.room_id, user)
            trunk.add_stream(stream, str(user.id))
            trunk.set_can_speak(str(user.id), gate.may_speak(room, user.id))
        return protocol.Seats(missing).serialize()

    def _attached(self) -> TrunkHandle:
        """The UDP end, attached to the room's mixer on the first seated user."""
        if self.trunk is None:
            assert self._keys is not None
            trunk_id, own, peer = self._keys
            self.trunk = self.audio.origin_trunk(
                self.room_id, trunk_id, own, peer, on_moved=self._media_moved
            )
        return self.trunk

    def _media_moved(self) -> None:
        """The room's mixer moved to another media worker: the remote node reconnects
        (1012, as after a restart) and its new hello gets the new address."""
        log.info("trunk: %s's media moved; asking %s to reconnect", self.room_id, self.node_host)
        task = asyncio.ensure_future(
            self.ws.close(code=1012, message=b"the room's media moved; reconnect")
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        if self.sub is not None:
            self.rooms.unwatch(self.sub)
        for user in self.seats.values():
            self.rooms.release_seat(self.room_id, user)
        self.seats.clear()
        if self.trunk is not None:
            await self.trunk.close()
            self.trunk = None
        self._keys = None


class TrunkDesk:
    """Opens origin trunks: ``GET /rooms/{id}/trunk`` signed by a remote node's actor.

    At most one trunk per (room, node) — a newer one replaces the older (4409) — and at
    most ``trunks_per_node`` per node.
    """

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
        self.gate = rooms.gate
        self._open: dict[tuple[str, str], OriginSession] = {}
        #: ``users`` → ``seats`` exchanges handled on every trunk (the cascade bench reads it)
        self.seat_messages = 0

    def sessions(self) -> list[OriginSession]:
        return list(self._open.values())

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
        room = self.rooms.live(room_id)
        if room is None:
            return web.json_response({"error": "no live room here"}, status=404)
        if not self.gate.seated_from(room, node_host):
            return web.json_response(
                {"error": "no user of your node is admitted to this room"}, status=403
            )
        key = (room_id, node_host)
        older = self._open.get(key)
        held = sum(1 for (_, host) in self._open if host == node_host)
        if older is None and held >= self.settings.trunks_per_node:
            return web.json_response(
                {"error": f"at most {self.settings.trunks_per_node} trunks per node"}, status=429
            )
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=protocol.MAX_FRAME)
        await ws.prepare(request)
        if older is not None:
            await older.ws.close(code=4409, message=b"replaced by a newer trunk")
        session = self._open[key] = OriginSession(self, room_id, node_host, ws)
        log.info("trunk: %s opened a trunk for room %s", node_host, room_id)
        try:
            await session.run()
        except (TimeoutError, TypeError, ValueError) as exc:
            log.info("trunk: %s closed: %s", node_host, exc)
        finally:
            if self._open.get(key) is session:
                del self._open[key]
        log.info("trunk: %s closed its trunk for room %s", node_host, room_id)
        return ws
