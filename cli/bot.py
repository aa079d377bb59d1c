"""``salon bot``: a headless participant that uses a node exactly as a client does.

It signs in with a bearer token, talks to the room over the room WebSocket (commands and
WebRTC signalling) and carries audio with aiortc (media/client.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from media.client import BotPeer, WavError, read_wav

log = logging.getLogger(__name__)


class BotError(RuntimeError):
    """A problem the user can fix (bad URL, wrong password, unknown room, bad WAV)."""


@dataclass
class BotOptions:
    node: str
    user: str
    password: str
    play: Path | None = None
    record: Path | None = None
    seconds: float | None = None
    ice_addresses: tuple[str, ...] = ()
    stun_servers: tuple[str, ...] = ()
    loss_protection: bool = True  # SALON_LOSS_PROTECTION; False: the bench/loss.py baseline


@dataclass
class BotOutcome:
    packets_received: int = 0
    octets_received: int = 0
    concealed: dict[str, int] = field(default_factory=dict)  # lost frames: how each was filled
    seconds_heard: float = 0.0
    role: str | None = None
    room_url: str = ""
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps(
            {
                "packets_received": self.packets_received,
                "octets_received": self.octets_received,
                "concealed": self.concealed,
                "seconds_heard": round(self.seconds_heard, 2),
                "role": self.role,
                "room_url": self.room_url,
                "errors": self.errors,
            }
        )


def check_wav(path: Path | None) -> None:
    if path is None:
        return
    try:
        read_wav(path)
    except (OSError, WavError) as exc:
        raise BotError(f"cannot read {path}: {exc}") from None


class Bot:
    def __init__(self, options: BotOptions) -> None:
        self.o = options
        self.base = options.node.rstrip("/")
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.peer: BotPeer | None = None
        self.role: str | None = None
        self.room_id = ""
        self.remote_url: str | None = None
        self.stop = asyncio.Event()
        self._cmd = 0

    async def __aenter__(self) -> Bot:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.peer is not None:
            await self.peer.close()
        if self.ws is not None:
            await self.ws.close()
        if self.http is not None:
            await self.http.close()

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        assert self.http is not None
        try:
            async with self.http.request(method, self.base + path, json=body) as resp:
                data = await resp.json(content_type=None)
        except aiohttp.ClientConnectorError as exc:
            raise BotError(f"cannot reach node {self.base}: {exc.os_error}") from None
        except (aiohttp.ClientError, json.JSONDecodeError) as exc:
            raise BotError(f"node {self.base} answered badly: {exc}") from None
        if resp.status >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise BotError(f"{method} {path}: {message or resp.status}")
        return data

    async def sign_in(self) -> None:
        if not self.base.startswith(("http://", "https://")):
            raise BotError(f"--node must be an http(s) URL, not {self.base!r}")
        data = await self.request(
            "POST",
            "/api/auth/token",
            {"username": self.o.user, "password": self.o.password, "label": "salon bot"},
        )
        assert self.http is not None
        self.http.headers["Authorization"] = f"Bearer {data['token']}"

    async def open_room(self, title: str) -> str:
        room = await self.request("POST", "/api/rooms", {"title": title})
        self.room_id = room["id"]
        return str(room["url"])

    def room_from_url(self, room_url: str) -> None:
        parts = urlsplit(room_url)
        node = urlsplit(self.base)
        path = parts.path.rstrip("/").split("/")
        if len(path) < 3 or path[-2] != "rooms" or not path[-1]:
            raise BotError(f"{room_url!r} is not a room URL (…/rooms/ID)")
        if (parts.scheme, parts.netloc) != (node.scheme, node.netloc):
            self.remote_url = room_url  # joined through our own node (docs/federation.md)
            return
        self.room_id = path[-1]

    async def connect(self, speak: bool) -> None:
        assert self.http is not None
        url = f"{self.base}/api/rooms/{self.room_id}/ws"
        if self.remote_url is not None:
            joined = await self.request("POST", "/api/remote-rooms", {"url": self.remote_url})
            self.room_id = joined["id"]
            url = f"{self.base}/api/remote-rooms/{self.room_id}/ws"
        try:
            self.ws = await self.http.ws_connect(url, heartbeat=20)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 404:
                raise BotError(f"no such room: {self.room_id}") from None
            raise BotError(f"cannot join the room: HTTP {exc.status} {exc.message}") from None
        state = await self.ws.receive_json(timeout=10)
        me = state["room"].get("you") or {}
        self.role = me.get("role")
        self.peer = BotPeer(
            self.signal_out,
            play=self.o.play,
            record=self.o.record,
            speak=speak,
            ice_addresses=self.o.ice_addresses,
            stun_servers=self.o.stun_servers,
            protect=self.o.loss_protection,
        )
        await self.peer.start()

    async def signal_out(self, message: dict[str, Any]) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.send_json({"type": "signal", "signal": message})

    async def command(self, action: str, user: str | None = None) -> None:
        if self.ws is None or self.ws.closed:
            return
        self._cmd += 1
        message: dict[str, Any] = {"type": "command", "id": self._cmd, "action": action}
        if user is not None:
            message["user"] = user
        await self.ws.send_json(message)

    async def run_events(self, auto_invite: bool = False) -> None:
        """Follow the room until it ends, we are removed, or ``stop`` is set."""
        assert self.ws is not None and self.peer is not None
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            kind = data.get("type")
            if kind == "signal":
                await self.peer.handle(data["signal"])
            elif kind == "error":
                log.warning("bot: node says: %s", data.get("error"))
            elif kind == "event":
                await self.on_event(data, auto_invite)
        if self.ws.close_code == 4003:
            self.role = "removed"
        self.stop.set()

    async def on_event(self, event: dict[str, Any], auto_invite: bool) -> None:
        kind, who = event.get("event"), event.get("user")
        if kind == "hand_raised" and auto_invite and who != self.o.user:
            await self.command("invite_to_speak", who)
        elif kind == "invited_to_speak" and who == self.o.user:
            await self.command("accept_invite")
        elif kind == "role_changed" and who == self.o.user:
            self.role = event.get("role")
        elif kind == "room_ended":
            self.role = self.role or "listener"

    def outcome(self, room_url: str) -> BotOutcome:
        peer = self.peer
        return BotOutcome(
            packets_received=peer.packets_received if peer else 0,
            octets_received=peer.octets_received if peer else 0,
            concealed=peer.concealed if peer else {},
            seconds_heard=peer.seconds_heard if peer else 0.0,
            role=self.role,
            room_url=room_url,
            errors=list(peer.errors) if peer else [],
        )


async def _until_done(bot: Bot, seconds: float | None, events: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, bot.stop.set)
    waiters = [asyncio.ensure_future(bot.stop.wait()), events]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    waiters[0].cancel()


async def host(options: BotOptions, title: str, auto_invite: bool) -> BotOutcome:
    check_wav(options.play)
    async with Bot(options) as bot:
        await bot.sign_in()
        url = await bot.open_room(title)
        print(url, flush=True)
        await bot.connect(speak=True)
        events = asyncio.create_task(bot.run_events(auto_invite))
        await _until_done(bot, options.seconds, events)
        await bot.command("end")
        await asyncio.sleep(0.2)
        events.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await events
        return bot.outcome(url)


async def listen(options: BotOptions, room_url: str, raise_hand: bool) -> BotOutcome:
    check_wav(options.play)
    async with Bot(options) as bot:
        await bot.sign_in()
        bot.room_from_url(room_url)
        # with a file to play, offer to send from the start: the node answers for the role
        # (listeners get a receive-only answer) and renegotiates when that changes
        await bot.connect(speak=options.play is not None)
        events = asyncio.create_task(bot.run_events())
        if raise_hand:
            await bot.command("raise_hand")
        await _until_done(bot, options.seconds, events)
        await bot.command("leave")
        await asyncio.sleep(0.1)
        events.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await events
        return bot.outcome(room_url)


def run(coro: Any) -> BotOutcome:
    try:
        result: BotOutcome = asyncio.run(coro)
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    return result
