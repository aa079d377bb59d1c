"""The node's one DTLS identity (media/dtls.py): shared where it may be, per session where
it must be."""

from __future__ import annotations

import asyncio
import datetime
import os
import re
from pathlib import Path

import pytest
from aiortc.rtcdtlstransport import SRTP_PROFILES
from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket
from media_harness import LOOPBACK, Harness, write_tone
from OpenSSL import SSL
from pylibsrtp import Error as SrtpError

from media import dtls
from media.client import BotPeer
from media.codec import OpusDecoder
from media.srtp import outbound_rtp_session

pytestmark = pytest.mark.timeout(30)

_FINGERPRINT = re.compile(r"^a=fingerprint:sha-256 (\S+)", re.MULTILINE)


def _fingerprint(sdp: str) -> str:
    found = _FINGERPRINT.search(sdp)
    assert found is not None, sdp
    return found.group(1)


async def test_sessions_share_one_certificate_and_context_but_not_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dtls.NodeDtlsTransport, "release_ssl", False)  # look at the SSLs
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


async def test_a_sessions_ssl_is_released_once_its_handshake_is_done() -> None:
    """The node (DTLS client) read the peer's last flight: its SSL object goes, its SRTP
    stays. The client still decrypts it, its RTCP still arrives, and a DTLS record
    arriving afterwards is dropped unread."""
    h = Harness()
    try:
        alice = await h.join("alice")
        session = h.room.session("alice")
        assert session is not None and session.transceiver is not None
        transport = session.transceiver.sender.transport
        assert isinstance(transport, dtls.NodeDtlsTransport)
        assert transport._role == "client" and transport.released
        assert transport._rx_srtp is not None and transport._tx_srtp is not None
        # the outbound session (the fan-out's too) is keyed: the client decrypts it
        packet = bytes([0x80, 111, 0, 1]) + b"\x00\x00\x03\xc0" + b"\x0b\xad\xca\xfe"
        packet += os.urandom(40)
        with transport.srtp_lock:
            protected = transport._tx_srtp.protect(packet)
        receiver = alice.pc.getTransceivers()[0].receiver.transport
        assert receiver._rx_srtp.unprotect(protected) == packet
        # a DTLS alert now (a forged close_notify, say) is not read: the session stays
        await transport._recv_next.__func__(  # type: ignore[attr-defined]
            _OneDatagram(transport, bytes([21, 0xFE, 0xFD]) + bytes(11) + b"\x00\x02\x01\x00")
        )
        assert transport.state == "connected" and transport.released
        # the client's receiver reports still decrypt and are read for loss (RED, #16)
        report = RtcpReceiverInfo(
            ssrc=session.transceiver.sender._ssrc,
            fraction_lost=77,
            packets_lost=1,
            highest_sequence=1,
            jitter=0,
            lsr=0,
            dlsr=0,
        )
        await alice.pc.getTransceivers()[0].receiver._send_rtcp(
            RtcpRrPacket(ssrc=1234, reports=[report])
        )
        for _ in range(50):
            if session.loss.last_fraction == 77:
                break
            await asyncio.sleep(0.02)
        assert session.loss.last_fraction == 77
    finally:
        await h.close()


class _OneDatagram:
    """TRANSPORT seen through ``_recv_next``, whose ICE transport yields DATA once."""

    def __init__(self, transport: dtls.NodeDtlsTransport, data: bytes) -> None:
        self._transport = transport
        self._data = data

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)

    @property
    def transport(self) -> object:
        data = self._data

        class _Ice:
            async def _recv(self) -> bytes:
                return data

        return _Ice()


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


async def test_as_dtls_server_the_ssl_goes_at_the_first_packet_that_decrypts(
    tmp_path: Path,
) -> None:
    """A peer that offers ``setup:active`` makes the node the DTLS server: the peer's last
    flight may still come again, so the node keeps its SSL until the peer's first SRTP or
    SRTCP packet decrypts (it has the keys: its handshake is over)."""
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        h.room.set_can_speak("bob", False)

        async def to_node(message: dict) -> None:
            if message.get("type") == "offer":
                message = {
                    **message,
                    "sdp": message["sdp"].replace("setup:actpass", "setup:active"),
                }
            await h.room.signal("bob", message)

        bob = BotPeer(to_node, ice_addresses=LOOPBACK)
        h.bots["bob"] = bob
        await bob.start()
        await asyncio.wait_for(bob.answered.wait(), 10)
        await bob.wait_connected()
        session = h.room.session("bob")
        assert session is not None and session.transceiver is not None
        transport = session.transceiver.sender.transport
        assert isinstance(transport, dtls.NodeDtlsTransport) and transport._role == "server"
        assert not transport.released  # nothing from bob has decrypted yet
        # bob hears alice, and his receiver reports (SRTCP) are the proof
        for _ in range(100):
            if transport.released:
                break
            await asyncio.sleep(0.05)
        assert transport.released and bob.packets_received > 0
        heard = bob.packets_received
        await asyncio.sleep(0.5)
        assert bob.packets_received > heard + 10
    finally:
        await h.close()
