"""The node's one DTLS identity: one certificate and one DTLS context for all its sessions.

aiortc 1.16 generates a new ECDSA key and X.509 certificate in every ``RTCPeerConnection``
and builds a new OpenSSL ``SSL_CTX`` from it when its DTLS transport starts: ≈ 24 KB of
native memory per connection (measured: 3.6 KB key + certificate, 20 KB context), and the
context's server session cache kept each connection's session besides. A node serves
thousands of listeners from one process, as mediasoup does from one worker: it presents
one certificate (one fingerprint in every answer) and runs every handshake on one
context.

What stays per session, so security is unchanged:

- each DTLS handshake is a full ECDHE handshake on its own ``SSL`` object, so every
  session derives its own SRTP keys (RFC 5764 §4.2) and nothing of one session's keys
  can reach another;
- each session still checks its client's certificate against the fingerprint of that
  client's offer (aiortc's ``_validate_peer_identity``);
- the shared context has its session cache off and tickets off (aiortc sets
  ``OP_NO_TICKET``): no handshake can resume another session's master secret;
- the context releases its record buffers while a connection is idle
  (``SSL_MODE_RELEASE_BUFFERS``); an idle listener sends and receives no DTLS records.

The certificate is rotated before it expires (aiortc makes them valid 30 days): a new one
is made when the current one has less than ``ROTATE_BEFORE`` left; sessions keep the one
they answered with.

Once a session's handshake is complete, its ``SSL`` object is released (``NodeDtlsTransport``):
OpenSSL keeps a DTLS connection's 16 KB handshake buffer for retransmissions for good
(``init_buf``: freed after the handshake for TLS, never for DTLS over UDP), plus a record
read buffer and the record layer's datagram BIO, ≈ 50 KB allocated (≈ 18 KB of RSS) per
idle listener. What the session still needs is kept: its SRTP sessions (keyed by then).
When it is
safe: the node answers a browser's ``actpass`` as ``setup:active``, i.e. it is the DTLS
client, and in DTLS 1.2 the server's Finished is the handshake's last flight, so once the
node has read it nothing can ever need our SSL again (``DTLSv1_get_timeout()`` is None: no
flight of ours waits for retransmission). In the other role (a peer that chose
``setup:active``) the peer may still retransmit its last flight, so the release waits for
the first SRTP or SRTCP packet from the peer that decrypts (it has the keys, so it has
completed the handshake). After the release a DTLS record from the peer is not read (it
cannot be authenticated any more: an alert, such as close_notify, changes nothing), and
closing sends no close_notify: a session ends by its signaling, or by the ICE-lite silence
timeout (media/lite.py, 30 s) when the client vanishes.

A lost handshake flight is sent again after 100 ms (then 200, 400 …) instead of OpenSSL's
1 s: media/dtls_timer.py.

One outbound SRTP session per connection: aiortc keys an inbound and an outbound session
per DTLS transport and protects its RTCP (sparse sender reports; a speaker's receiver
reports) with the outbound one on the event loop. The fan-out writes the same connection's
RTP from the tick thread with that same session (≈ 6 KB of libsrtp and OpenSSL cipher
state per session: a second one only for the fan-out cost as much): every fan-out batch
holds the node's ``DtlsIdentity.srtp_lock`` (media/batch.py), and ``NodeDtlsTransport``
protects aiortc's RTCP under the same lock, so the two threads never use one libsrtp
context or pylibsrtp's buffer at once. SRTP keeps RTP and RTCP state apart (packet index
vs SRTCP index), so the packets on the wire are the same as with two sessions.

How it is plugged in (scoped like media/lite.py's ICE factory): aiortc's
``RTCPeerConnection.__init__`` calls the module-level
``aiortc.rtcpeerconnection.RTCCertificate.generateCertificate()`` and offers no public way
to pass a certificate. ``install()`` replaces that name once by a subclass whose
``generateCertificate`` returns the identity set by ``presenting(identity)`` when one is
set, and a fresh certificate otherwise: only the node's own peer connections (made inside
that block) share the identity; test clients and bots in the same process keep aiortc's
behaviour. The shared context is built by aiortc's own ``_create_ssl_context`` once, then
reused (``NodeCertificate._create_ssl_context``, pinned by
tests/media/test_media_internals.py). The same ``install()`` routes aiortc's module-level
``RTCDtlsTransport`` construction through a factory that makes a ``NodeDtlsTransport`` for
the transports that present a ``NodeCertificate`` (so the scope is the certificate's) and
aiortc's own class for the others.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import threading
from collections.abc import Iterator
from typing import TypeVar

import aiortc.rtcpeerconnection
from aiortc.rtcdtlstransport import (
    RTCCertificate,
    RTCDtlsParameters,
    RTCDtlsTransport,
    SRTPProtectionProfile,
    State,
)
from aiortc.rtcicetransport import RTCIceTransport
from aiortc.rtp import is_rtcp
from OpenSSL import SSL

from media import dtls_timer

ROTATE_BEFORE = datetime.timedelta(days=7)

_C = TypeVar("_C", bound=RTCCertificate)


class NodeCertificate(RTCCertificate):
    """A certificate whose DTLS context is built once and shared by every handshake."""

    def __init__(self, certificate: RTCCertificate, srtp_lock: threading.Lock) -> None:
        super().__init__(key=certificate._key, cert=certificate._cert)
        self._contexts: dict[tuple[bytes, ...], SSL.Context] = {}
        self.srtp_lock = srtp_lock  # the identity's (see DtlsIdentity)

    def _create_ssl_context(self, srtp_profiles: list[SRTPProtectionProfile]) -> SSL.Context:
        wanted = tuple(p.openssl_profile for p in srtp_profiles)
        context = self._contexts.get(wanted)
        if context is None:
            context = super()._create_ssl_context(srtp_profiles)
            context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
            context.set_mode(SSL.MODE_RELEASE_BUFFERS)
            self._contexts[wanted] = context
        return context


class _Released:
    """What stands for a node session's ``SSL`` once released (see the module docstring).

    aiortc's transport still calls it for a DTLS record that arrives later (read nothing,
    answer nothing) and when it stops (no close_notify): the record is dropped unread.
    """

    __slots__ = ()

    def DTLSv1_get_timeout(self) -> None:
        return None

    def bio_write(self, data: bytes) -> int:
        return len(data)

    def recv(self, bufsiz: int) -> bytes:
        raise SSL.WantReadError()

    def bio_read(self, bufsiz: int) -> bytes:
        raise SSL.WantReadError()

    def shutdown(self) -> bool:
        return True


RELEASED = _Released()


class NodeDtlsTransport(RTCDtlsTransport):
    """aiortc's DTLS transport for a node session: its ``SSL`` goes once the handshake is done."""

    release_ssl = True  # tests turn it off to look at the live connection

    def __init__(self, transport: RTCIceTransport, certificates: list[NodeCertificate]) -> None:
        super().__init__(transport, list(certificates))
        self.srtp_lock = certificates[0].srtp_lock  # held by the fan-out around its batches

    @property
    def released(self) -> bool:
        return self._ssl is RELEASED

    async def start(self, remoteParameters: RTCDtlsParameters) -> None:
        await super().start(remoteParameters)
        if self._role == "client":  # the peer sent the last flight: we have read it
            self._release()

    async def _do_handshake(self) -> None:
        """A lost flight is sent again after 100 ms, not OpenSSL's 1 s (media/dtls_timer.py)."""
        if self._ssl is not None and self._ssl is not RELEASED:
            dtls_timer.shorten(self._ssl)
        await super()._do_handshake()

    async def _handle_rtcp_data(self, data: bytes) -> None:
        if self._ssl is not RELEASED:
            self._release()  # it decrypted: the peer has the keys, its handshake is done
        await super()._handle_rtcp_data(data)

    async def _handle_rtp_data(self, data: bytes, arrival_time_ms: int) -> None:
        if self._ssl is not RELEASED:
            self._release()
        await super()._handle_rtp_data(data, arrival_time_ms)

    def _release(self) -> None:
        ssl = self._ssl
        if (
            not self.release_ssl
            or ssl is None
            or ssl is RELEASED
            or self._state != State.CONNECTED
            or self._tx_srtp is None
            or ssl.DTLSv1_get_timeout() is not None  # a flight of ours may still be resent
        ):
            return
        self._ssl = RELEASED  # type: ignore[assignment]

    async def _send_rtp(self, data: bytes) -> None:
        """aiortc's RTCP (sender reports; a speaker's receiver reports) on the one outbound
        SRTP session it shares with the fan-out, protected under the fan-out's lock."""
        if self._state != State.CONNECTED:
            raise ConnectionError("Cannot send encrypted RTP, not connected")
        session = self._tx_srtp
        with self.srtp_lock:
            data = session.protect_rtcp(data) if is_rtcp(data) else session.protect(data)
        await self.transport._send(data)
        self._RTCDtlsTransport__tx_bytes += len(data)  # type: ignore[attr-defined]
        self._RTCDtlsTransport__tx_packets += 1  # type: ignore[attr-defined]


