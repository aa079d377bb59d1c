"""The 20 ms clock that drives every room's mixer and fan-out, and its lateness counters.

Two schedulers with one interface (``start(room)``, ``stop(room)``, ``close()``, ``stats``):

- ``ThreadTicker`` (the default, ``media_tick = "thread"``): one thread per node with its
  own timer on absolute deadlines; each pass ticks every room with media. Handshakes,
  signalling, JSON and database work on the event loop cannot hold a tick back, because
  the interpreter hands the GIL to a waiting thread at every switch interval (the node
  lowers it to ``SWITCH_INTERVAL``) and at every blocking call the loop makes. What a tick
  touches from this thread, and why that is safe, is listed in ``media/engine.py``.
- ``LoopTicker`` (``media_tick = "loop"``): one asyncio task per room, as Salon did before
  issue 18 — kept as the benchmark's baseline and as a fallback.

A pass that starts a whole slot (20 ms) or more after its deadline is counted late; one
more than ``SKIP_AFTER`` behind skips the missed slots instead of bursting them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.02
SKIP_AFTER = 0.1  # that far behind, the clock skips ahead instead of bursting ticks
LATE_LOG_EVERY = 10.0  # seconds between two "late ticks" warnings
SWITCH_INTERVAL = 0.0005  # sys.setswitchinterval for a node ticking on its own thread


class Tickable(Protocol):
    def tick(self) -> None: ...


@dataclass
class TickStats:
    """Counters of one node's clock, readable from any thread (plain ints and floats)."""

    ticks: int = 0  # passes run
    late: int = 0  # passes that started at least one slot after their deadline
    skipped: int = 0  # times the clock gave up on missed slots
    max_lateness: float = 0.0  # seconds, worst start after a deadline since start
    max_duration: float = 0.0  # seconds, the longest pass (every room's tick)
    errors: int = 0  # room ticks that raised (logged; the clock goes on)

    def record(self, lateness: float) -> bool:
        """Count one pass that started LATENESS seconds after its deadline; True if late."""
        self.ticks += 1
        if lateness > self.max_lateness:
            self.max_lateness = lateness
        if lateness >= TICK_SECONDS:
            self.late += 1
            return True
        return False

    def took(self, seconds: float) -> None:
        if seconds > self.max_duration:
            self.max_duration = seconds

    def snapshot(self) -> dict[str, float | int]:
        return {
            "ticks": self.ticks,
            "late_ticks": self.late,
            "skipped": self.skipped,
            "max_lateness_ms": round(self.max_lateness * 1000, 1),
            "max_tick_ms": round(self.max_duration * 1000, 1),
            "tick_errors": self.errors,
        }


class LateLog:
    """At most one warning per ``LATE_LOG_EVERY`` seconds about late ticks."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last = -LATE_LOG_EVERY
        self._unlogged = 0

    def late(self, lateness: float) -> None:
        self._unlogged += 1
        now = self._clock()
        if now - self._last >= LATE_LOG_EVERY:
            logger.warning(
                "media clock: %d late tick(s), the last %.0f ms behind",
                self._unlogged,
                lateness * 1000,
            )
            self._last, self._unlogged = now, 0


class CollectorInSlack:
    """The cyclic garbage collector, run by the tick thread right after a pass.

    CPython collects whenever an allocation trips a threshold, in whichever thread, and
    every thread waits for it: during a join storm collections of 5-35 ms (young) and
    20-190 ms (full) landed at random moments and delayed ticks. While the tick thread
    runs, automatic collection is off and this class applies CPython's own schedule (the
    ``gc.get_threshold()`` counts, and a full collection only once the objects that
    reached the oldest generation since the last one outnumber a quarter of those it
    kept) at the start of the 20 ms of slack after a pass. Collections are no fewer and no
    shorter; they start where a tick has the most time before its next deadline.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._was_enabled = False
        self._kept = 0  # objects in the oldest generation after the last full collection
        self._oldest = 0  # its size when last counted (counting takes a few ms: once a second)
        self._counted_at = -1.0
        self.collections = [0, 0, 0]

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()

    def stop(self) -> None:
        if self._was_enabled:
            gc.enable()

    def after_pass(self) -> None:
        count0, count1, count2 = gc.get_count()
        threshold0, threshold1, threshold2 = gc.get_threshold()
        if threshold0 == 0 or count0 < threshold0:
            return  # no collection due (or switched off altogether by the operator)
        if count2 >= threshold2:
            now = self._clock()
            if now - self._counted_at >= 1.0:
                self._oldest, self._counted_at = len(gc.get_objects(2)), now
            if self._oldest - self._kept > self._kept // 4:
                gc.collect(2)
                self._kept = self._oldest = len(gc.get_objects(2))
                self.collections[2] += 1
                return
        if count1 >= threshold1:
            gc.collect(1)
            self.collections[1] += 1
        else:
            gc.collect(0)
            self.collections[0] += 1


