"""The fan-out's own outbound SRTP session for a peer connection.

aiortc keys one outbound pylibsrtp ``Session`` per DTLS transport and protects its RTCP
(sender reports, receiver reports) with it on the event loop. The fan-out may write RTP
from the node's tick thread (media/ticker.py); sharing that session would let two threads
use one libsrtp context and one C buffer at once. So the fan-out derives a second session
from the same DTLS keying material (RFC 5764 §4.2, exactly as
``RTCDtlsTransport._setup_srtp`` does) and protects RTP only with it; aiortc's session
keeps RTCP only. SRTP keeps RTP and RTCP state apart anyway (packet index vs SRTCP
index), so the packets on the wire are the same as before.

aiortc 1.16 internals read (pinned by tests/media/test_media_internals.py):
``RTCDtlsTransport._ssl`` (``export_keying_material``, ``get_selected_srtp_profile``),
``._srtp_profiles`` and ``._role``.
"""

from __future__ import annotations

from aiortc.rtcdtlstransport import RTCDtlsTransport
from pylibsrtp import Policy, Session

_EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"


def outbound_rtp_session(dtls: RTCDtlsTransport) -> Session:
    """A new outbound SRTP session keyed like DTLS's own (call once DTLS is connected)."""
    ssl = dtls._ssl
    if ssl is None:
        raise RuntimeError("DTLS has not started: no keying material yet")
    selected = ssl.get_selected_srtp_profile()
    profile = next(p for p in dtls._srtp_profiles if p.openssl_profile == selected)
    material = ssl.export_keying_material(
        _EXPORTER_LABEL, 2 * (profile.key_length + profile.salt_length)
    )
    key = profile.get_key_and_salt(material, 1 if dtls._role == "server" else 0)
    policy = Policy(
        key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile.libsrtp_profile
    )
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return Session(policy)
