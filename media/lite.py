"""The node's side of ICE: an ICE-lite agent (RFC 8445 §2.5) on the shared media port.

aiortc's ``RTCIceGatherer`` builds an aioice ``Connection`` (a full agent with its own UDP
socket per host candidate). ``RTCIceTransport`` and ``RTCDtlsTransport`` use only a small
part of it: ``local_username``/``local_password``, ``local_candidates``,
``remote_username``/``remote_password``/``remote_is_lite``/``ice_controlling``,
``add_remote_candidate``, ``remote_candidates``, ``gather_candidates``, ``connect``,
``send``, ``recv``, ``get_event`` and ``close``. ``LiteConnection`` implements that part
over the node's ``MediaPort`` (media/port.py):

- ``gather_candidates`` offers host candidates on the port only: one UDP candidate per ice
  address, and a passive ICE-TCP candidate (RFC 6544 §4.5) per address when TCP is on;
- the client is the controlling agent and nominates (``USE-CANDIDATE``); ``connect``
  returns once it has (RFC 8445 §7.3.1.5), or fails after ``NOMINATION_TIMEOUT``;
- no checks and no consent requests are sent (a lite agent sends none: consent freshness,
  RFC 7675, is the full agent's job); instead the session closes when nothing at all (no
  STUN, DTLS or SRTP) arrived from the client for ``MediaPort.silence_timeout`` seconds
  (30 by default: browsers send a consent check every ~5 s, RFC 7675 §5.1, and a
  listener's RTCP receiver reports besides).

``serving(port, addresses)`` scopes the replacement as media/ice.py scopes its host address
override: aiortc's module-level ``RTCIceGatherer`` name is replaced once by a factory that
reads a context variable, so only the node's own peer connections (answering inside that
block) become lite; test clients and bots in the same process stay full aioice agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiortc.rtcpeerconnection
from aioice import Candidate, ConnectionClosed, stun
from aioice.candidate import candidate_foundation, candidate_priority
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceParameters

from media.port import MediaPath, MediaPort

logger = logging.getLogger(__name__)

NOMINATION_TIMEOUT = 30.0  # from gathering to the client's nomination
QUEUE_LIMIT = 256  # datagrams waiting for the DTLS transport; beyond: dropped
_NOTHING: tuple[bytes | None, ...] = ()  # an empty queue (lists are made on first use)
# RFC 6544 §4.2: local preference = 2^13 * direction-pref + other-pref; passive is 2 for
# host candidates after active (6) and S-O (4). UDP keeps the full 65535 and wins.
TCP_LOCAL_PREF = (2 << 13) + 8191


@dataclass(frozen=True)
class Serving:
    port: MediaPort
    addresses: tuple[str, ...]


_SERVING: contextvars.ContextVar[Serving | None] = contextvars.ContextVar(
    "salon_lite_serving", default=None
)
_original_gatherer: type[RTCIceGatherer] | None = None


class LiteConnection:
    """An ICE-lite session on the shared port, shaped as aioice's ``Connection``."""

    def __init__(self, port: MediaPort, addresses: tuple[str, ...]) -> None:
        self._port = port
        self._addresses = addresses
        self.local_username, self.local_password = port.new_credentials()
        self._key = self.local_password.encode("utf8")
        self.remote_username: str | None = None
        self.remote_password: str | None = None
        self.remote_is_lite = False
        self.ice_controlling = False  # aiortc sets it; a lite agent is always controlled
        self._local: list[Candidate] = []
        self._remote: list[Candidate] = []
        # Datagrams for aiortc's DTLS reader, and its one waiter. Not an asyncio.Queue or
        # Event: each of those allocates a deque block (≈ 0.7 KB) per connection at once,
        # five per idle listener; a list is made when a datagram waits, a future when
        # someone waits (docs/performance.md, "Memory per idle listener").
        self._queue: list[bytes | None] | tuple[bytes | None, ...] = _NOTHING
        self._reader: asyncio.Future[None] | None = None
        self._nominated = False
        self._nomination: asyncio.Future[None] | None = None
        self.selected: MediaPath | None = None
        self.last_heard = time.monotonic()
        self.dropped = 0
        self._closed = False
        self._event: asyncio.Future[ConnectionClosed] | None = None
        self._watchdog: asyncio.TimerHandle | None = None  # a timer, not a task: lighter
        self._closing: asyncio.Future[None] | None = None  # close() after the silence

    # ---- what aiortc calls -------------------------------------------------------------------

    @property
    def local_candidates(self) -> list[Candidate]:
        return list(self._local)

    @property
    def remote_candidates(self) -> list[Candidate]:
        return list(self._remote)

    async def add_remote_candidate(self, candidate: Candidate | None) -> None:
        """Kept for aiortc's statistics only: a lite agent learns addresses from checks."""
        if candidate is not None and len(self._remote) < 16:
            self._remote.append(candidate)

    async def gather_candidates(self) -> None:
        if self._local or self._closed:
            return
        port = self._port
        addresses = tuple(dict.fromkeys(self._addresses + port.public_addresses))
        # (transport, port, priority, tcptype): UDP, then passive ICE-TCP (RFC 6544) if open
        kinds: list[tuple[str, int, int, str | None]] = [
            ("udp", port.udp_port, candidate_priority(1, "host"), None)
        ]
        if port.tcp_port:
            priority = candidate_priority(1, "host", TCP_LOCAL_PREF)
            kinds.append(("tcp", port.tcp_port, priority, "passive"))
        for transport, number, priority, tcptype in kinds:
            for address in addresses:
                self._local.append(
                    Candidate(
                        foundation=candidate_foundation("host", transport, address),
                        component=1,
                        transport=transport,
                        priority=priority,
                        host=address,
                        port=number,
                        type="host",
                        tcptype=tcptype,
                    )
                )
        port.register(self)
        self.last_heard = time.monotonic()
        self._watch()

    async def connect(self) -> None:
        if self.remote_username is None or self.remote_password is None:
            raise ConnectionError("Remote username or password is missing")
        if not self._nominated and self._nomination is None:
            self._nomination = asyncio.get_running_loop().create_future()
        try:
            if self._nomination is not None:
                await asyncio.wait_for(asyncio.shield(self._nomination), NOMINATION_TIMEOUT)
        except TimeoutError:
            raise ConnectionError("ICE-lite: the client nominated no path") from None
        if self._closed:
            raise ConnectionError("ICE-lite: closed")

    async def send(self, data: bytes) -> None:
        path = self.selected
        if path is None or self._closed:
            raise ConnectionError("Cannot send data, not connected")
        self._port.send(data, path)

    async def recv(self) -> bytes:
        while not self._queue:
            reader = self._reader = asyncio.get_running_loop().create_future()
            try:
                await reader
            finally:
                self._reader = None
        queue = self._queue
        data = queue.pop(0)  # type: ignore[union-attr]  # non-empty: a list
        if not queue:
            self._queue = _NOTHING  # an idle connection keeps no list
        if data is None:
            raise ConnectionError("Connection lost while receiving data")
        return data

    async def get_event(self) -> ConnectionClosed | None:
        if self._closed:
            return None
        if self._event is None or self._event.cancelled():  # (its waiter was cancelled)
            self._event = asyncio.get_running_loop().create_future()
        return await self._event  # one waiter (aiortc's monitor): no shield needed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._port.unregister(self)
        self.selected = None
        self._nominate()  # wakes a pending connect(), which then fails
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._push(None)  # the wake-up of a pending recv(), even when the queue is full
        if self._event is None or self._event.cancelled():
            self._event = asyncio.get_running_loop().create_future()
        if not self._event.done():
            self._event.set_result(ConnectionClosed())

    # ---- what the port calls -----------------------------------------------------------------

    def authentic(self, message: stun.Message) -> bool:
        _, _, remote = str(message.attributes["USERNAME"]).partition(":")
        if self.remote_username is not None and remote != self.remote_username:
            return False
        return message.check_message_integrity(self._key)

    def binding(self, path: MediaPath, nominated: bool) -> None:
        self.last_heard = time.monotonic()
        if nominated and self.selected is not path:
            if self.selected is not None:
                logger.debug("ice-lite [%s] path moved to %s", self.local_username, path.addr)
            self.selected = path
            self._nominate()

    def data_received(self, data: bytes, path: MediaPath) -> None:
        self.last_heard = time.monotonic()
        if len(self._queue) >= QUEUE_LIMIT:
            self.dropped += 1
            return
        self._push(data)

    def path_lost(self, path: MediaPath) -> None:
        if self.selected is path:
            self.selected = None

    def _push(self, data: bytes | None) -> None:
        queue = self._queue
        if isinstance(queue, tuple):
            queue = self._queue = []
        queue.append(data)
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    def _nominate(self) -> None:
        self._nominated = True
        nomination = self._nomination
        if nomination is not None and not nomination.done():
            nomination.set_result(None)

    # ---- the fan-out's fast path -------------------------------------------------------------

    @property
    def port(self) -> MediaPort:
        return self._port

    def _watch(self) -> None:
        """Close the session when the client has been silent for the port's timeout
        (a timer that re-arms itself: no task and coroutine frame per connection)."""
        self._watchdog = None
        if self._closed:
            return
        limit = self._port.silence_timeout
        quiet = time.monotonic() - self.last_heard
        if quiet >= limit:
            logger.info("ice-lite [%s] client silent for %.0f s", self.local_username, quiet)
            self._closing = asyncio.ensure_future(self.close())
            return
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(limit - quiet + 0.05, self._watch)


