"""What the node's metrics cost: counting on the fan-out's hot path, and one scrape.

1. Counting listener packets. Salon's fan-out meter (media/meter.py) adds each room's
   tick once — packets, time — into its thread's cell: two ``perf_counter`` reads and three
   adds per room per tick, whatever the number of listeners. The naive baseline is what an
   exporter usually does: a prometheus_client ``Counter`` incremented per packet (the
   child bound once, so only ``inc()`` per packet). Both run the same ticks of N listeners
   here, in this process, on this thread; the figure is thread CPU per listener packet.
2. One scrape (``generate_latest`` of the node's registry, the work a Prometheus scrape
   makes on the event loop) with R live rooms of P participants each, built from the
   room model (node/rooms/model.py) behind the collector's ``ActiveRooms`` protocol, and
   a real (idle) media engine.

    .venv/bin/python bench/metrics.py [--listeners 1000] [--ticks 2000]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media.engine import MediaConfig, MediaEngine
from media.meter import FanoutMeter
from node.metrics.collector import MediaNumbers, NodeMetrics
from node.metrics.loads import NodeLoads
from node.rooms.model import JoinMode, Participant, Role, Room, RoomStatus


def salon_counting(listeners: int, ticks: int) -> float:
    """Thread CPU µs per listener packet of the meter's per-tick bookkeeping."""
    meter = FanoutMeter()
    started = time.thread_time()
    for _ in range(ticks):
        t0 = time.perf_counter()
        meter.add(listeners, time.perf_counter() - t0)
    spent = time.thread_time() - started
    assert meter.totals().packets == listeners * ticks
    return 1e6 * spent / (listeners * ticks)


def naive_counting(listeners: int, ticks: int) -> float:
    """Thread CPU µs per listener packet of a prometheus Counter incremented per packet."""
    registry = CollectorRegistry()
    counter = Counter("packets", "sent", ["worker"], registry=registry)
    child = counter.labels("node")
    started = time.thread_time()
    for _ in range(ticks):
        for _ in range(listeners):
            child.inc()
    spent = time.thread_time() - started
    assert registry.get_sample_value("packets_total", {"worker": "node"}) == listeners * ticks
    return 1e6 * spent / (listeners * ticks)


class SyntheticRooms:
    def __init__(self, rooms: int, people: int) -> None:
        self._rooms = []
        for r in range(rooms):
            room = Room(
                id=f"r{r}",
                host_id=1,
                title="t",
                description="",
                join_mode=JoinMode.OPEN,
                status=RoomStatus.LIVE,
                invite_token="",
                created_at=0.0,
            )
            for p in range(people):
                role = Role.HOST if p == 0 else Role.LISTENER
                room.participants[p] = Participant(user_id=p, role=role, joined_at=0.0)
            self._rooms.append(room)

    def active_rooms(self) -> list[Room]:
        return list(self._rooms)


class QuietFederation:
    def delivery_states(self) -> Mapping[str, int]:
        return {"pending": 0, "failed": 0, "skipped": 0}

    def delivered(self) -> int:
        return 0

    def delivery_failures(self) -> int:
        return 0

    def inbox_accepted(self) -> int:
        return 0

    def inbox_refused(self) -> Mapping[str, int]:
        return {}


def scrape_ms(rooms: int, people: int, repeats: int = 20) -> tuple[float, int]:
    """Median wall ms of one scrape, and its size in bytes."""
    engine = MediaEngine(MediaConfig())
    metrics = NodeMetrics(
        SyntheticRooms(rooms, people), NodeLoads(engine), MediaNumbers(engine), QuietFederation()
    )
    times = []
    size = 0
    for _ in range(repeats):
        started = time.perf_counter()
        size = len(generate_latest(metrics.registry))
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times), size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=2000)
    args = parser.parse_args(argv)
    n, ticks = args.listeners, args.ticks

    salon = min(salon_counting(n, ticks) for _ in range(3))
    naive = min(naive_counting(n, ticks // 10) for _ in range(3))
    print(f"counting {n} listeners' packets, thread CPU per listener packet:")
    print(f"  naive (Counter.inc per packet) {1000 * naive:8.1f} ns")
    print(f"  Salon (meter per room tick)    {1000 * salon:8.3f} ns")
    print(f"  naive / Salon                  {naive / salon:8.0f}×")
    shapes = [(1000, 10), (10, 10_000), (1, 10_000)]
    scrapes = {}
    for rooms, people in shapes:
        ms, size = scrape_ms(rooms, people)
        scrapes[f"{rooms}x{people}"] = {"ms": round(ms, 2), "bytes": size}
        print(f"  one scrape, {rooms} rooms × {people} people: {ms:6.2f} ms ({size} bytes)")
    result = {
        "listeners": n,
        "ticks": ticks,
        "naive_ns_per_packet": round(1000 * naive, 1),
        "salon_ns_per_packet": round(1000 * salon, 3),
        "counting_ratio": round(naive / salon, 1),
        "scrape": scrapes,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
