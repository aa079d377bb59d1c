"""The node's RTP receivers and senders: aiortc's, minus what they allocate before use.

Every node session has one ``RTCRtpReceiver`` and one ``RTCRtpSender`` (aiortc makes one
of each per transceiver). Their constructors make, per connection, objects that an idle
listener never uses, and each ``asyncio.Event``, ``queue.Queue`` or ``threading.Event``
allocates a deque block (≈ 0.7 KB) at once (tracemalloc; docs/performance.md):

- ``NodeRtpReceiver``: a listener's answer is ``sendonly``, so aiortc never calls
  ``receive()``: no decoder thread, no RTCP loop. Its constructor still makes the decoder
  thread's ``queue.Queue`` (a lock, three conditions, four deques), a ``threading.Event``
  and two ``asyncio.Event``s for the RTCP loop (≈ 6.9 KB). They are dropped after aiortc's
  constructor and made again in ``receive()``, before aiortc uses them; a receiver that is
  never started never touches them (aiortc routes RTP only to receivers registered by
  ``receive()``, and ``stop()`` waits on the RTCP events only for a started one).
- ``NodeRtpSender``: the sender is started (it announces our SSRC and sends the sparse
  sender reports) and aiortc sets its four start/exit events from its RTP and RTCP loops
  and waits on them only in ``stop()``. They become ``Latch``es: the same ``set``,
  ``is_set``, ``wait`` and ``clear``, and no deque until someone waits (≈ 2.6 KB).

How it is plugged in (scoped like media/lite.py's ICE factory): aiortc's
``RTCPeerConnection`` builds both from the module-level names
``aiortc.rtcpeerconnection.RTCRtpReceiver`` and ``RTCRtpSender``; ``install()`` replaces
each once by a factory that makes the node's class for a DTLS transport of a node session
(``media.dtls.NodeDtlsTransport``, itself scoped to the node's certificate) and aiortc's
own class otherwise (bots, test clients). The private names are pinned by
tests/media/test_media_internals.py.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Literal

import aiortc.rtcpeerconnection
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender

from media.dtls import NodeDtlsTransport

# aiortc 1.16's private members that only a started receiver uses
_LAZY = (
    "_RTCRtpReceiver__decoder_error",
    "_RTCRtpReceiver__decoder_queue",
    "_RTCRtpReceiver__rtcp_exited",
    "_RTCRtpReceiver__rtcp_started",
)
# aiortc 1.16's sender events, set by its loops and waited on by stop()
_SENDER_EVENTS = (
    "_RTCRtpSender__rtp_exited",
    "_RTCRtpSender__rtp_started",
    "_RTCRtpSender__rtcp_exited",
    "_RTCRtpSender__rtcp_started",
)


class Latch:
    """``asyncio.Event``'s ``set``/``is_set``/``wait``/``clear`` with no deque until a wait."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> Literal[True]:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class NodeRtpReceiver(RTCRtpReceiver):
    """aiortc's receiver; its decoder queue and RTCP events are made when it starts."""

    def __init__(self, kind: str, transport: RTCDtlsTransport) -> None:
        super().__init__(kind, transport)
        for name in _LAZY:
            setattr(self, name, None)

    @property
    def dormant(self) -> bool:
        """Whether the decoder queue and RTCP events are not made (never started)."""
        return self._RTCRtpReceiver__decoder_queue is None

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        if self.dormant:  # what aiortc's constructor made, now that it is needed
            self._RTCRtpReceiver__decoder_error = threading.Event()
            self._RTCRtpReceiver__decoder_queue: queue.Queue[object] = queue.Queue()
            self._RTCRtpReceiver__rtcp_exited = asyncio.Event()
            self._RTCRtpReceiver__rtcp_started = asyncio.Event()
        await super().receive(parameters)


class NodeRtpSender(RTCRtpSender):
    """aiortc's sender with ``Latch``es for its start/exit events."""

    def __init__(self, trackOrKind: MediaStreamTrack | str, transport: RTCDtlsTransport) -> None:
        super().__init__(trackOrKind, transport)
        for name in _SENDER_EVENTS:
            setattr(self, name, Latch())


def _make_receiver(kind: str, transport: RTCDtlsTransport) -> RTCRtpReceiver:
    if isinstance(transport, NodeDtlsTransport):
        return NodeRtpReceiver(kind, transport)
    return _original_receiver(kind, transport)


def _make_sender(
    trackOrKind: MediaStreamTrack | str,
    transport: RTCDtlsTransport,
) -> RTCRtpSender:
    if isinstance(transport, NodeDtlsTransport):
        return NodeRtpSender(trackOrKind, transport)
    return _original_sender(trackOrKind, transport)


_original_receiver: type[RTCRtpReceiver] = RTCRtpReceiver
_original_sender: type[RTCRtpSender] = RTCRtpSender


def install() -> None:
    """Route aiortc's receiver and sender construction through the scoped factories
    (idempotent)."""
    module = aiortc.rtcpeerconnection
    if module.RTCRtpReceiver is not _make_receiver:
        if module.RTCRtpReceiver is not _original_receiver:
            raise RuntimeError(
                "aiortc.rtcpeerconnection.RTCRtpReceiver changed: see media/transceiver.py"
            )
        module.RTCRtpReceiver = _make_receiver  # type: ignore[misc,assignment]
    if module.RTCRtpSender is not _make_sender:
        if module.RTCRtpSender is not _original_sender:
            raise RuntimeError(
                "aiortc.rtcpeerconnection.RTCRtpSender changed: see media/transceiver.py"
            )
        module.RTCRtpSender = _make_sender  # type: ignore[misc,assignment]
