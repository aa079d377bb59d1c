"""One remote room on the relay side: the trunk to its origin node and our users in it.

``RemoteRoom`` implements node's protocol of the same name (node/remote.py); the registry
that makes one per room, ``RemoteRooms``, is in ``federation/remote_rooms.py`` (its
docstring tells the whole story of a remote join). A is the only authority: this class
forwards our users' commands, applies A's decisions to them, keeps the trunk up (WebSocket
+ encrypted UDP through a ``Relay``) and re-joins our users when A restarts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import logging
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from nacl.public import PrivateKey, PublicKey

from federation.as2 import host_of
from federation.fetch import address_allowed
from federation.joins import JoinFailed, JoinRefused
from federation.trunk_origin import rewrite_handles
from media.signaling import SignalError
from media.trunk import TrunkError, parse_public_key
from node.rooms import protocol
from node.rooms.broadcast import (
    AudienceCounts,
    AudiencePolicy,
    RoomBroadcast,
    Shared,
    counts_after,
    counts_of_view,
    loop_schedule,
    merge_reactions,
    parse_audience,
)
from node.rooms.model import Role, RoomRuleError, speaks
from node.rooms.protocol import ProtocolError
from node.rooms.subscription import Subscription
from node.store.users import User

if TYPE_CHECKING:
    from federation.remote_rooms import RemoteRooms

# the logger keeps the name it had before this module was split from remote_rooms.py
log = logging.getLogger("federation.remote_rooms")


class Relay(Protocol):
    """What a remote room needs from its relay (media/relay.py ``RelayRoom``, or one on a
    media worker: node/workers/federated.py)."""

    def rekey(
        self, trunk_id: int, own: PrivateKey, origin_key: PublicKey, origin: tuple[str, int]
    ) -> None: ...

    def stream_for(self, participant: str) -> int: ...

    def set_can_speak(self, participant: str, allowed: bool) -> None: ...

    async def signal(self, participant: str, message: dict[str, Any]) -> None: ...

    async def remove(self, participant: str) -> None: ...

    async def close(self) -> None: ...


RECONNECT_DELAYS = (0.2, 0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 5.0)
RECONNECT_GIVE_UP = 120.0
REQUEST_TIMEOUT = 10.0
#: what A sends about its chat, passed to our users' sockets as it is (node/rooms/chat_service.py)
CHAT_KINDS = ("chat", "chat_deleted", "chat_mode", "reactions")


def localize(value: Any, own_host: str) -> Any:
    """The reverse of the origin's ``canonical``: ``bob@B`` is ``bob`` here on B."""
    suffix = "@" + own_host

    def fix(handle: Any) -> Any:
        if isinstance(handle, str) and handle.endswith(suffix):
            return handle[: -len(suffix)]
        return handle

    return rewrite_handles(value, fix)


def alias_of(room_uri: str) -> str:
    return "r" + hashlib.sha256(room_uri.encode()).hexdigest()[:20]


