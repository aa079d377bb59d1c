"""The Redis bus: streams for commands and events, a TTL key per worker as its heartbeat.

Keys (NS = ``salon:<node base URL>``)::

    NS:workers               a set of worker ids that ever registered
    NS:worker:<id>           the worker's last heartbeat (a signed envelope), PX = its TTL
    NS:worker:<id>:commands  a stream: the node's commands to that worker (XADD, MAXLEN ~)
    NS:events                a stream: every worker's events for the node

Consumers read with ``XREAD BLOCK`` from the last id they saw (only what arrives after they
start). The node reads the registry every ``poll`` seconds: a key that expired is a dead
worker. With a heartbeat every 0.3 s and a 1.2 s TTL, a dead worker is noticed 1.2-1.4 s
after its last heartbeat (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from media.worker.bus import Hub, OnDead, OnEvent, Outbox, cancel_loops
from media.worker.protocol import NODE, Command, Event, ProtocolError, Signer, Verifier

logger = logging.getLogger(__name__)

STREAM_MAXLEN = 10_000
BLOCK_MS = 1000


def namespace(node_url: str) -> str:
    return f"salon:{node_url.rstrip('/')}"


class RedisHub(Hub):
    """The node's end: reads the event stream and the registry, writes command streams."""

    def __init__(self, url: str, node_url: str, secret: bytes, poll: float = 0.2) -> None:
        self._redis = redis.Redis.from_url(url)
        self._ns = namespace(node_url)
        self._signer = Signer(secret, NODE)
        self._verifier = Verifier(secret, NODE)
        # heartbeats have their own sequence numbers (a key read late is not a replay of
        # an event read early)
        self._beats = Verifier(secret, NODE)
        self._poll = poll
        self._order = asyncio.Lock()  # seal → XADD, one message at a time (``send``)
        self._alive: set[str] = set()
        self._last_beat: dict[str, bytes] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False  # the loops' own end (a lost cancellation: media/worker/bus.py)
        self._on_event: OnEvent | None = None
        self._on_dead: OnDead | None = None

    @property
    def refused(self) -> int:
        return self._verifier.refused + self._beats.refused

    async def start(self, on_event: OnEvent, on_dead: OnDead) -> None:
        self._on_event, self._on_dead = on_event, on_dead
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise ConnectionError(f"redis: {exc}") from None
        self._tasks = [
            asyncio.create_task(self._read_events(), name="workers-events"),
            asyncio.create_task(self._watch_registry(), name="workers-registry"),
        ]

    async def send(self, worker: str, command: Command) -> None:
        # sealed and added under one lock: the client's pool may carry two concurrent
        # XADDs on two connections, and a later sequence number reaching the stream first
        # would make the worker refuse the earlier one as a replay
        async with self._order:
            sealed = self._signer.seal(worker, command.serialize())
            try:
                await self._redis.xadd(
                    f"{self._ns}:worker:{worker}:commands",
                    {"m": sealed},
                    maxlen=STREAM_MAXLEN,
                    approximate=True,
                )
            except RedisError as exc:
                raise ConnectionError(f"redis: {exc}") from None

    def _deliver(self, raw: bytes, verifier: Verifier) -> None:
        assert self._on_event is not None
        try:
            opened = verifier.open(raw)
            event = Event.parse(opened.body)
        except ProtocolError as exc:
            logger.warning("workers: refused a message on redis: %s", exc)
            return
        if event.kind == "heartbeat":
            self._alive.add(opened.sender)
        self._on_event(opened.sender, event)

    async def _read_events(self) -> None:
        last = "$"
        stream = f"{self._ns}:events"
        while not self._closing:
            try:
                found: Any = await self._redis.xread({stream: last}, block=BLOCK_MS, count=500)
            except RedisError as exc:
                logger.warning("workers: redis event stream: %s", exc)
                await asyncio.sleep(0.5)
                continue
            for _, entries in found or []:
                for entry_id, values in entries:
                    last = entry_id
                    raw = values.get(b"m")
                    if isinstance(raw, bytes):
                        self._deliver(raw, self._verifier)

    async def _watch_registry(self) -> None:
        assert self._on_dead is not None
        while not self._closing:
            try:
                await self._read_registry()
            except RedisError as exc:
                logger.warning("workers: redis registry: %s", exc)
            await asyncio.sleep(self._poll)

    async def _read_registry(self) -> None:
        assert self._on_dead is not None
        members: Any = await self._redis.smembers(f"{self._ns}:workers")
        ids = sorted(m.decode() for m in members)
        if not ids:
            return
        beats: Any = await self._redis.mget([f"{self._ns}:worker:{i}" for i in ids])
        for worker, beat in zip(ids, beats, strict=True):
            if beat is None:
                if worker in self._alive:
                    self._alive.discard(worker)
                    self._on_dead(worker)
                continue
            if self._last_beat.get(worker) != beat:  # the same value is not a new heartbeat
                self._last_beat[worker] = beat
                self._deliver(beat, self._beats)

    async def close(self) -> None:
        self._closing = True
        await cancel_loops(*self._tasks)
        await self._redis.aclose()


