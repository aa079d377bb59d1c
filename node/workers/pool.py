"""The node's view of its media workers: who is alive, their load, and commands to them.

A worker is known from its first ``hello`` or ``heartbeat`` (media/worker/protocol.py) and
is gone when the bus says so (its local connection ended, or its Redis heartbeat key
expired). A gone worker id is never used again: a restarted worker registers anew.
Commands are calls: ``call`` waits for the worker's ``result`` (or ``command_timeout``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from media.worker.bus import Hub
from media.worker.protocol import Command, Event, ProtocolError
from node.metrics.loads import WorkerLoad

log = logging.getLogger(__name__)


class WorkerCommandError(RuntimeError):
    """A worker refused a command, did not answer in time, or cannot be reached."""


@dataclass
class WorkerState:
    id: str
    advertise: str = ""
    media_port: int = 0
    pid: int = 0
    alive: bool = True
    draining: bool = False
    load: dict[str, Any] = field(default_factory=dict)
    last_heard: float = field(default_factory=time.monotonic)
    beats: int = 0  # heartbeats heard

    @property
    def ready(self) -> bool:
        """Known address and alive: may carry sessions."""
        return self.alive and bool(self.advertise) and self.media_port > 0

    def as_load(self) -> WorkerLoad:
        """The last heartbeat's load, as the node's metrics read it (node/metrics)."""
        load = self.load

        def count(key: str) -> int:
            value = load.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        def rate(key: str) -> float | None:
            value = load.get(key)
            return float(value) if isinstance(value, int | float) and value is not True else None

        return WorkerLoad(
            worker=self.id,
            rooms=count("rooms"),
            sessions=count("sessions"),
            listeners=count("listeners"),
            packets_sent=count("packets_sent"),
            packets_per_second=rate("packets_per_second") or 0.0,
            cpu_percent=rate("cpu_percent") or 0.0,
            fanout_us_per_packet=rate("fanout_us_per_packet"),
            alive=self.alive,
        )

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "address": f"{self.advertise}:{self.media_port}",
            "alive": self.alive,
            "draining": self.draining,
            "load": self.load,
        }


def least_loaded(
    workers: list[WorkerState], placed: dict[str, int], exclude: frozenset[str] = frozenset()
) -> WorkerState | None:
    """The ready, not draining worker with the fewest sessions the node placed on it."""
    candidates = [w for w in workers if w.ready and not w.draining and w.id not in exclude]
    if not candidates:
        return None
    return min(candidates, key=lambda w: (placed.get(w.id, 0), w.id))


class WorkerPool:
    def __init__(
        self,
        hub: Hub,
        on_event: Callable[[str, Event], None],
        on_gone: Callable[[str], None],
        command_timeout: float = 5.0,
        max_workers: int = 64,
    ) -> None:
        self.hub = hub
        self._on_event = on_event
        self._on_gone = on_gone
        self._timeout = command_timeout
        self._max = max_workers
        self._workers: dict[str, WorkerState] = {}
        self._gone: set[str] = set()
        self._calls: dict[int, tuple[str, asyncio.Future[str]]] = {}
        self._next_id = 0
        self.ready = asyncio.Event()  # at least one worker can take sessions

    async def start(self) -> None:
        await self.hub.start(self._event, self._dead)

    def workers(self) -> list[WorkerState]:
        return list(self._workers.values())

    def get(self, worker: str) -> WorkerState | None:
        return self._workers.get(worker)

    async def call(self, worker: str, kind: str, **fields: Any) -> None:
        state = self._workers.get(worker)
        if state is None or not state.alive:
            raise WorkerCommandError(f"worker {worker} is gone")
        self._next_id += 1
        try:
            command = Command(kind, self._next_id, fields)
        except ProtocolError as exc:
            raise WorkerCommandError(str(exc)) from None
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._calls[command.id] = (worker, future)
        try:
            await self.hub.send(worker, command)
            error = await asyncio.wait_for(future, self._timeout)
        except (ConnectionError, OSError) as exc:
            raise WorkerCommandError(f"worker {worker}: {exc}") from None
        except TimeoutError:
            raise WorkerCommandError(f"worker {worker} did not answer {kind}") from None
        finally:
            self._calls.pop(command.id, None)
        if error:
            raise WorkerCommandError(error)

    def _event(self, worker: str, event: Event) -> None:
        if worker in self._gone:
            return
        state = self._workers.get(worker)
        if state is None:
            if event.kind not in ("hello", "heartbeat") or len(self._workers) >= self._max:
                return
            state = self._workers[worker] = WorkerState(worker)
            log.info("workers: %s registered", worker)
        state.last_heard = time.monotonic()
        if event.kind == "hello":
            state.advertise = event.fields["advertise"]
            state.media_port = event.fields["media_port"]
            state.pid = event.fields["pid"]
        elif event.kind == "heartbeat":
            load = event.fields["load"]
            state.load = load
            state.beats += 1
            if not state.advertise and isinstance(load.get("advertise"), str):
                state.advertise = load["advertise"][:100]
                port = load.get("media_port")
                state.media_port = port if isinstance(port, int) and 0 < port < 65536 else 0
        elif event.kind == "result":
            call = self._calls.get(event.fields["command"])
            if call is not None and call[0] == worker and not call[1].done():
                call[1].set_result(event.fields["error"])
            return
        else:
            self._on_event(worker, event)
        if state.ready:
            self.ready.set()

    def _dead(self, worker: str) -> None:
        state = self._workers.pop(worker, None)
        self._gone.add(worker)
        if state is None:
            return
        state.alive = False
        log.warning("workers: %s is gone", worker)
        for to, future in self._calls.values():
            if to == worker and not future.done():
                future.set_result(f"worker {worker} is gone")
        self._on_gone(worker)

    def drain(self, worker: str) -> WorkerState:
        state = self._workers.get(worker)
        if state is None:
            raise KeyError(worker)
        state.draining = True
        return state

    async def close(self) -> None:
        await self.hub.close()
