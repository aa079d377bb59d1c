"""The node's Prometheus metrics: one registry per node, read at scrape time.

Nothing here runs on a hot path: ``SalonCollector`` asks the room service, the media
workers' loads, the media engine and federation for their live numbers when Prometheus
scrapes, so a scrape costs one pass over the rooms (and each room's participant dict),
the workers and three index-range counts over the delivery queue — nothing per packet. The only
metric fed continuously is the event-loop lag histogram (node/metrics/site.py), one
observation every quarter second.

The registry is the node's own (``NodeMetrics.registry``), never prometheus_client's
global default: tests build many nodes in one process. Labels never carry a room title,
a room id or a user handle (the metrics site may be scraped by people who may not see
private rooms): only ``worker``, ``status``, ``direction``, ``state`` and ``reason``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from media.engine import MediaEngine
from node.metrics.loads import WorkerLoads
from node.rooms.model import Room, RoomStatus

# event-loop lag: most wake-ups are within a millisecond; a join storm or a slow query
# shows as tens to hundreds of milliseconds
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ActiveRooms(Protocol):
    def active_rooms(self) -> list[Room]: ...


class FederationNumbers(Protocol):
    """What federation reports (federation/metrics.py implements it)."""

    def delivery_states(self) -> Mapping[str, int]:
        """Deliveries by state: pending (the queue), failed, skipped."""
        ...

    def delivered(self) -> int:
        """Deliveries sent since start."""
        ...

    def delivery_failures(self) -> int:
        """Delivery attempts that did not deliver, since start (retried or given up)."""
        ...

    def inbox_accepted(self) -> int: ...

    def inbox_refused(self) -> Mapping[str, int]:
        """Refused inbox requests since start, by reason (bad_signature, too_large, …)."""
        ...


class HasTrunks(Protocol):
    @property
    def trunks(self) -> Sequence[object]: ...


class MediaNumbers:
    """The in-process engine's clock counters and the node's relay trunks by direction."""

    def __init__(self, engine: MediaEngine, relay_trunks: Callable[[], int] = lambda: 0) -> None:
        """RELAY_TRUNKS: how many rooms of other nodes this node relays (one trunk each)."""
        self._engine = engine
        self._relay_trunks = relay_trunks

    def trunks(self) -> dict[str, int]:
        rooms: list[HasTrunks] = list(self._engine.rooms())
        return {
            "origin": sum(len(room.trunks) for room in rooms),
            "relay": self._relay_trunks(),
        }

    def clock(self) -> Mapping[str, object]:
        return self._engine.stats()


class SalonCollector:
    """A custom collector (prometheus_client's ``Collector`` protocol: ``collect()``)."""

    def __init__(
        self,
        rooms: ActiveRooms,
        loads: WorkerLoads,
        media: MediaNumbers,
        federation: FederationNumbers,
    ) -> None:
        self._rooms = rooms
        self._loads = loads
        self._media = media
        self._federation = federation

    def collect(self) -> Iterable[Metric]:
        yield from self._room_metrics()
        yield from self._worker_metrics()
        yield from self._media_metrics()
        yield from self._federation_metrics()

    def _room_metrics(self) -> Iterable[Metric]:
        by_status = {RoomStatus.LIVE.value: 0, RoomStatus.SCHEDULED.value: 0}
        participants = listeners = 0
        for room in self._rooms.active_rooms():
            by_status[room.status.value] = by_status.get(room.status.value, 0) + 1
            if room.status is RoomStatus.LIVE:
                people = list(room.participants.values())
                participants += len(people)
                listeners += sum(1 for p in people if not p.on_stage)
        rooms = GaugeMetricFamily(
            "salon_rooms", "Rooms held by this node, by status.", labels=["status"]
        )
        for status, count in by_status.items():
            rooms.add_metric([status], count)
        yield rooms
        yield GaugeMetricFamily(
            "salon_participants",
            "People in this node's live rooms (stage and audience, seats held for reconnects).",
            value=participants,
        )
        yield GaugeMetricFamily(
            "salon_listeners", "People in the audience of this node's live rooms.", value=listeners
        )
        yield GaugeMetricFamily(
            "salon_speakers",
            "People on stage (host, moderators, speakers) in this node's live rooms.",
            value=participants - listeners,
        )

    def _worker_metrics(self) -> Iterable[Metric]:
        def gauge(name: str, text: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, labels=["worker"])

        up = gauge("salon_worker_up", "1 while the media worker reports in, else 0.")
        rooms = gauge("salon_worker_rooms", "Rooms with media on the worker.")
        sessions = gauge("salon_worker_sessions", "WebRTC sessions on the worker.")
        listeners = gauge(
            "salon_worker_listeners", "Sessions on the worker of people not allowed to speak."
        )
        sent = CounterMetricFamily(
            "salon_worker_packets_sent",
            "Listener RTP packets the worker's fan-out sent.",
            labels=["worker"],
        )
        rate = gauge(
            "salon_worker_packets_per_second",
            "Listener packets per second over the last window (at least 1 s between reads).",
        )
        cpu = gauge("salon_worker_cpu_percent", "CPU of the worker's process, percent of a core.")
        fanout = gauge(
            "salon_worker_fanout_microseconds_per_packet",
            "Fan-out time per listener packet (build, SRTP protect, send), last window.",
        )
        for load in self._loads.loads():
            label = [load.worker]
            up.add_metric(label, 1 if load.alive else 0)
            rooms.add_metric(label, load.rooms)
            sessions.add_metric(label, load.sessions)
            listeners.add_metric(label, load.listeners)
            sent.add_metric(label, load.packets_sent)
            rate.add_metric(label, load.packets_per_second)
            cpu.add_metric(label, load.cpu_percent)
            if load.fanout_us_per_packet is not None:
                fanout.add_metric(label, load.fanout_us_per_packet)
        yield from (up, rooms, sessions, listeners, sent, rate, cpu, fanout)

    def _media_metrics(self) -> Iterable[Metric]:
        trunks = GaugeMetricFamily(
            "salon_trunks",
            "Open relay trunks: origin = other nodes relaying our rooms, relay = rooms of"
            " other nodes we relay.",
            labels=["direction"],
        )
        for direction, count in self._media.trunks().items():
            trunks.add_metric([direction], count)
        yield trunks
        clock = self._media.clock()
        for key, name, text in (
            ("ticks", "salon_media_ticks", "Passes of the node's 20 ms media clock."),
            (
                "late_ticks",
                "salon_media_late_ticks",
                "Media clock passes that started a whole tick (20 ms) or more late.",
            ),
            ("skipped", "salon_media_skipped_ticks", "Times the media clock skipped missed ticks."),
            ("tick_errors", "salon_media_tick_errors", "Room ticks that raised (logged)."),
        ):
            value = clock.get(key, 0)
            yield CounterMetricFamily(name, text, value=value if isinstance(value, int) else 0)

    def _federation_metrics(self) -> Iterable[Metric]:
        fed = self._federation
        states = GaugeMetricFamily(
            "salon_federation_deliveries",
            "Outgoing deliveries by state: pending (the queue depth), failed, skipped.",
            labels=["state"],
        )
        for state, count in sorted(fed.delivery_states().items()):
            states.add_metric([state], count)
        yield states
        yield CounterMetricFamily(
            "salon_federation_deliveries_sent",
            "Deliveries that reached their inbox (2xx).",
            value=fed.delivered(),
        )
        yield CounterMetricFamily(
            "salon_federation_delivery_failures",
            "Delivery attempts that did not deliver (retried later or given up).",
            value=fed.delivery_failures(),
        )
        yield CounterMetricFamily(
            "salon_inbox_accepted",
            "Inbox POSTs answered 202 (including ignored types and replays).",
            value=fed.inbox_accepted(),
        )
        refused = CounterMetricFamily(
            "salon_inbox_refused", "Inbox POSTs refused, by reason.", labels=["reason"]
        )
        for reason, count in sorted(fed.inbox_refused().items()):
            refused.add_metric([reason], count)
        yield refused


class NodeMetrics:
    """One node's registry: the collector above, the loop-lag histogram, the process."""

    def __init__(
        self,
        rooms: ActiveRooms,
        loads: WorkerLoads,
        media: MediaNumbers,
        federation: FederationNumbers,
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(SalonCollector(rooms, loads, media, federation))
        self.loop_lag = Histogram(
            "salon_event_loop_lag_seconds",
            "How late the event loop woke a task that slept (scheduled vs actual wake-up).",
            buckets=LOOP_LAG_BUCKETS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, memory, fds
