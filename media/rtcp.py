"""Sparse RTCP sender reports for the node's own streams (RFC 3550 §6.2 minimum interval).

aiortc's ``RTCRtpSender`` sends a sender report every 0.5–1.5 s on every connection
(``asyncio.sleep(0.5 + random.random())`` in its RTCP loop). For a listener the node's
only stream is the room's mix, and those reports are most of what an idle listener costs
besides the audio itself. RFC 3550 §6.2 recommends a minimum interval of 5 s, randomized
over [0.5, 1.5] times the interval (§6.3.1) so reports of many sessions do not
synchronize: with ``sparse()`` the loop sleeps 2.5–7.5 s (5 s on average).

The sender reads the module global ``random`` of ``aiortc.rtcrtpsender`` for nothing else
(its sequence numbers and SSRCs come from ``aiortc.utils``); we replace that global once
with an object whose ``random()`` reads a context variable, so the interval is scoped to
the code that set it: the RTCP task inherits the context of the node's answer (aiortc
starts it from the task that applied the descriptions), while test clients and bots in
the same process keep aiortc's interval.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
from collections.abc import Iterator

import aiortc.rtcrtpsender

MIN_INTERVAL = 5.0  # RFC 3550 §6.2

_SPARSE: contextvars.ContextVar[bool] = contextvars.ContextVar("salon_sparse_rtcp", default=False)


class _ScopedRandom:
    """``random.random()`` for aiortc's RTCP loop: ``0.5 + r`` becomes 2.5–7.5 s when sparse."""

    def random(self) -> float:
        r = random.random()
        if _SPARSE.get():
            return MIN_INTERVAL * (0.5 + r) - 0.5
        return r


_scoped = _ScopedRandom()


def install() -> None:
    """Replace ``aiortc.rtcrtpsender.random`` with the scoped one (idempotent)."""
    current = aiortc.rtcrtpsender.random
    if current is _scoped:
        return
    if current is not random:
        raise RuntimeError("aiortc.rtcrtpsender.random changed: see media/rtcp.py")
    aiortc.rtcrtpsender.random = _scoped  # type: ignore[assignment]


def interval_sample() -> float:
    """One sleep of the RTCP loop as aiortc computes it (tests check the range)."""
    return 0.5 + aiortc.rtcrtpsender.random.random()


@contextlib.contextmanager
def sparse() -> Iterator[None]:
    """RTCP loops started within this block report at RFC 3550's minimum interval."""
    install()
    token = _SPARSE.set(True)
    try:
        yield
    finally:
        _SPARSE.reset(token)