class LiteGatherer(RTCIceGatherer):
    """aiortc's gatherer with a ``LiteConnection`` inside; its parameters say ``ice-lite``."""

    def __init__(self, serving: Serving, **kwargs: Any) -> None:
        kwargs["iceServers"] = []  # the lite agent gathers nothing from servers
        kwargs.pop("local_username", None)  # every transport gets its own unique ufrag
        kwargs.pop("local_password", None)
        super().__init__(**kwargs)
        self._connection = LiteConnection(serving.port, serving.addresses)  # type: ignore[assignment]

    def getLocalParameters(self) -> RTCIceParameters:
        parameters = super().getLocalParameters()
        parameters.iceLite = True
        return parameters


def _make_gatherer(*args: Any, **kwargs: Any) -> RTCIceGatherer:
    serving = _SERVING.get()
    assert _original_gatherer is not None
    if serving is None:
        return _original_gatherer(*args, **kwargs)
    return LiteGatherer(serving, **kwargs)


def install() -> None:
    """Route aiortc's gatherer construction through the context-aware factory (idempotent)."""
    global _original_gatherer
    if _original_gatherer is not None:
        return
    current = aiortc.rtcpeerconnection.RTCIceGatherer
    if not isinstance(current, type) or not issubclass(current, RTCIceGatherer):
        raise RuntimeError("aiortc.rtcpeerconnection.RTCIceGatherer changed: see media/lite.py")
    _original_gatherer = current
    aiortc.rtcpeerconnection.RTCIceGatherer = _make_gatherer  # type: ignore[misc,assignment]


def is_installed() -> bool:
    return aiortc.rtcpeerconnection.RTCIceGatherer is _make_gatherer


@contextlib.contextmanager
def serving(port: MediaPort, addresses: tuple[str, ...]) -> Iterator[None]:
    """Peer connections created in this block answer as ICE-lite agents on PORT."""
    install()
    token = _SERVING.set(Serving(port, addresses))
    try:
        yield
    finally:
        _SERVING.reset(token)
