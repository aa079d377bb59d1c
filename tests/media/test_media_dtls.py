"""The node's one DTLS identity (media/dtls.py): shared where it may be, per session where
it must be."""

from __future__ import annotations

import datetime
import os
import re

import pytest
from aiortc.rtcdtlstransport import SRTP_PROFILES
from media_harness import Harness
from OpenSSL import SSL
from pylibsrtp import Error as SrtpError

from media import dtls
from media.codec import OpusDecoder
from media.srtp import outbound_rtp_session

pytestmark = pytest.mark.timeout(30)

_FINGERPRINT = re.compile(r"^a=fingerprint:sha-256 (\S+)", re.MULTILINE)


def _fingerprint(sdp: str) -> str:
    found = _FINGERPRINT.search(sdp)
    assert found is not None, sdp
    return found.group(1)


async def test_sessions_share_one_certificate_and_context_but_not_keys() -> None:
    h = Harness()
    try:
        alice = await h.join("alice")
        bob = await h.join("bob")
        sessions = [h.room.session(name) for name in ("alice", "bob")]
        transports = []
        for session in sessions:
            assert session is not None and session.transceiver is not None
            transports.append(session.transceiver.sender.transport)
        # one certificate: the same fingerprint in both answers, and it is what each
        # client checked (their DTLS connected: aiortc validates the fingerprint)
        answers = [pc.remoteDescription for pc in (alice.pc, bob.pc)]
        assert answers[0] is not None and answers[1] is not None
        assert _fingerprint(answers[0].sdp) == _fingerprint(answers[1].sdp)
        assert alice.pc.connectionState == bob.pc.connectionState == "connected"
        # one DTLS context, two DTLS connections
        a_ssl, b_ssl = (t._ssl for t in transports)
        assert a_ssl is not None and b_ssl is not None and a_ssl is not b_ssl
        assert a_ssl.get_context() is b_ssl.get_context()
        # each client decrypts its own session's SRTP only: keys stay per session
        packet = bytes([0x80, 111, 0, 1]) + b"\x00\x00\x03\xc0" + b"\x0b\xad\xca\xfe"
        packet += os.urandom(40)
        clients = [alice, bob]
        for mine, transport in enumerate(transports):
            protected = outbound_rtp_session(transport).protect(packet)
            own = clients[mine].pc.getTransceivers()[0].receiver.transport
            other = clients[1 - mine].pc.getTransceivers()[0].receiver.transport
            assert own._rx_srtp.unprotect(protected) == packet
            with pytest.raises(SrtpError):
                other._rx_srtp.unprotect(protected)
        # the clients' own certificates are theirs (the scope covers the node only)
        offers = [pc.localDescription for pc in (alice.pc, bob.pc)]
        assert offers[0] is not None and offers[1] is not None
        assert _fingerprint(offers[0].sdp) != _fingerprint(offers[1].sdp)
    finally:
        await h.close()


def test_the_shared_context_resumes_nothing_and_the_certificate_rotates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    identity = dtls.DtlsIdentity()
    first = identity.certificate()
    assert identity.certificate() is first
    context = first._create_ssl_context(SRTP_PROFILES)
    assert first._create_ssl_context(SRTP_PROFILES) is context
    assert context.get_session_cache_mode() == SSL.SESS_CACHE_OFF
    # near its end (aiortc makes them valid 30 days) the next session gets a new one
    monkeypatch.setattr(dtls, "ROTATE_BEFORE", datetime.timedelta(days=31))
    second = identity.certificate()
    assert second is not first
    assert second.getFingerprints() != first.getFingerprints()


def test_a_listeners_decoder_is_made_on_its_first_packet() -> None:
    decoder = OpusDecoder()
    assert decoder._made is None
    assert decoder.conceal().shape == (960,)
    assert decoder._made is not None
