"""Federation's numbers for the node's metrics (node/metrics/collector.py
``FederationNumbers``): the delivery queue by state, failed attempts, inbox outcomes.

Read at scrape time: three index-range counts over the delivery queue and a few counters that the
delivery worker and the inbox keep anyway.
"""

from __future__ import annotations

from collections.abc import Mapping

from federation.delivery import DeliveryState
from federation.inbox import InboxOutcomes
from federation.sender import DeliveryWorker
from federation.store.deliveries import DeliveryStore

QUEUE_STATES = (DeliveryState.PENDING, DeliveryState.FAILED, DeliveryState.SKIPPED)


class FederationMetrics:
    def __init__(
        self, deliveries: DeliveryStore, worker: DeliveryWorker, inbox: InboxOutcomes
    ) -> None:
        self._deliveries = deliveries
        self._worker = worker
        self._inbox = inbox

    def delivery_states(self) -> Mapping[str, int]:
        """Pending, failed and skipped rows (sent rows are kept for good: counted by
        ``delivered`` instead of a count over the whole table at every scrape)."""
        return {state.value: self._deliveries.count_in(state) for state in QUEUE_STATES}

    def delivered(self) -> int:
        return self._worker.delivered

    def delivery_failures(self) -> int:
        return self._worker.attempts_failed

    def inbox_accepted(self) -> int:
        return self._inbox.accepted

    def inbox_refused(self) -> Mapping[str, int]:
        return dict(self._inbox.refused)
