"""Rate limits on what participants do in rooms (pure, over the injected clock)."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from node.clock import Clock

MAX_BUCKETS = 50_000  # idle full buckets are dropped beyond this many keys


class ActionLimiter:
    """A token bucket per key (a participant in a room): RATE actions a second, BURST at
    once. Refused actions cost nothing: no write, no event."""

    def __init__(self, clock: Clock, rate: float, burst: int) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)

    def allow(self, key: Hashable) -> bool:
        now = self.clock.monotonic()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > MAX_BUCKETS:
            self._forget_full(now)
        return True

    def forget(self, predicate: Callable[[Hashable], bool]) -> None:
        """Drop the buckets whose key satisfies PREDICATE (a room that ended)."""
        for key in [k for k in self._buckets if predicate(k)]:
            del self._buckets[key]

    def _forget_full(self, now: float) -> None:
        refill = self.burst / self.rate
        self._buckets = {
            key: value for key, value in self._buckets.items() if now - value[1] < refill
        }
