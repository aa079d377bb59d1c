"""The delivery worker: sends due queue rows, records outcomes, honours host backoff.

``run_once`` does one pass and returns how many rows it handled; ``run`` is the thin loop
around it (woken early when rows are queued). Per pass, each destination host gets one
probe first: when the host fails it, the host's other rows are deferred to the end of its
rest without spending one of their attempts, so a dead node costs one request per backoff
period instead of one per queued activity. Live hosts get up to
``delivery_concurrency_per_host`` requests at a time.

Hearing from a host clears its backoff (``heard_from``): a request signed by one of its
actors' keys and verified here (inbox, signed fetch, trunk opening), or a delivery it
accepted after failures. Its rest ends and its queued rows are due at once, so a node
back from an outage gets its activities within a pass instead of after the rest of its
backoff (up to 6 hours). Once per ``WAKE_INTERVAL`` per host at most: a host that keeps
talking to us while its inbox still fails costs one probe per interval, not one per
request it sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from federation.delivery import (
    Delivered,
    DeliveryState,
    HostBackoff,
    HostBackoffPolicy,
    RetryAt,
    RetryPolicy,
    decide_retry,
)
from federation.fetch import FetchError, SafeClient
from federation.identity import Signers, utc_now
from federation.store.deliveries import Delivery, DeliveryStore
from federation.store.policies import DomainPolicies
from node.clock import Clock
from node.settings import Settings

log = logging.getLogger(__name__)

BATCH = 500
WAKE_INTERVAL = 5.0  # seconds: at most one backoff reset per host in this time


class DeliveryWorker:
    def __init__(
        self,
        deliveries: DeliveryStore,
        policies: DomainPolicies,
        client: SafeClient,
        signers: Signers,
        clock: Clock,
        settings: Settings,
        wake: asyncio.Event,
        random_source: Callable[[], float] = random.random,
        after_pass: Callable[[], object] | None = None,
    ) -> None:
        self.deliveries = deliveries
        self.policies = policies
        self.client = client
        self.signers = signers
        self.clock = clock
        self.settings = settings
        self.wake = wake
        self.random = random_source
        self.after_pass = after_pass
        s = settings
        self.policy = RetryPolicy(
            max_attempts=s.delivery_max_attempts,
            base_delay=timedelta(seconds=s.delivery_base_delay_seconds),
            jitter_step=timedelta(seconds=s.delivery_jitter_seconds),
        )
        self.host_policy = HostBackoffPolicy(base=timedelta(seconds=s.host_backoff_seconds))
        self._woken: dict[str, float] = {}  # host → monotonic time of its last reset
        self.wakes = 0  # backoff resets so far (for tests and stats)
        self.attempts_failed = 0  # attempts that did not deliver (retried or given up; metrics)
        self.delivered = 0  # deliveries that ended sent (2xx; metrics)

    def heard_from(self, host: str) -> None:
        """HOST is up (it signed a request we verified, or accepted a delivery): end its
        backoff and make its queued deliveries due now. Only for HOST itself: callers pass
        the host of the key that verified, never a host named in a request's content."""
        now = self.clock.monotonic()
        last = self._woken.get(host)
        if last is not None and now - last < WAKE_INTERVAL:
            return
        failures, available = self.deliveries.host(host)
        if failures == 0 and available is None:
            return  # not backing off: nothing to clear (the common case, one SELECT)
        if len(self._woken) >= 1000:  # only hosts reset within the interval matter
            self._woken = {h: t for h, t in self._woken.items() if now - t < WAKE_INTERVAL}
        self._woken[host] = now
        self.deliveries.put_host(HostBackoff(host), None)
        due = self.deliveries.wake_host(host, self.clock.now())
        self.wakes += 1
        log.info("deliver [%s]: heard from it, backoff cleared, %d queued now due", host, due)
        self.wake.set()

    async def run_once(self) -> int:
        if self.after_pass is not None:
            self.after_pass()
        due = self.deliveries.claim_due(self.clock.now(), BATCH)
        by_host: dict[str, list[Delivery]] = defaultdict(list)
        for row in due:
            by_host[row.host].append(row)
        await asyncio.gather(*(self._host(host, rows) for host, rows in by_host.items()))
        return len(due)

    async def run(self) -> None:
        """Forever: a pass, then sleep until woken or the poll interval ends."""
        released = self.deliveries.release_claims()
        if released:
            log.info("deliver: %d interrupted deliveries are due again", released)
        while True:
            handled = await self.run_once()
            if handled:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.wake.wait(), timeout=self.settings.delivery_poll_seconds
                )

    def _backoff(self, host: str) -> HostBackoff:
        failures, available = self.deliveries.host(host)
        at = None if available is None else datetime.fromtimestamp(available, UTC)
        return HostBackoff(host, failures, at)

    async def _host(self, host: str, rows: list[Delivery]) -> None:
        now = self.clock.now()
        if self.policies.refused(host):
            for row in rows:
                self.deliveries.finish(
                    row, DeliveryState.SKIPPED, now=now, attempted=False, error="domain blocked"
                )
            log.info("deliver [%s]: %d skipped, domain blocked", host, len(rows))
            return
        backoff = self._backoff(host)
        if not backoff.is_available(utc_now(self.clock)):
            self._defer(rows, backoff)
            return
        first, rest = rows[0], rows[1:]
        await self._deliver(first)
        backoff = self._backoff(host)
        if not backoff.is_available(utc_now(self.clock)):
            self._defer(rest, backoff)
            return
        limit = asyncio.Semaphore(self.settings.delivery_concurrency_per_host)

        async def one(row: Delivery) -> None:
            async with limit:
                await self._deliver(row)

        await asyncio.gather(*(one(row) for row in rest))

    def _defer(self, rows: list[Delivery], backoff: HostBackoff) -> None:
        assert backoff.available_at is not None
        until = backoff.available_at.timestamp()
        for row in rows:
            self.deliveries.finish(
                row,
                DeliveryState.PENDING,
                now=self.clock.now(),
                attempted=False,
                next_attempt_at=until,
                error="host backing off",
            )

    async def _deliver(self, row: Delivery) -> None:
        body = json.dumps(row.document).encode("utf-8")
        status: int | None = None
        retry_after: str | None = None
        error = ""
        try:
            result = await self.client.post(
                row.inbox, body, self.signers.for_user_id(row.signer_id)
            )
            status, retry_after = result.status, result.retry_after
        except FetchError as exc:
            error = str(exc)
        now_dt = utc_now(self.clock)
        decision = decide_retry(
            row.attempts + 1,
            status,
            now=now_dt,
            random=self.random(),
            retry_after=retry_after,
            policy=self.policy,
        )
        before = self._backoff(row.host)
        backoff = before.after_attempt(
            status, now=now_dt, retry_after=retry_after, policy=self.host_policy
        )
        if before.consecutive_failures and not backoff.consecutive_failures:
            self.heard_from(row.host)  # back: its other rows need not wait out their delays
        available = backoff.available_at.timestamp() if backoff.available_at else None
        self.deliveries.put_host(backoff, available)
        now = self.clock.now()
        if isinstance(decision, Delivered):
            self.deliveries.finish(row, decision.state, now=now, attempted=True, status=status)
            self.delivered += 1
            log.debug("deliver [%s]: %s sent (HTTP %s)", row.host, row.activity_id, status)
        elif isinstance(decision, RetryAt):
            self.deliveries.finish(
                row,
                decision.state,
                now=now,
                attempted=True,
                next_attempt_at=decision.at.timestamp(),
                status=status,
                error=error or decision.reason,
            )
            self.attempts_failed += 1
            log.info("deliver [%s]: %s retry (%s)", row.host, row.activity_id, decision.reason)
        else:
            self.deliveries.finish(
                row,
                decision.state,
                now=now,
                attempted=True,
                status=status,
                error=error or decision.reason,
            )
            self.attempts_failed += 1
            log.warning("deliver [%s]: %s failed (%s)", row.host, row.activity_id, decision.reason)
