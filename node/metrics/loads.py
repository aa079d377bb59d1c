"""The load of each media worker, as the node's metrics (and placement) read it.

``WorkerLoads`` is the small interface between the metrics and whatever runs the media:
today the node's own engine (one worker, ``"node"``, ``NodeLoads`` below); with media
workers (issue #15), their registry reports one ``WorkerLoad`` per worker from its
heartbeats. Rates (packets/s, CPU, fan-out cost) are computed over the time between two
reads, at least ``MIN_WINDOW_SECONDS`` apart, so that two scrapers close together do not
see a rate of a few milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from media.engine import MediaEngine

NODE_WORKER = "node"  # the one-process node's media: the worker label of its numbers
MIN_WINDOW_SECONDS = 1.0


@dataclass(frozen=True)
class WorkerLoad:
    worker: str
    rooms: int
    sessions: int
    listeners: int
    packets_sent: int  # listener packets since the worker started (a counter)
    packets_per_second: float
    cpu_percent: float  # of one core
    fanout_us_per_packet: float | None  # None: nothing sent in the window
    alive: bool


class WorkerLoads(Protocol):
    def loads(self) -> list[WorkerLoad]: ...


class MediaRoom(Protocol):
    """A room with peer connections here: an origin's ``RoomMedia`` or a ``RelayRoom``."""

    def session_counts(self) -> tuple[int, int]: ...


@dataclass(frozen=True)
class _Sample:
    at: float
    packets: int
    fanout_seconds: float
    cpu_seconds: float


@dataclass(frozen=True)
class _Rates:
    packets_per_second: float = 0.0
    cpu_percent: float = 0.0
    fanout_us_per_packet: float | None = None


class NodeLoads:
    """The in-process engine as one worker: its rooms, the relay rooms served here (a
    listener of a remote room is a session on this node too), and the port's fan-out
    meter (media/meter.py)."""

    def __init__(
        self,
        engine: MediaEngine,
        relay_rooms: Callable[[], Sequence[MediaRoom]] = tuple,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        cpu_seconds: Callable[[], float] = time.process_time,
    ) -> None:
        self._engine = engine
        self._relay_rooms = relay_rooms
        self._monotonic = monotonic
        self._cpu_seconds = cpu_seconds
        self._last = self._sample()
        self._rates = _Rates()

    def loads(self) -> list[WorkerLoad]:
        rooms: list[MediaRoom] = [*self._engine.rooms(), *self._relay_rooms()]
        sessions = speaking = 0
        for room in rooms:
            total, talking = room.session_counts()
            sessions += total
            speaking += talking
        now = self._sample()
        if now.at - self._last.at >= MIN_WINDOW_SECONDS:
            self._rates = _rates(self._last, now)
            self._last = now
        rates = self._rates
        return [
            WorkerLoad(
                worker=NODE_WORKER,
                rooms=len(rooms),
                sessions=sessions,
                listeners=sessions - speaking,
                packets_sent=now.packets,
                packets_per_second=rates.packets_per_second,
                cpu_percent=rates.cpu_percent,
                fanout_us_per_packet=rates.fanout_us_per_packet,
                alive=True,
            )
        ]

    def _sample(self) -> _Sample:
        totals = self._engine.port.meter.totals()
        return _Sample(self._monotonic(), totals.packets, totals.seconds, self._cpu_seconds())


def _rates(before: _Sample, after: _Sample) -> _Rates:
    """What happened between two samples (a pure function)."""
    seconds = after.at - before.at
    packets = after.packets - before.packets
    return _Rates(
        packets_per_second=packets / seconds,
        cpu_percent=100.0 * (after.cpu_seconds - before.cpu_seconds) / seconds,
        fanout_us_per_packet=(
            1e6 * (after.fanout_seconds - before.fanout_seconds) / packets if packets else None
        ),
    )