class ThreadTicker:
    """One thread ticks every room on absolute 20 ms deadlines."""

    mode = "thread"

    def __init__(
        self,
        period: float = TICK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        collector: CollectorInSlack | None = None,
    ) -> None:
        """COLLECTOR runs the garbage collector in the slack after each pass (the node's
        clock has one; None leaves collection to CPython)."""
        self._period = period
        self._clock = clock
        self._sleep = sleep
        self._collector = collector
        self._rooms: tuple[Tickable, ...] = ()  # replaced, never mutated: read without a lock
        self._lock = threading.Lock()
        self._active = threading.Event()  # set while there is a room to tick
        self._closing = False
        self._thread: threading.Thread | None = None
        self._late_log = LateLog(clock)
        self.stats = TickStats()

    def start(self, room: Tickable) -> None:
        with self._lock:
            if self._closing or room in self._rooms:
                return
            self._rooms = (*self._rooms, room)
            self._active.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="media-tick", daemon=True)
                self._thread.start()

    async def stop(self, room: Tickable) -> None:
        """ROOM is not ticked again after the pass in progress (if any)."""
        with self._lock:
            self._rooms = tuple(r for r in self._rooms if r is not room)
            if not self._rooms:
                self._active.clear()

    async def close(self) -> None:
        with self._lock:
            self._closing = True
            self._rooms = ()
            self._active.set()  # wake the thread so that it sees _closing
            thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, 5.0)

    def _run(self) -> None:
        collector = self._collector
        collecting = False
        try:
            self._ticks(collector, collecting)
        finally:
            if collector is not None:
                collector.stop()

    def _ticks(self, collector: CollectorInSlack | None, collecting: bool) -> None:
        deadline = self._clock()
        while True:
            if not self._rooms:
                if collector is not None and collecting:
                    collector.stop()  # idle: CPython collects as usual
                    collecting = False
                self._active.wait()
                deadline = self._clock()
            if self._closing:
                return
            if collector is not None and not collecting:
                collector.start()
                collecting = True
            delay = deadline - self._clock()
            if delay > 0:
                self._sleep(delay)
            started = self._clock()
            deadline = _account(self.stats, self._late_log, started, deadline)
            for room in self._rooms:
                try:
                    room.tick()
                except Exception:  # one room's bug must not silence every room of the node
                    self.stats.errors += 1
                    logger.exception("media clock: a room's tick failed")
            self.stats.took(self._clock() - started)
            if collector is not None:
                collector.after_pass()
            deadline += self._period


class LoopTicker:
    """The baseline: one asyncio task per room on the event loop (Salon before issue 18)."""

    mode = "loop"

    def __init__(
        self, period: float = TICK_SECONDS, clock: Callable[[], float] | None = None
    ) -> None:
        self._period = period
        self._clock = clock
        self._tasks: dict[Tickable, asyncio.Task[None]] = {}
        self._late_log = LateLog(clock or time.monotonic)
        self.stats = TickStats()

    def start(self, room: Tickable) -> None:
        if room not in self._tasks:
            self._tasks[room] = asyncio.ensure_future(self._run(room))

    async def stop(self, room: Tickable) -> None:
        task = self._tasks.pop(room, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        for room in list(self._tasks):
            await self.stop(room)

    async def _run(self, room: Tickable) -> None:
        loop = asyncio.get_running_loop()
        clock = self._clock or loop.time
        deadline = clock()
        while True:
            started = clock()
            deadline = _account(self.stats, self._late_log, started, deadline)
            room.tick()
            self.stats.took(clock() - started)
            deadline += self._period
            await asyncio.sleep(max(0.0, deadline - clock()))


def _account(stats: TickStats, late_log: LateLog, started: float, deadline: float) -> float:
    """Record a pass starting at STARTED for DEADLINE; the deadline to keep counting from.

    Far behind (a stalled loop, a long pause), the missed slots are skipped, not burst.
    """
    lateness = started - deadline
    if stats.record(lateness):
        late_log.late(lateness)
    if lateness > SKIP_AFTER:
        stats.skipped += 1
        return started
    return deadline


Ticker = ThreadTicker | LoopTicker


def steady_process() -> None:
    """Process-wide settings that keep a tick thread on time; call once the node is built.

    - The GIL goes to a waiting thread after ``SWITCH_INTERVAL`` (CPython's default is
      5 ms): the tick thread's wait for it while the loop runs Python is that short.
    - Everything alive now (modules, the app, the node's objects) moves to the cyclic
      collector's permanent generation (``gc.freeze``): a full collection stops every
      thread while it runs, and during a join storm it scanned all of this again each time
      (up to 85 ms measured, the tick's worst delay); afterwards it scans only what came
      later (20-45 ms). These objects live as long as the process anyway.
    """
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.collect()
    gc.freeze()


def make_ticker(mode: str) -> Ticker:
    if mode == "thread":
        return ThreadTicker(collector=CollectorInSlack())
    if mode == "loop":
        return LoopTicker()
    raise ValueError(f"media tick must be 'thread' or 'loop', not {mode!r}")