class RedisLink(Outbox):
    """A worker's end: its command stream, the event stream, its registry key."""

    def __init__(self, url: str, node_url: str, secret: bytes, worker: str) -> None:
        super().__init__()
        self._redis = redis.Redis.from_url(url)
        self._ns = namespace(node_url)
        self.worker = worker
        self._signer = Signer(secret, worker)
        self._beat_signer = Signer(secret, worker)
        self._verifier = Verifier(secret, worker)
        self._order = asyncio.Lock()  # seal → XADD, one event at a time (``write``)

    @property
    def refused(self) -> int:
        return self._verifier.refused

    async def connect(self) -> None:
        try:
            await self._redis.ping()
            # a fresh stream, read from its start: nothing the node sends after our first
            # heartbeat can be missed
            await self._redis.delete(f"{self._ns}:worker:{self.worker}:commands")
            await self._redis.sadd(f"{self._ns}:workers", self.worker)
        except RedisError as exc:
            raise ConnectionError(f"redis: {exc}") from None

    async def write(self, event: Event) -> None:
        async with self._order:  # stream order = sequence order (RedisHub.send)
            sealed = self._signer.seal(NODE, event.serialize())
            try:
                await self._redis.xadd(
                    f"{self._ns}:events", {"m": sealed}, maxlen=STREAM_MAXLEN, approximate=True
                )
            except RedisError as exc:
                raise ConnectionError(f"redis: {exc}") from None

    async def heartbeat(self, event: Event, ttl: float) -> None:
        sealed = self._beat_signer.seal(NODE, event.serialize())
        try:
            await self._redis.set(f"{self._ns}:worker:{self.worker}", sealed, px=int(ttl * 1000))
        except RedisError as exc:
            raise ConnectionError(f"redis: {exc}") from None

    async def commands(self) -> AsyncIterator[Command]:
        last = "0-0"
        stream = f"{self._ns}:worker:{self.worker}:commands"
        while not self.closing:
            try:
                found: Any = await self._redis.xread({stream: last}, block=BLOCK_MS, count=100)
            except RedisError as exc:
                logger.warning("worker %s: redis: %s", self.worker, exc)
                await asyncio.sleep(0.5)
                continue
            for _, entries in found or []:
                for entry_id, values in entries:
                    if self.closing:
                        return
                    last = entry_id
                    raw = values.get(b"m")
                    if not isinstance(raw, bytes):
                        continue
                    try:
                        yield Command.parse(self._verifier.open(raw).body)
                    except ProtocolError as exc:
                        logger.warning("worker %s: refused a command: %s", self.worker, exc)

    async def close(self) -> None:
        await super().close()
        with contextlib.suppress(RedisError):
            await self._redis.delete(f"{self._ns}:worker:{self.worker}")
        await self._redis.aclose()
