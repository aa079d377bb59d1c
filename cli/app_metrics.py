"""The composition of the node's metrics (node/metrics/): what each number is read from.

Part of the composition root (cli/app.py calls ``metrics_running`` when ``metrics_address``
is set): it is the one place that hands federation's and media's numbers to the node's
metrics, which know them only as small protocols.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from federation.metrics import FederationMetrics
from media.relay import RelayRoom
from node.metrics.collector import MediaNumbers, NodeMetrics
from node.metrics.loads import NodeLoads, WorkerLoads
from node.metrics.site import MetricsSite
from node.settings import parse_metrics_address

if TYPE_CHECKING:
    from cli.app import Node


def build_metrics(node: Node, loads: WorkerLoads | None = None) -> NodeMetrics:
    """LOADS: the media workers' loads (None: the in-process engine, worker "node")."""
    engine = node.audio.engine

    def relay_rooms() -> list[RelayRoom]:
        # relays on media workers count in their workers' loads
        return [r.relay for r in node.remote_rooms.open_rooms() if isinstance(r.relay, RelayRoom)]

    fed = node.federation
    return NodeMetrics(
        node.rooms,
        loads if loads is not None else NodeLoads(engine, relay_rooms),
        MediaNumbers(engine, lambda: len(relay_rooms())),
        FederationMetrics(fed.deliveries, fed.worker, fed.inbox.outcomes),
    )


def metrics_running(
    node: Node, loads: WorkerLoads | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context: the metrics site lives as long as the app runs."""
    host, port = parse_metrics_address(node.settings.metrics_address)

    async def running(app: web.Application) -> AsyncIterator[None]:
        site = MetricsSite(
            build_metrics(node, loads), host, port, node.settings.header_timeout_seconds
        )
        await site.start()
        yield
        await site.close()

    return running
