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

How it is plugged in (the one hook of this module, scoped like media/lite.py's ICE
factory): aiortc's ``RTCPeerConnection.__init__`` calls the module-level
``aiortc.rtcpeerconnection.RTCCertificate.generateCertificate()`` and offers no public way
to pass a certificate. ``install()`` replaces that name once by a subclass whose
``generateCertificate`` returns the identity set by ``presenting(identity)`` when one is
set, and a fresh certificate otherwise: only the node's own peer connections (made inside
that block) share the identity; test clients and bots in the same process keep aiortc's
behaviour. The shared context is built by aiortc's own ``_create_ssl_context`` once, then
reused (``NodeCertificate._create_ssl_context``, pinned by
tests/media/test_media_internals.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
from collections.abc import Iterator
from typing import TypeVar

import aiortc.rtcpeerconnection
from aiortc.rtcdtlstransport import RTCCertificate, SRTPProtectionProfile
from OpenSSL import SSL

ROTATE_BEFORE = datetime.timedelta(days=7)

_C = TypeVar("_C", bound=RTCCertificate)


class NodeCertificate(RTCCertificate):
    """A certificate whose DTLS context is built once and shared by every handshake."""

    def __init__(self, certificate: RTCCertificate) -> None:
        super().__init__(key=certificate._key, cert=certificate._cert)
        self._contexts: dict[tuple[bytes, ...], SSL.Context] = {}

    def _create_ssl_context(self, srtp_profiles: list[SRTPProtectionProfile]) -> SSL.Context:
        wanted = tuple(p.openssl_profile for p in srtp_profiles)
        context = self._contexts.get(wanted)
        if context is None:
            context = super()._create_ssl_context(srtp_profiles)
            context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
            context.set_mode(SSL.MODE_RELEASE_BUFFERS)
            self._contexts[wanted] = context
        return context


class DtlsIdentity:
    """The node's DTLS certificate (made on first use, rotated before it expires)."""

    def __init__(self) -> None:
        self._certificate: NodeCertificate | None = None

    def certificate(self) -> NodeCertificate:
        current = self._certificate
        now = datetime.datetime.now(tz=datetime.UTC)
        if current is None or current.expires - now < ROTATE_BEFORE:
            current = self._certificate = NodeCertificate(_original.generateCertificate())
        return current


_IDENTITY: contextvars.ContextVar[DtlsIdentity | None] = contextvars.ContextVar(
    "salon_dtls_identity", default=None
)
_original: type[RTCCertificate] = RTCCertificate


class _ScopedCertificate(RTCCertificate):
    """What ``aiortc.rtcpeerconnection`` sees as ``RTCCertificate`` once installed."""

    @classmethod
    def generateCertificate(cls: type[_C]) -> _C:
        identity = _IDENTITY.get()
        if identity is None:
            return _original.generateCertificate()  # type: ignore[return-value]
        return identity.certificate()  # type: ignore[return-value]


def install() -> None:
    """Route aiortc's per-connection certificate through the scoped one (idempotent)."""
    current = aiortc.rtcpeerconnection.RTCCertificate
    if current is _ScopedCertificate:
        return
    if current is not _original:
        raise RuntimeError("aiortc.rtcpeerconnection.RTCCertificate changed: see media/dtls.py")
    aiortc.rtcpeerconnection.RTCCertificate = _ScopedCertificate  # type: ignore[misc]


@contextlib.contextmanager
def presenting(identity: DtlsIdentity) -> Iterator[None]:
    """Peer connections created in this block present IDENTITY's certificate."""
    install()
    token = _IDENTITY.set(identity)
    try:
        yield
    finally:
        _IDENTITY.reset(token)