class RemoteRoom:
    def __init__(self, owner: RemoteRooms, room_uri: str) -> None:
        self.owner = owner
        self.urls = owner.urls
        self.settings = owner.settings
        self.config = owner.config
        self.uri = room_uri
        self.alias = alias_of(room_uri)
        self.origin_host = host_of(room_uri)
        self.members: dict[int, User] = {}
        self.roles: dict[int, tuple[str, bool]] = {}  # our users' role and muted, per A
        self.subs: set[Subscription] = set()
        self.relay: Relay | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.ended = False
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._background: set[asyncio.Future[None]] = set()
        self._grace: dict[int, asyncio.Task[None]] = {}
        self.joining = 0  # joins under way (RemoteRooms.join forgets a room nobody got in)
        # what we know of the room's audience: its last state or `audience` message, kept
        # roughly current from the events in between; our sockets get it coalesced like a
        # local room's (node/rooms/broadcast.py)
        self.counts = AudienceCounts(0, 0, 0)
        self.broadcast = RoomBroadcast(
            AudiencePolicy.from_settings(self.settings),
            self.subs,
            counts=lambda: self.counts,
            size=lambda: self.counts.participant_count,
            moderators=self._moderator_ids,
            monotonic=time.monotonic,
            schedule=loop_schedule,
        )
        self.title = ""  # as the origin last told us (for our users' notifications)
        self.join_mode = "closed"  # until the origin says otherwise

    # ---- membership --------------------------------------------------------------------
    def is_member(self, user: User) -> bool:
        return user.id in self.members

    def subscribe(self, user: User) -> Subscription:
        """A socket of USER opened (the client API's room WebSocket)."""
        sub = Subscription(self.alias, user, self.settings.ws_queue_size)
        self.subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Keep the seat for the reconnect grace period, then leave for the user."""
        self.subs.discard(sub)
        self.broadcast.forget(sub)
        user = sub.user
        if user is None or user.id not in self.members or self.owner.closing:
            return  # shutting down: the origin frees the seat when our trunk goes
        if self._connected_user(user):
            return

        async def later() -> None:
            await asyncio.sleep(self.settings.reconnect_grace_seconds)
            if not self._connected_user(user):
                await self.leave(user)

        task = self._grace[user.id] = asyncio.create_task(later())
        task.add_done_callback(lambda _t: self._grace.pop(user.id, None))

    def _connected_user(self, user: User) -> bool:
        return any(s.user is not None and s.user.id == user.id for s in self.subs)

    async def admit(self, user: User, token: str | None) -> None:
        if user.id not in self.members:
            await self.owner.joins.request(user, self.uri, token)
            self.members[user.id] = user
        await self.ensure_trunk()
        await self._announce_users()

    async def leave(self, user: User) -> None:
        if self.members.pop(user.id, None) is None:
            return
        with contextlib.suppress(RoomRuleError):
            await self.command(user, "leave", None)
        self.owner.joins.leave(user, self.uri)
        if self.relay is not None:
            await self.relay.remove(str(user.id))
        for sub in [s for s in self.subs if s.user is not None and s.user.id == user.id]:
            sub.close(1000, "left the room")
        if not self.members:
            await self.close()

    # ---- the trunk ---------------------------------------------------------------------
    async def ensure_trunk(self) -> None:
        if self._task is None or self._task.done():
            self._connected.clear()
            self._task = asyncio.create_task(self._keep_trunk(), name=f"trunk-{self.alias}")
        await asyncio.wait_for(self._connected.wait(), REQUEST_TIMEOUT)

    async def _keep_trunk(self) -> None:
        """Connect, serve, and reconnect with backoff until the room ends or we leave."""
        attempt = 0
        lost_at: float | None = None
        loop = asyncio.get_running_loop()
        while not self.ended and self.members:
            try:
                await self._connect()
                attempt = 0
                lost_at = None
                await self._serve()
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status in (403, 404):
                    # the gate said no (nobody of ours admitted, or the room is gone): final
                    log.info("relay [%s]: trunk refused (%s)", self.alias, exc.status)
                    self._end_locally(4003 if exc.status == 403 else 1000, "the room refused")
                    break
                log.info("relay [%s]: trunk to %s failed: %s", self.alias, self.origin_host, exc)
            except (
                aiohttp.ClientError,
                TimeoutError,
                OSError,
                TrunkError,
                ValueError,
                ProtocolError,
            ) as exc:
                log.info("relay [%s]: trunk to %s failed: %s", self.alias, self.origin_host, exc)
            self._connected.clear()
            if self.ended or not self.members:
                break
            lost_at = lost_at or loop.time()
            if loop.time() - lost_at > RECONNECT_GIVE_UP:
                log.warning("relay [%s]: origin gone for good; closing", self.alias)
                self._end_locally(1001, "the room's node is unreachable")
                break
            await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            attempt += 1

    async def _connect(self) -> None:
        url = f"{self.uri}/trunk"
        client = self.owner.client
        headers = client.signed_get_headers(url, self.owner.signers.node)
        ws = await client.session.ws_connect(
            url, headers=headers, heartbeat=10.0, timeout=aiohttp.ClientWSTimeout(ws_close=5.0)
        )
        own = PrivateKey.generate()
        await ws.send_json(
            protocol.Hello(base64.b64encode(bytes(own.public_key)).decode()).serialize()
        )
        answer = await ws.receive(timeout=REQUEST_TIMEOUT)
        if answer.type is not aiohttp.WSMsgType.TEXT:
            raise ProtocolError("origin did not answer hello with media")
        media = protocol.parse_media(protocol.decode_frame(answer.data))
        origin_key = parse_public_key(base64.b64decode(media.key, validate=True))
        host, port = media.host, media.port
        # resolve once here, not on every datagram's sendto
        infos = await asyncio.get_running_loop().getaddrinfo(
            str(host), int(port), family=socket.AF_INET, type=socket.SOCK_DGRAM
        )
        if not infos:
            raise ValueError(f"cannot resolve the origin's media address {host}")
        origin = (str(infos[0][4][0]), int(port))
        if not (self.settings.testnet or address_allowed(origin[0])):
            raise ValueError(f"the origin's media address {origin[0]} is not public")
        if self.relay is None:
            self.relay = self.owner.new_relay(
                self.alias,
                self._send_signal,
                media.trunk_id,
                own,
                origin_key,
                origin,
                on_lost=self._relay_lost,
            )
        else:
            self.relay.rekey(media.trunk_id, own, origin_key, origin)
        self.ws = ws
        await self._announce_users()
        self._connected.set()
        log.info("relay [%s]: trunk to %s up", self.alias, self.origin_host)

    async def _announce_users(self) -> None:
        if self.ws is None or self.ws.closed or self.relay is None:
            return
        streams = {
            self.urls.actor(u.username): self.relay.stream_for(str(u.id))
            for u in self.members.values()
        }
        await self.ws.send_json(protocol.Users(streams).serialize())

    async def _serve(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                data = localize(protocol.decode_frame(msg.data), self.urls.host)
            except ProtocolError as exc:
                log.info("relay [%s]: origin sent a bad frame: %s", self.alias, exc.message)
                continue
            kind = data.get("type")
            msg_id = data.get("id")
            if kind in ("reply", "error", "state", "listeners") and isinstance(msg_id, int):
                future = self._pending.pop(msg_id, None)
                if future is not None and not future.done():
                    future.set_result(data)
            elif kind == "seats":
                try:
                    missing = protocol.parse_seats(data).missing
                except ProtocolError:
                    continue
                if missing:
                    # only act on a gap: answering every `seats` with `users` would ping-pong
                    await self._rejoin(missing)
            elif kind in ("event", "speaking", *CHAT_KINDS):
                self._apply(data)
            elif kind == "audience":
                self._audience(data)
        close_code = self.ws.close_code
        log.info(
            "relay [%s]: trunk to %s closed (%s, members %d)",
            self.alias,
            self.origin_host,
            close_code,
            len(self.members),
        )
        if close_code == 1000 and not self.ended:
            self._end_locally(1000, "room ended")
        elif close_code == 4003 and not self.ended:
            self._end_locally(4003, "removed from the room")

    async def _rejoin(self, missing: list[Any]) -> None:
        """After an origin restart our seats may be gone: join again, without user action."""
        for user in list(self.members.values()):
            if self.urls.actor(user.username) in missing:
                try:
                    await self.owner.joins.request(user, self.uri, None)
                except (JoinRefused, JoinFailed) as exc:
                    log.info("relay [%s]: %s cannot rejoin: %s", self.alias, user.username, exc)
                    self.members.pop(user.id, None)
                    continue
        await self._announce_users()

    def _apply(self, data: dict[str, Any]) -> None:
        """An event from A: mirror its decisions for our users, then tell our clients."""
        kind = data.get("event")
        who = data.get("user")
        member = self._member(who)
        if kind in ("role_changed", "muted") and member is not None:
            role, muted = self.roles.get(member.id, ("listener", False))
            if kind == "role_changed":
                role = str(data.get("role"))
            else:
                muted = bool(data.get("muted"))
            self._set_role(member, role, muted)
        elif kind == "joined" and member is not None:
            participant = data.get("participant") or {}
            self._set_role(member, str(participant.get("role", "listener")), False)
        if data.get("type") == "event":
            self.counts = counts_after(self.counts, data)
            self.broadcast.publish(data)  # listener churn folded (node/rooms/broadcast.py)
        elif data.get("type") == "reactions":
            self._reactions(data.get("reactions"))
        else:
            skip = self._blockers_of_author(data)
            for sub in list(self.subs):
                if sub.user is not None and sub.user.id in skip:
                    continue
                sub.offer(data, droppable=data.get("type") in ("speaking", "reactions"))
        if kind in ("removed", "left") and member is not None:
            self.members.pop(member.id, None)
            code, reason = (4003, "removed from the room") if kind == "removed" else (1000, "left")
            for sub in [s for s in self.subs if s.user is not None and s.user.id == member.id]:
                sub.close(code, reason)
                self.subs.discard(sub)
            if self.relay is not None:
                task = asyncio.ensure_future(self.relay.remove(str(member.id)))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        if kind == "room_ended":
            self._end_locally(1000, "room ended")
        self._notice(data, member)

    def _notice(self, data: dict[str, Any], member: User | None) -> None:
        """A stage invitation or a moderator appointment of one of ours: a notification."""
        kind = data.get("event")
        if kind == "room_updated" and isinstance(data.get("title"), str):
            self.title = data["title"]
            return
        notifications = self.owner.notifications
        if member is None or notifications is None:
            return
        if kind == "invited_to_speak":
            notice = "invited_to_speak"
        elif kind == "role_changed" and data.get("role") == "moderator":
            notice = "made_moderator"
        else:
            return
        by = data.get("by")
        notifications.notify(
            member.id,
            notice,
            room_url=self.uri,
            title=self.title,
            actor=by if isinstance(by, str) else None,
            key=f"{notice}:{self.uri}:{data.get('seq')}",
        )

    def _audience(self, data: dict[str, Any]) -> None:
        """The origin's counts (it sends them while the room is coalesced there)."""
        parsed = parse_audience(data)
        if parsed is not None:
            seq, self.counts, _ = parsed
            self.broadcast.refresh(seq)
        if "reactions" in data:  # a coalesced room's reactions ride on its flushes
            self._reactions(data.get("reactions"))

    def _reactions(self, reactions: object) -> None:
        """A batch of reactions from A: folded into our own flushes when the room is
        coalesced (node/rooms/broadcast.py), else a ``reactions`` message at once."""
        if self.broadcast.react(reactions):
            return
        batch = merge_reactions({}, reactions)
        if not batch:
            return
        message = Shared({"type": "reactions", "reactions": batch})
        for sub in list(self.subs):
            sub.offer(message, droppable=True)

    def _moderator_ids(self) -> set[int]:
        return {uid for uid, (role, _) in self.roles.items() if role in ("host", "moderator")}

    def _blockers_of_author(self, data: dict[str, Any]) -> set[int]:
        """Our users who blocked a ``chat`` message's author: they do not get it."""
        rooms = self.owner.rooms
        message = data.get("message") if data.get("type") == "chat" else None
        author = message.get("user") if isinstance(message, dict) else None
        if rooms is None or not isinstance(author, str):
            return set()
        user = rooms.find_user(author)
        return rooms.gate.blockers_of(user.id) if user is not None else set()

    def _without_blocked(self, chat: Any, viewer: User) -> None:
        """Leave out of the state's chat history the messages of people VIEWER blocked."""
        rooms = self.owner.rooms
        if (
            rooms is None
            or not isinstance(chat, dict)
            or not isinstance(chat.get("messages"), list)
        ):
            return
        authors: dict[str, int] = {}
        for message in chat["messages"]:
            name = message.get("user") if isinstance(message, dict) else None
            if isinstance(name, str) and name not in authors:
                found = rooms.find_user(name)
                if found is not None:
                    authors[name] = found.id
        blocked = rooms.gate.blocked_by(viewer.id, set(authors.values()))
        hidden = {name for name, uid in authors.items() if uid in blocked}
        chat["messages"] = [
            m for m in chat["messages"] if not (isinstance(m, dict) and m.get("user") in hidden)
        ]

    def _member(self, handle: Any) -> User | None:
        if not isinstance(handle, str) or "@" in handle:
            return None
        return next((u for u in self.members.values() if u.username == handle), None)

    def _set_role(self, user: User, role: str, muted: bool) -> None:
        self.roles[user.id] = (role, muted)
        if self.relay is not None:
            self.relay.set_can_speak(str(user.id), speaks(role, muted))

    def _end_locally(self, code: int, reason: str) -> None:
        self.ended = True
        for sub in list(self.subs):
            sub.close(code, reason)
        self.subs.clear()
        self.members.clear()

    def _relay_lost(self) -> None:
        """Our relay moved to another media worker: open the trunk again (new keys, and
        the origin learns the new worker's address from its first datagram)."""
        ws = self.ws
        if ws is not None and not ws.closed:
            log.info("relay [%s]: our media moved; reopening the trunk", self.alias)

            async def reopen() -> None:
                await ws.close(code=1012, message=b"media moved")

            task = asyncio.ensure_future(reopen())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _send_signal(self, participant: str, message: dict[str, Any]) -> None:
        for sub in self.subs:
            if sub.user is not None and str(sub.user.id) == participant:
                sub.offer({"type": "signal", "signal": message})

    # ---- requests to the origin ----------------------------------------------------------
    async def _request(self, make: Callable[[int], protocol.TrunkRequest]) -> dict[str, Any]:
        if self.ws is None or self.ws.closed:
            raise RoomRuleError("conflict", "reconnecting to the room's node; try again")
        self._next_id += 1
        msg_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        await self.ws.send_json(make(msg_id).serialize())
        try:
            return await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except TimeoutError:
            self._pending.pop(msg_id, None)
            raise RoomRuleError("conflict", "the room's node did not answer") from None

    async def command(self, user: User, action: str, target: str | None) -> None:
        if target is not None and "@" not in target:
            target = f"{target}@{self.urls.host}"
        actor = self.urls.actor(user.username)
        answer = await self._request(
            lambda msg_id: protocol.TrunkCommand(msg_id, actor, action, target)
        )
        _raise_refusal(answer)

    async def chat(self, user: User, request: protocol.ChatRequest) -> None:
        """USER's chat, react or delete_message, decided by the room's node."""
        actor = self.urls.actor(user.username)
        answer = await self._request(
            lambda msg_id: protocol.TrunkChat(actor, dataclasses.replace(request, id=msg_id))
        )
        _raise_refusal(answer)

    async def state(self, user: User) -> dict[str, Any]:
        actor = self.urls.actor(user.username)
        answer = await self._request(lambda msg_id: protocol.GetState(msg_id, actor))
        if answer.get("type") != "state":
            raise RoomRuleError("conflict", str(answer.get("error", "no state")))
        room: dict[str, Any] = answer["room"]
        if isinstance(room.get("title"), str):
            self.title = room["title"]
        if isinstance(room.get("join_mode"), str):
            self.join_mode = room["join_mode"]
        room["id"] = self.alias
        self.counts = counts_of_view(room)
        room["remote"] = True
        room["node"] = self.origin_host
        self._without_blocked(room.get("chat"), user)
        me = room.get("you")
        if isinstance(me, dict):
            self._set_role(user, str(me.get("role", Role.LISTENER.value)), bool(me.get("muted")))
        return room

    async def listeners(self, user: User, after: int, limit: int) -> dict[str, Any]:
        """A page of the room's audience, from the origin (its rules, its cap)."""
        actor = self.urls.actor(user.username)
        answer = await self._request(
            lambda msg_id: protocol.GetListeners(msg_id, actor, after, limit)
        )
        if answer.get("type") != "listeners" or not isinstance(answer.get("listeners"), list):
            status = answer.get("status")
            code = next((c for c, s in RoomRuleError.STATUS.items() if s == status), "conflict")
            raise RoomRuleError(code, str(answer.get("error", "no listeners")))
        next_cursor = answer.get("next")
        count = answer.get("listener_count")
        return {
            "listeners": [p for p in answer["listeners"] if isinstance(p, dict)][:limit],
            "next": next_cursor if isinstance(next_cursor, str) and next_cursor.isdigit() else None,
            "listener_count": count if type(count) is int and count >= 0 else None,
        }

    async def signal(self, user: User, message: dict[str, Any]) -> None:
        if self.relay is None:
            raise RoomRuleError("conflict", "the trunk is not up yet")
        payload = message.get("signal")
        if not isinstance(payload, dict):
            raise RoomRuleError("invalid", "signal messages need a 'signal' object")
        role, muted = self.roles.get(user.id, ("listener", False))
        self.relay.set_can_speak(str(user.id), speaks(role, muted))
        try:
            await self.relay.signal(str(user.id), payload)
        except SignalError as exc:
            raise RoomRuleError("invalid", f"signalling: {exc}") from None

    async def close(self) -> None:
        self.ended = True
        self.broadcast.close()
        for task in list(self._grace.values()):
            task.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.relay is not None:
            await self.relay.close()
            self.relay = None
        for future in self._pending.values():
            future.cancel()


def _raise_refusal(answer: dict[str, Any]) -> None:
    if answer.get("type") == "error":
        # the origin's refusal, with the status its own API gives it
        status = answer.get("status")
        code = next((c for c, s in RoomRuleError.STATUS.items() if s == status), "forbidden")
        raise RoomRuleError(code, str(answer.get("error")))
