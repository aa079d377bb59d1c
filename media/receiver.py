"""The node's RTP receivers: aiortc's, minus what a receiver that never starts allocates.

Every node session has one ``RTCRtpReceiver`` (aiortc makes one per transceiver), but a
listener's answer is ``sendonly``: aiortc never calls its ``receive()``, so it never starts
a decoder thread or an RTCP loop (and Salon taps a speaker's packets before the decoder
anyway, media/session.py). Its constructor still makes, per connection, the decoder
thread's ``queue.Queue`` (a lock, three conditions, four deques), a ``threading.Event``
and two ``asyncio.Event``s for the RTCP loop: seven deque blocks and their locks, ≈ 5.5 KB
of Python objects per idle listener (tracemalloc; docs/performance.md). ``NodeRtpReceiver``
drops them after aiortc's constructor and makes them again in ``receive()``, before aiortc
uses them; a receiver that is never started never touches them (aiortc routes RTP only to
receivers registered by ``receive()``, and ``stop()`` waits on the RTCP events only for a
started one).

How it is plugged in (scoped like media/lite.py's ICE factory): aiortc's
``RTCPeerConnection`` builds its receivers from the module-level
``aiortc.rtcpeerconnection.RTCRtpReceiver`` name; ``install()`` replaces it once by a
factory that makes a ``NodeRtpReceiver`` for a receiver on a node session's DTLS
transport (``media.dtls.NodeDtlsTransport``, itself scoped to the node's certificate)
and aiortc's own class otherwise (bots, test clients). The private names are pinned by
tests/media/test_media_internals.py.
"""

from __future__ import annotations

import asyncio
import queue
import threading

import aiortc.rtcpeerconnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from media.dtls import NodeDtlsTransport

# aiortc 1.16's private members that only a started receiver uses
_LAZY = (
    "_RTCRtpReceiver__decoder_error",
    "_RTCRtpReceiver__decoder_queue",
    "_RTCRtpReceiver__rtcp_exited",
    "_RTCRtpReceiver__rtcp_started",
)


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


def _make_receiver(kind: str, transport: RTCDtlsTransport) -> RTCRtpReceiver:
    if isinstance(transport, NodeDtlsTransport):
        return NodeRtpReceiver(kind, transport)
    return _original(kind, transport)


_original: type[RTCRtpReceiver] = RTCRtpReceiver


def install() -> None:
    """Route aiortc's receiver construction through the scoped factory (idempotent)."""
    current = aiortc.rtcpeerconnection.RTCRtpReceiver
    if current is _make_receiver:
        return
    if current is not _original:
        raise RuntimeError("aiortc.rtcpeerconnection.RTCRtpReceiver changed: see media/receiver.py")
    aiortc.rtcpeerconnection.RTCRtpReceiver = _make_receiver  # type: ignore[misc,assignment]