def _make_transport(
    transport: RTCIceTransport, certificates: list[RTCCertificate]
) -> RTCDtlsTransport:
    if certificates and isinstance(certificates[0], NodeCertificate):
        return NodeDtlsTransport(transport, [certificates[0]])
    return _original_transport(transport, certificates)


class DtlsIdentity:
    """The node's DTLS certificate (made on first use, rotated before it expires)."""

    def __init__(self) -> None:
        self._certificate: NodeCertificate | None = None
        # One outbound SRTP session per connection, used from two threads: the fan-out's
        # batches (the tick thread) hold this lock, and so does the protection of aiortc's
        # RTCP on the event loop (NodeDtlsTransport._send_rtp). One per node: a batch
        # holds it once for all its connections.
        self.srtp_lock = threading.Lock()

    def certificate(self) -> NodeCertificate:
        current = self._certificate
        now = datetime.datetime.now(tz=datetime.UTC)
        if current is None or current.expires - now < ROTATE_BEFORE:
            current = self._certificate = NodeCertificate(
                _original.generateCertificate(), self.srtp_lock
            )
        return current


_IDENTITY: contextvars.ContextVar[DtlsIdentity | None] = contextvars.ContextVar(
    "salon_dtls_identity", default=None
)
_original: type[RTCCertificate] = RTCCertificate
_original_transport: type[RTCDtlsTransport] = RTCDtlsTransport


