"""An outbound SRTP session of its own for a peer connection that is not a node session's.

aiortc keys one outbound pylibsrtp ``Session`` per DTLS transport and protects its RTCP
(sender reports, receiver reports) with it on the event loop. The fan-out may write RTP
from the node's tick thread (media/ticker.py). For a transport that does not share its
session under a lock, the fan-out derives a second one from the same DTLS keying
material (RFC 5764 §4.2, exactly as ``RTCDtlsTransport._setup_srtp`` does) and protects
RTP only with it. SRTP keeps RTP and RTCP state apart anyway (packet index vs SRTCP
index), so the packets on the wire are the same either way.

A node session's DTLS transport (media/dtls.py ``NodeDtlsTransport``) needs none: the
fan-out uses its one outbound session under the node's ``srtp_lock``, and it releases its
``SSL`` after the handshake. This module keys a session for any other transport (and for
tests) from its live ``SSL``.

aiortc 1.16 internals read (pinned by tests/media/test_media_internals.py):
``RTCDtlsTransport._ssl`` (``export_keying_material``, ``get_selected_srtp_profile``),
``._srtp_profiles`` and ``._role``.
"""

from __future__ import annotations

from typing import NamedTuple

from aiortc.rtcdtlstransport import RTCDtlsTransport, SRTPProtectionProfile
from OpenSSL import SSL
from pylibsrtp import Policy, Session

_EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"


class SrtpKey(NamedTuple):
    """An outbound SRTP master key + salt and its libsrtp profile."""

    key: bytes
    profile: int


def derive_tx_key(ssl: SSL.Connection, profiles: list[SRTPProtectionProfile], role: str) -> SrtpKey:
    """Our outbound key from a handshaken DTLS connection (RFC 5764 §4.2)."""
    selected = ssl.get_selected_srtp_profile()
    profile = next(p for p in profiles if p.openssl_profile == selected)
    material = ssl.export_keying_material(
        _EXPORTER_LABEL, 2 * (profile.key_length + profile.salt_length)
    )
    key = profile.get_key_and_salt(material, 1 if role == "server" else 0)
    return SrtpKey(key, profile.libsrtp_profile)


def outbound_rtp_session(dtls: RTCDtlsTransport) -> Session:
    """A new outbound SRTP session keyed like DTLS's own (call once DTLS is connected)."""
    ssl = dtls._ssl
    if ssl is None:
        raise RuntimeError("DTLS has not started: no keying material yet")
    kept = derive_tx_key(ssl, dtls._srtp_profiles, dtls._role)
    policy = Policy(key=kept.key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=kept.profile)
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return Session(policy)
