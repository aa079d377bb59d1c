"""Delivery of outgoing activities: the state machine as data and the pure retry policy.

One row per (activity, destination inbox) lives in the store. Its life is the small graph
in ``TRANSITIONS``; the worker asks ``decide_retry`` what to do after each attempt and
``HostBackoff`` whether the destination host is worth trying at all, so that a dead node
costs one probe per backoff period instead of one request per queued activity.

Nothing here does I/O or reads a clock: ``now`` and the random source are passed in, so
tests replay whole retry schedules exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for next_attempt_at (first try or a retry)
    SENT = "sent"  # the destination answered 2xx
    FAILED = "failed"  # permanent error, or retries exhausted
    SKIPPED = "skipped"  # never attempted: blocked domain, deleted recipient, our own host


#: Allowed moves. PENDING -> PENDING is a retry: attempts + 1 and a new next_attempt_at.
TRANSITIONS: Mapping[DeliveryState, frozenset[DeliveryState]] = {
    DeliveryState.PENDING: frozenset(
        {DeliveryState.PENDING, DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.SKIPPED}
    ),
    DeliveryState.SENT: frozenset(),
    DeliveryState.FAILED: frozenset(),
    DeliveryState.SKIPPED: frozenset(),
}


class InvalidTransition(ValueError):
    """A code path tried to move a delivery along an edge the graph does not have."""


def check_transition(current: DeliveryState, target: DeliveryState) -> None:
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(f"delivery cannot go from {current} to {target}")


def is_terminal(state: DeliveryState) -> bool:
    return not TRANSITIONS[state]


@dataclass(frozen=True)
class RetryPolicy:
    """Mastodon-like schedule: after attempt n, wait n**4 + 15 s + random [0, 30(n+1)) s.

    Sixteen attempts span about two days (the n**4 terms alone sum to 178 312 s), long
    enough for a node to come back from a weekend outage. ``Retry-After`` replaces the
    computed delay but never goes below ``base_delay`` or above ``max_retry_after``.
    """

    max_attempts: int = 16
    base_delay: timedelta = timedelta(seconds=15)
    jitter_step: timedelta = timedelta(seconds=30)
    max_retry_after: timedelta = timedelta(days=1)

    def backoff(self, attempts: int, random: float) -> timedelta:
        """Delay after ``attempts`` failed attempts; ``random`` is uniform in [0, 1)."""
        jitter = self.jitter_step * (attempts + 1) * random
        return timedelta(seconds=attempts**4) + self.base_delay + jitter


DEFAULT_POLICY = RetryPolicy()
#: Statuses that are errors on a transient condition even though they are 4xx (RFC 9110):
#: 401 (the receiver has not fetched our new key yet), 408 timeout, 429 rate limit.
RETRYABLE_4XX = frozenset({401, 408, 429})


@dataclass(frozen=True)
class Delivered:
    state: DeliveryState = DeliveryState.SENT


@dataclass(frozen=True)
class RetryAt:
    at: datetime
    reason: str
    state: DeliveryState = DeliveryState.PENDING


@dataclass(frozen=True)
class GiveUp:
    reason: str
    state: DeliveryState = DeliveryState.FAILED


RetryDecision = Delivered | RetryAt | GiveUp


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """RFC 9110 section 10.2.3: delay-seconds or an HTTP-date; None when absent or invalid."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


def decide_retry(
    attempts: int,
    status: int | None,
    *,
    now: datetime,
    random: float,
    retry_after: str | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> RetryDecision:
    """What to do after attempt number ``attempts`` (1-based) ended with ``status``.

    ``status`` None means the request never got a response (DNS, connect, TLS, timeout).
    2xx is done; 4xx other than 401/408/429 is permanent (the receiver will not change its
    mind: 400 malformed, 403 blocked, 404/410 gone); everything else is retried until
    ``policy.max_attempts`` attempts have been made.
    """
    if attempts < 1:
        raise ValueError("attempts counts the attempt just made, so it starts at 1")
    if not 0.0 <= random < 1.0:
        raise ValueError(f"random must be in [0, 1), got {random}")
    if status is not None and 200 <= status < 300:
        return Delivered()
    if status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX:
        return GiveUp(f"permanent HTTP {status}")
    outcome = "network error" if status is None else f"HTTP {status}"
    if attempts >= policy.max_attempts:
        return GiveUp(f"{outcome}, gave up after {attempts} attempts")
    delay = policy.backoff(attempts, random)
    requested = parse_retry_after(retry_after, now)
    if requested is not None:
        delay = min(max(requested, policy.base_delay), policy.max_retry_after)
        outcome += " with Retry-After"
    return RetryAt(now + delay, outcome)


def retry_schedule(policy: RetryPolicy = DEFAULT_POLICY, random: float = 0.0) -> list[timedelta]:
    """The delay after each failed attempt that is followed by another one (for docs/tests)."""
    return [policy.backoff(n, random) for n in range(1, policy.max_attempts)]


# -- per-destination-host circuit breaker --


@dataclass(frozen=True)
class HostBackoffPolicy:
    """After k consecutive failures a host rests base * 2**(k-1), capped (Synapse-like)."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=6)

    def delay(self, failures: int) -> timedelta:
        if failures <= 0:
            return timedelta(0)
        # Exponent capped so the multiplication cannot overflow timedelta.
        return min(self.base * 2 ** min(failures - 1, 30), self.cap)


DEFAULT_HOST_POLICY = HostBackoffPolicy()


@dataclass(frozen=True)
class HostBackoff:
    """Whether deliveries to ``host`` may be attempted now; persisted per host.

    Only signs that the host itself is unwell count as failures (network errors, 5xx, 408,
    429); a 4xx answer proves the host is up, so it resets the breaker like a success.
    Deliveries due while the host rests are deferred to ``available_at`` without using
    one of their own attempts.
    """

    host: str
    consecutive_failures: int = 0
    available_at: datetime | None = None

    def is_available(self, now: datetime) -> bool:
        return self.available_at is None or now >= self.available_at

    def after_attempt(
        self,
        status: int | None,
        *,
        now: datetime,
        retry_after: str | None = None,
        policy: HostBackoffPolicy = DEFAULT_HOST_POLICY,
    ) -> HostBackoff:
        if not _host_is_unwell(status):
            return HostBackoff(self.host)
        failures = self.consecutive_failures + 1
        rest = policy.delay(failures)
        requested = parse_retry_after(retry_after, now)
        if requested is not None:
            rest = min(max(rest, requested), policy.cap)
        return HostBackoff(self.host, failures, now + rest)


def _host_is_unwell(status: int | None) -> bool:
    return status is None or status >= 500 or status in (408, 429)