class _ScopedCertificate(RTCCertificate):
    """What ``aiortc.rtcpeerconnection`` sees as ``RTCCertificate`` once installed."""

    @classmethod
    def generateCertificate(cls: type[_C]) -> _C:
        identity = _IDENTITY.get()
        if identity is None:
            return _original.generateCertificate()  # type: ignore[return-value]
        return identity.certificate()  # type: ignore[return-value]


def install() -> None:
    """Route aiortc's per-connection certificate and DTLS transport through the scoped
    ones (idempotent)."""
    current = aiortc.rtcpeerconnection.RTCCertificate
    if current is not _ScopedCertificate:
        if current is not _original:
            raise RuntimeError("aiortc.rtcpeerconnection.RTCCertificate changed: see media/dtls.py")
        aiortc.rtcpeerconnection.RTCCertificate = _ScopedCertificate  # type: ignore[misc]
    transport = aiortc.rtcpeerconnection.RTCDtlsTransport
    if transport is not _make_transport:
        if transport is not _original_transport:
            raise RuntimeError(
                "aiortc.rtcpeerconnection.RTCDtlsTransport changed: see media/dtls.py"
            )
        aiortc.rtcpeerconnection.RTCDtlsTransport = _make_transport  # type: ignore[misc,assignment]


@contextlib.contextmanager
def presenting(identity: DtlsIdentity) -> Iterator[None]:
    """Peer connections created in this block present IDENTITY's certificate."""
    install()
    token = _IDENTITY.set(identity)
    try:
        yield
    finally:
        _IDENTITY.reset(token)
