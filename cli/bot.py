"""``salon bot``: a headless participant that uses a node exactly as a client does.

It signs in with a bearer token, talks to the room over the room WebSocket (commands and
WebRTC signalling) and carries audio with aiortc (media/client.py).

When the node closes the socket for a passing reason — 4008 "client too slow; reconnect",
1001 going away, 1011/1012/1013, or a connection lost without a close (1006) — the bot
reconnects after ``RECONNECT_DELAYS`` (bounded), takes the fresh room state and starts a
new peer connection, as docs/api.md tells clients to; its seat (and a host's role) waits
for it meanwhile. It stops for good on 1000 (left, room ended), 4003 (removed) and any
other code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from media.client import BotPeer, IceConfigError, WavError, read_wav, rtc_configuration

log = logging.getLogger(__name__)

#: Close codes after which a client should come back (docs/api.md "Closing").
TRANSIENT_CLOSES = frozenset({4008, 1001, 1006, 1011, 1012, 1013})
#: Seconds before each reconnection attempt; after the last one the bot gives up (≈ 24 s,
#: about a seat's reconnect grace).
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0)
#: Seconds a moved bot waits for its new peer connection before closing the old one.
RETIRE_AFTER = 5.0
GAP_REPORTED = 0.2  # gaps between received packets this long are listed in the outcome
MAX_GAPS = 50


def should_reconnect(close_code: int | None) -> bool:
    """Whether a room socket closed with CLOSE_CODE is worth opening again (None: the
    connection dropped without a close frame, i.e. 1006)."""
    return (1006 if close_code is None else close_code) in TRANSIENT_CLOSES


class BotError(RuntimeError):
    """A problem the user can fix (bad URL, wrong password, unknown room, bad WAV)."""

    def __init__(self, message: str, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent  # False: worth another try (the node is unreachable)


@dataclass
class BotOptions:
    node: str
    user: str
    password: str
    play: Path | None = None
    record: Path | None = None
    seconds: float | None = None
    ice_addresses: tuple[str, ...] = ()
    relay_only: bool = False  # use only TURN-relayed candidates (the node's TURN servers)
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
    reconnects: int = 0
    moves: int = 0  # new peer connections the node asked for (media moved to another worker)
    longest_gap: float = 0.0  # seconds between two received packets, at most
    gaps: list[list[float]] = field(default_factory=list)  # [seconds since first, length]
    # the uplink: the encoder's expected loss (FEC share) now, the peak of the loss the
    # reports showed (percent), how many it followed, whether it goes out as RED
    uplink_fec: dict[str, int] = field(default_factory=dict)

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
                "reconnects": self.reconnects,
                "moves": self.moves,
                "longest_gap": round(self.longest_gap, 3),
                "gaps": self.gaps,
                "uplink_fec": self.uplink_fec,
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
        self._speak = False
        self.reconnects = 0
        # what earlier peer connections heard (a reconnect starts a new one)
        self._packets_before = 0
        self._seconds_before = 0.0
        self._errors_before: list[str] = []
        self._recording: BotPeer | None = None  # a closed peer whose WAV is still open
        self._configuration: Any = None  # the ICE configuration of the last connect
        self.moves = 0
        self._first_packet = 0.0
        self._last_packet = 0.0
        self.longest_gap = 0.0
        self.gaps: list[list[float]] = []
        self._retiring: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Bot:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.peer is not None:
            await self.peer.close()
        if self._recording is not None:
            await self._recording.close()
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
            raise BotError(f"cannot reach node {self.base}: {exc.os_error}", False) from None
        except (aiohttp.ClientError, json.JSONDecodeError) as exc:
            raise BotError(f"node {self.base} answered badly: {exc}") from None
        if resp.status >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise BotError(
                f"{method} {path}: {message or resp.status}",
                permanent=resp.status < 500 and resp.status != 429,
            )
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

    async def open_room(self, title: str, record: bool = False) -> str:
        body: dict[str, Any] = {"title": title}
        if record:
            body["record"] = True  # the node refuses (4xx, BotError) when it may not record
        room = await self.request("POST", "/api/rooms", body)
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
        self._speak = speak
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
            raise BotError(
                f"cannot join the room: HTTP {exc.status} {exc.message}",
                permanent=exc.status < 500 and exc.status != 429,
            ) from None
        state = await self.ws.receive_json(timeout=10)
        if state.get("type") != "state":
            raise BotError(f"the node did not send the room state first: {state.get('type')}")
        me = state["room"].get("you") or {}
        self.role = me.get("role")
        # the node's STUN/TURN servers with fresh TURN credentials, as the web client does
        ice = await self.request("GET", "/api/ice-servers")
        try:
            configuration = rtc_configuration(ice, relay_only=self.o.relay_only)
        except IceConfigError as exc:
            raise BotError(f"GET /api/ice-servers: {exc}") from None
        urls = [u for s in configuration.iceServers or [] for u in s.urls]
        if configuration.iceTransportPolicy is RTCIceTransportPolicy.RELAY and not any(
            u.startswith("turn") for u in urls
        ):
            raise BotError("--relay-only: the node offers no TURN server (turn_servers)")
        first = self.reconnects == 0 and self._recording is None
        self._configuration = configuration
        self.peer = BotPeer(
            self.signal_out,
            play=self.o.play,
            record=self.o.record if first else None,
            speak=speak,
            ice_addresses=self.o.ice_addresses,
            configuration=configuration,
            protect=self.o.loss_protection,
            on_packet=self._packet,
        )
        if self._recording is not None:
            self.peer.take_recording(self._recording)
            self._recording = None
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
        """Follow the room until it ends, we are removed, or ``stop`` is set; reconnect
        when the socket closes for a passing reason."""
        while True:
            await self._follow(auto_invite)
            assert self.ws is not None
            code = self.ws.close_code
            if code == 4003:
                self.role = "removed"
            if self.stop.is_set() or not should_reconnect(code):
                log.info("bot: the room socket closed (%s); done", code)
                break
            log.warning("bot: the room socket closed (%s); reconnecting", code)
            if not await self.reconnect():
                break
        self.stop.set()

    async def reconnect(self) -> bool:
        """A new socket and peer connection, within ``RECONNECT_DELAYS``; False: gave up."""
        for attempt, delay in enumerate(RECONNECT_DELAYS, 1):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
            if self.stop.is_set():
                return False
            try:
                await self._rejoin()
            except BotError as exc:
                log.warning("bot: reconnect %d/%d: %s", attempt, len(RECONNECT_DELAYS), exc)
                if exc.permanent:
                    return False
                continue
            except (aiohttp.ClientError, OSError, TimeoutError, KeyError) as exc:
                log.warning("bot: reconnect %d/%d: %r", attempt, len(RECONNECT_DELAYS), exc)
                continue
            self.reconnects += 1
            log.info("bot: back in the room as %s", self.role)
            return True
        log.error("bot: could not reconnect after %d attempts", len(RECONNECT_DELAYS))
        return False

    async def _rejoin(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        old, self.peer = self.peer, None
        if old is not None:
            self._packets_before += old.packets_received
            self._seconds_before += old.seconds_heard
            self._errors_before += old.errors
            await old.close(keep_recording=True)  # the next peer goes on writing its WAV
            self._recording = old
        await self.connect(self._speak)

    async def _follow(self, auto_invite: bool) -> None:
        """Handle one socket's messages until it closes."""
        assert self.ws is not None and self.peer is not None
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            kind = data.get("type")
            if kind == "signal" and data["signal"].get("type") == "reconnect":
                await self._move_peer()
            elif kind == "signal":
                await self.peer.handle(data["signal"])
            elif kind == "error":
                log.warning("bot: node says: %s", data.get("error"))
            elif kind == "event":
                await self.on_event(data, auto_invite)

    def _packet(self) -> None:
        now = time.monotonic()
        if self._last_packet:
            gap = now - self._last_packet
            self.longest_gap = max(self.longest_gap, gap)
            if gap >= GAP_REPORTED and len(self.gaps) < MAX_GAPS:
                self.gaps.append([round(self._last_packet - self._first_packet, 3), round(gap, 3)])
        else:
            self._first_packet = now
        self._last_packet = now

    async def _move_peer(self) -> None:
        """The node moved our media (another worker): a new peer connection first, then
        the old one goes once the new one is connected (make-before-break)."""
        old = self.peer
        self.peer = BotPeer(
            self.signal_out,
            speak=old.speak if old is not None else self._speak,
            play=self.o.play,
            ice_addresses=self.o.ice_addresses,
            configuration=self._configuration,
            protect=self.o.loss_protection,
            on_packet=self._packet,
        )
        self.moves += 1
        await self.peer.start()
        if old is not None:
            task = asyncio.ensure_future(self._retire(old, self.peer))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _retire(self, old: BotPeer, new: BotPeer) -> None:
        with contextlib.suppress(TimeoutError, ConnectionError):
            await new.wait_connected(RETIRE_AFTER)
        self._packets_before += old.packets_received
        self._seconds_before += old.seconds_heard
        self._errors_before += old.errors
        new.take_recording(old)
        await old.close()

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
            packets_received=self._packets_before + (peer.packets_received if peer else 0),
            octets_received=peer.octets_received if peer else 0,
            concealed=peer.concealed if peer else {},
            seconds_heard=self._seconds_before + (peer.seconds_heard if peer else 0.0),
            role=self.role,
            room_url=room_url,
            errors=self._errors_before + (list(peer.errors) if peer else []),
            reconnects=self.reconnects,
            moves=self.moves,
            longest_gap=self.longest_gap,
            gaps=self.gaps,
            uplink_fec=(
                {
                    "percent": peer.uplink_fec_percent,
                    "peak": peer.uplink_loss.peak,
                    "reports": peer.uplink_loss.reports,
                    "red": peer.uplink_red,
                }
                if peer
                else {}
            ),
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


async def host(
    options: BotOptions, title: str, auto_invite: bool, record_room: bool = False
) -> BotOutcome:
    check_wav(options.play)
    async with Bot(options) as bot:
        await bot.sign_in()
        url = await bot.open_room(title, record=record_room)
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
