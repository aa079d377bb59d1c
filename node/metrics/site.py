"""The metrics site: a second aiohttp site, on ``metrics_address``, that serves only
``GET /metrics`` (and ``HEAD``) in the Prometheus text format.

It is separate from the public port on purpose (docs/operating.md "Metrics"): the numbers
describe the node's internals and count people in private rooms, so an operator binds it
to loopback or a private network and lets only Prometheus reach it. Every other path is
404 and every other method 405; no middleware of the public app runs here (no sessions,
no cookies, no CSRF: nothing to authenticate against).

While the site runs, ``LoopLag`` measures the event loop: a task asks to wake every
``LOOP_LAG_INTERVAL`` seconds and records how late it actually woke.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest

from node.metrics.collector import NodeMetrics

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
LOOP_LAG_INTERVAL = 0.25  # seconds between two wake-ups of the lag probe
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MetricsBindError(Exception):
    """The metrics address cannot be listened on (in use, not an address of this machine)."""


class LoopLag:
    """Scheduled-vs-actual wake-up of a sleeping task, into a histogram (a thin loop)."""

    def __init__(
        self,
        histogram: Histogram,
        interval: float = LOOP_LAG_INTERVAL,
    ) -> None:
        self._histogram = histogram
        self._interval = interval

    async def run_once(self) -> float:
        """Sleep one interval; the lag observed (seconds, ≥ 0)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self._interval
        await asyncio.sleep(self._interval)
        lag = max(0.0, loop.time() - due)
        self._histogram.observe(lag)
        return lag

    async def run(self) -> None:
        while True:
            await self.run_once()


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """404/405 as the rest of Salon answers them: ``{"error": "..."}``."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return web.json_response({"error": exc.reason.lower()}, status=exc.status, headers=headers)


def metrics_app(metrics: NodeMetrics) -> web.Application:
    """The metrics site's application: one route."""

    async def scrape(request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(client_max_size=1024, middlewares=[_json_errors])
    app.router.add_get(METRICS_PATH, scrape)  # HEAD too
    return app


class MetricsSite:
    """Binds the metrics site and runs the lag probe; ``start()`` / ``close()``."""

    def __init__(
        self, metrics: NodeMetrics, host: str, port: int, header_timeout: float = 20.0
    ) -> None:
        """HEADER_TIMEOUT bounds a request head and an idle connection, as on the public
        port (``header_timeout_seconds``, cli/app.py ``connection_limits``)."""
        self.metrics = metrics
        self.host = host
        self.port = port
        self._header_timeout = header_timeout
        self._runner: web.AppRunner | None = None
        self._lag_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{METRICS_PATH}"

    async def start(self) -> None:
        runner = web.AppRunner(
            metrics_app(self.metrics), access_log=None, keepalive_timeout=self._header_timeout
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=False)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise MetricsBindError(
                f"cannot listen on the metrics address {self.host}:{self.port}:"
                f" {exc.strerror or exc}"
            ) from None
        self._runner = runner
        self._lag_task = asyncio.create_task(
            LoopLag(self.metrics.loop_lag).run(), name="metrics-loop-lag"
        )
        log.info("metrics: serving %s", self.url)

    async def close(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
            self._lag_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
