"""The bus between a node and its media workers: one interface, two implementations.

- local (media/worker/local.py): a Unix socket, for ``salon serve --media-workers N``
  without Redis; a worker's death is its connection's end;
- Redis (media/worker/redis_bus.py): a command stream per worker, one event stream for the
  node, and a registry key per worker whose TTL is its heartbeat.

Both carry the same signed envelopes (media/worker/protocol.py). The node's end is a
``Hub``; a worker's end is an ``Outbox`` (events queue up without blocking the caller —
the media engine's callbacks are synchronous — and one task writes them in order).

Loops that talk to Redis end on a flag as well as on cancellation. Under Python 3.11,
``asyncio.wait_for`` drops a cancellation that arrives just as the awaited call finishes
(CPython gh-86296, fixed in 3.12), and redis-py sends every command through ``wait_for``
while ``socket_timeout`` is set (its default is 5 s). A loop that only waited for its
cancellation would then read on forever, and its owner's ``close()`` would never return.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from media.worker.protocol import Command, Event

logger = logging.getLogger(__name__)

OnEvent = Callable[[str, Event], None]  # (worker id, event)
OnDead = Callable[[str], None]  # a worker is gone (connection ended or heartbeat expired)
OUTBOX_SIZE = 10_000  # events a worker queues for a slow bus before dropping levels
RECANCEL_SECONDS = 0.1


async def cancel_loops(*tasks: asyncio.Task[None]) -> None:
    """Cancel TASKS (loops with nothing to clean up) and wait until every one has ended,
    cancelling again while one runs on: a cancellation lost in ``wait_for`` (above) must
    not leave the caller waiting for the loop's next turn, or forever."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            logger.warning("workers: a bus loop ended with %r", task.exception())


class Hub(abc.ABC):
    """The node's end of the bus."""

    @abc.abstractmethod
    async def start(self, on_event: OnEvent, on_dead: OnDead) -> None: ...

    @abc.abstractmethod
    async def send(self, worker: str, command: Command) -> None:
        """Deliver COMMAND to WORKER (ConnectionError when it cannot be reached)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @property
    @abc.abstractmethod
    def refused(self) -> int:
        """Messages refused so far (bad MAC, replayed, misaddressed)."""


class Outbox(abc.ABC):
    """A worker's end of the bus."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue(OUTBOX_SIZE)
        self._writer_task: asyncio.Task[None] | None = None
        self.closing = False  # set by ``stop`` / ``close``: loops end at their next turn

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @property
    @abc.abstractmethod
    def refused(self) -> int:
        """Commands refused so far (bad MAC, replayed, misaddressed)."""

    @abc.abstractmethod
    async def write(self, event: Event) -> None: ...

    @abc.abstractmethod
    async def heartbeat(self, event: Event, ttl: float) -> None:
        """Tell the node we live (Redis: the registry key, expiring after TTL seconds)."""

    @abc.abstractmethod
    def commands(self) -> AsyncIterator[Command]: ...

    def send_nowait(self, event: Event) -> None:
        if self._writer_task is None:
            self._writer_task = asyncio.ensure_future(self._drain())
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            logger.warning("worker: event queue full; dropped a %s event", event.kind)

    def stop(self) -> None:
        """Ask the command stream and the writer to end (a signal handler's first step)."""
        self.closing = True

    async def _drain(self) -> None:
        while not self.closing:
            event = await self._queue.get()
            try:
                await self.write(event)
            except (ConnectionError, OSError) as exc:
                logger.warning("worker: cannot send a %s event: %r", event.kind, exc)

    async def close(self) -> None:
        self.stop()
        if self._writer_task is not None:
            await cancel_loops(self._writer_task)
