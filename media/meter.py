"""What the node's fan-out sent and what it cost: plain counters, read at scrape time.

Listener packets leave from two threads: an origin room's tick (the node's tick thread,
media/ticker.py) and a relay room's forward of its origin's mix (the event loop). A
``+=`` on one shared int from both could lose an update between the read and the write,
and a lost write can make a counter go *down* — which a Prometheus counter must never do.
So each thread writes only its own ``FanoutCell`` (one dict lookup per tick, no lock the
tick could wait on) and a reader sums the cells: a handful, whatever the number of rooms.

The node's metrics (node/metrics/) read ``FanoutMeter.totals()``; nothing here knows
about Prometheus.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


class FanoutCell:
    """One thread's counters; only that thread writes them."""

    __slots__ = ("batches", "packets", "seconds")

    def __init__(self) -> None:
        self.packets = 0  # listener packets handed to the socket (or its queue)
        self.seconds = 0.0  # time spent building, protecting and sending them
        self.batches = 0  # fan-out calls (one per room per tick)


@dataclass(frozen=True)
class FanoutTotals:
    packets: int
    seconds: float
    batches: int


class FanoutMeter:
    """The node's fan-out counters, one ``FanoutCell`` per writing thread."""

    def __init__(self) -> None:
        self._cells: dict[int, FanoutCell] = {}

    def cell(self) -> FanoutCell:
        """The calling thread's cell (created on its first call: a C-level setdefault)."""
        ident = threading.get_ident()
        cell = self._cells.get(ident)
        if cell is None:
            cell = self._cells.setdefault(ident, FanoutCell())
        return cell

    def add(self, packets: int, seconds: float) -> None:
        cell = self.cell()
        cell.packets += packets
        cell.seconds += seconds
        cell.batches += 1

    def totals(self) -> FanoutTotals:
        cells = list(self._cells.values())  # a copy: a new thread may add its cell meanwhile
        return FanoutTotals(
            packets=sum(c.packets for c in cells),
            seconds=sum(c.seconds for c in cells),
            batches=sum(c.batches for c in cells),
        )
