"""The metrics' parts without a node: rate windows, the per-thread fan-out meter, inbox
outcomes by reason, the event-loop lag probe."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, Histogram

from federation.inbox import InboxOutcomes, InboxResult
from media.engine import MediaConfig, MediaEngine
from media.meter import FanoutMeter
from node.metrics.loads import NodeLoads, _rates, _Sample
from node.metrics.site import LoopLag


@pytest.mark.timeout(10)
def test_rates_between_two_samples() -> None:
    before = _Sample(at=10.0, packets=1000, fanout_seconds=0.010, cpu_seconds=5.0)
    after = _Sample(at=12.0, packets=3000, fanout_seconds=0.030, cpu_seconds=5.5)
    rates = _rates(before, after)
    assert rates.packets_per_second == 1000.0
    assert rates.cpu_percent == pytest.approx(25.0)
    assert rates.fanout_us_per_packet == pytest.approx(10.0)  # 20 ms over 2000 packets
    assert _rates(before, before.__class__(12.0, 1000, 0.010, 5.0)).fanout_us_per_packet is None


@pytest.mark.timeout(10)
def test_node_loads_keep_a_window_of_at_least_one_second() -> None:
    now = [100.0]
    cpu = [1.0]
    engine = MediaEngine(MediaConfig())
    loads = NodeLoads(engine, monotonic=lambda: now[0], cpu_seconds=lambda: cpu[0])
    engine.port.meter.add(500, 0.005)
    now[0], cpu[0] = 101.0, 1.1
    first = loads.loads()[0]
    assert (first.worker, first.alive, first.rooms, first.sessions) == ("node", True, 0, 0)
    assert first.packets_sent == 500
    assert first.packets_per_second == 500.0
    assert first.cpu_percent == pytest.approx(10.0)
    assert first.fanout_us_per_packet == pytest.approx(10.0)
    engine.port.meter.add(100, 0.1)
    now[0] = 101.2  # a second scraper 0.2 s later: same rates, fresh counter
    second = loads.loads()[0]
    assert second.packets_sent == 600
    assert second.packets_per_second == 500.0


@pytest.mark.timeout(10)
def test_fanout_meter_counts_each_thread_apart() -> None:
    meter = FanoutMeter()

    def work() -> None:
        for _ in range(10_000):
            meter.add(3, 1e-6)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    seen = []
    while any(t.is_alive() for t in threads):
        seen.append(meter.totals().packets)
    for t in threads:
        t.join()
    totals = meter.totals()
    assert totals.packets == 4 * 10_000 * 3  # no update lost
    assert totals.batches == 40_000
    assert seen == sorted(seen), "a counter read while threads write never goes down"


@pytest.mark.timeout(10)
def test_inbox_outcomes_by_reason() -> None:
    outcomes = InboxOutcomes()
    for result in (
        InboxResult(202, "ok"),
        InboxResult(202, "ignored: Like"),
        InboxResult(401, "bad"),
        InboxResult(400, "bad json"),
        InboxResult(403, "domain", "blocked_domain"),
        InboxResult(202, "quietly dropped", "blocked_domain"),
        InboxResult(403, "not invited", "join_refused"),
        InboxResult(418, "odd"),
    ):
        outcomes.record(result)
    outcomes.refuse("too_large")
    assert outcomes.accepted == 2
    assert dict(outcomes.refused) == {
        "bad_signature": 1,
        "malformed": 1,
        "refused": 0,
        "too_large": 1,
        "blocked_domain": 2,
        "join_refused": 1,
        "other": 1,
    }


@pytest.mark.timeout(10)
async def test_loop_lag_sees_a_blocked_loop() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("lag_seconds", "lag", registry=registry, buckets=(0.05, 1.0))
    probe = LoopLag(histogram, interval=0.01)
    assert await probe.run_once() < 1.0
    loop = asyncio.get_running_loop()
    loop.call_later(0.001, time.sleep, 0.1)  # blocks the loop 100 ms
    assert await probe.run_once() >= 0.05
    assert registry.get_sample_value("lag_seconds_count") == 2
    assert registry.get_sample_value("lag_seconds_bucket", {"le": "0.05"}) == 1
