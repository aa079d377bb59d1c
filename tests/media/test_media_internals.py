"""Pins every aiortc/aioice internal that media/ reaches into (aiortc 1.16.0, aioice 0.13.0).

If one of these fails after an upgrade, read docs/media.md "Internals touched" before
touching anything else: the fan-out and the uplink tap depend on them.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path

import aioice.ice
import aiortc
import aiortc.rtcpeerconnection
import aiortc.rtcrtpsender
import pytest
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from media_harness import Harness, write_tone

from media import dtls, ice, lite, rtcp, transceiver
from media.lite import LiteConnection

pytestmark = pytest.mark.timeout(30)


def test_pinned_versions() -> None:
    assert aiortc.__version__ == "1.16.0"
    assert aioice.__version__ == "0.13.0"


def test_static_hooks_exist() -> None:
    params = list(inspect.signature(RTCRtpReceiver._handle_rtp_packet).parameters)
    assert params == ["self", "packet", "arrival_time_ms"]
    assert inspect.iscoroutinefunction(RTCRtpReceiver._handle_rtp_packet)
    # the DTLS transport routes decrypted packets to that method by name
    assert "receiver._handle_rtp_packet(" in inspect.getsource(RTCDtlsTransport._handle_rtp_data)
    # the sender protects with _tx_srtp and aioice gathers through get_host_addresses
    assert "self._tx_srtp.protect(" in inspect.getsource(RTCDtlsTransport._send_rtp)
    source = inspect.getsource(aioice.ice.Connection.gather_candidates)
    assert "get_host_addresses(" in source
    # the sender reads these counters for RTCP sender reports
    init = inspect.getsource(RTCRtpSender.__init__)
    for name in ("__packet_count", "__octet_count", "__rtp_timestamp", "__ntp_timestamp"):
        assert f"self.{name} =" in init
    # the sender's RTP loop blocks on track.recv() (our IdleTrack keeps it asleep)
    assert "await self.__track.recv()" in inspect.getsource(RTCRtpSender._next_encoded_frame)
    # media/lite.py: the peer connection builds its gatherer by the module-level name, and
    # the ICE transport uses only the connection surface LiteConnection implements
    assert "RTCIceGatherer(" in inspect.getsource(aiortc.rtcpeerconnection.RTCPeerConnection)
    transport = inspect.getsource(RTCIceTransport) + inspect.getsource(RTCIceGatherer)
    used = set(re.findall(r"_connection\.(\w+)", transport))
    assert used <= {
        "recv",
        "send",
        "local_username",
        "local_password",
        "local_candidates",
        "remote_candidates",
        "add_remote_candidate",
        "gather_candidates",
        "connect",
        "close",
        "get_event",
        "ice_controlling",
        "remote_is_lite",
        "remote_username",
        "remote_password",
    }, used
    for name in used:
        assert hasattr(LiteConnection, name) or name in (
            "local_username",
            "local_password",
            "ice_controlling",
            "remote_is_lite",
            "remote_username",
            "remote_password",
        ), name
    # media/rtcp.py: the RTCP loop's interval is 0.5 + random.random() of that module
    assert "asyncio.sleep(0.5 + random.random())" in inspect.getsource(RTCRtpSender._run_rtcp)


def test_loss_protection_hooks_exist() -> None:
    """media/session.py reads receiver reports at the sender's RTCP handler; the bot adds
    RED to its transceiver after the answer (the receiver starts later, in a task) and
    rewrites its RTP on the way to SRTP (media/client.py)."""
    params = list(inspect.signature(RTCRtpSender._handle_rtcp_packet).parameters)
    assert params == ["self", "packet"]
    assert inspect.iscoroutinefunction(RTCRtpSender._handle_rtcp_packet)
    assert "report.fraction_lost" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "recipient._handle_rtcp_packet(" in inspect.getsource(RTCDtlsTransport._handle_rtcp_data)
    assert "await self.transport._send_rtp(" in inspect.getsource(RTCRtpSender._run_rtp)
    source = inspect.getsource(aiortc.RTCPeerConnection.setRemoteDescription)
    assert "asyncio.ensure_future(self.__connect())" in source
    connect = inspect.getsource(aiortc.RTCPeerConnection._RTCPeerConnection__connect)
    assert "transceiver.receiver.receive(" in connect
    remote = inspect.getsource(aiortc.RTCPeerConnection._RTCPeerConnection__remoteRtp)
    assert "codecs=transceiver._codecs" in remote
    route = inspect.getsource(RTCDtlsTransport._register_rtp_receiver)
    assert "payload_types=[codec.payloadType for codec in parameters.codecs]" in route


def test_dtls_identity_hooks_exist_and_are_scoped() -> None:
    """media/dtls.py: the peer connection takes its certificate from the module-level
    name, and the DTLS transport builds its context from the certificate."""
    pc_init = inspect.getsource(aiortc.rtcpeerconnection.RTCPeerConnection.__init__)
    assert "RTCCertificate.generateCertificate()" in pc_init
    start = inspect.getsource(RTCDtlsTransport.start)
    assert "._create_ssl_context(" in start and "SSL.Connection(" in start
    dtls.install()
    identity = dtls.DtlsIdentity()
    with dtls.presenting(identity):
        inside = aiortc.rtcpeerconnection.RTCCertificate.generateCertificate()
    outside = aiortc.rtcpeerconnection.RTCCertificate.generateCertificate()
    assert inside is identity.certificate()
    assert outside is not inside and not isinstance(outside, dtls.NodeCertificate)


def test_released_ssl_hooks_exist() -> None:
    """media/dtls.py: the peer connection builds its DTLS transport from the module-level
    name; after the handshake aiortc touches its SSL only through what ``_Released``
    answers (read path, timeout, stop); the release points are where aiortc calls them."""
    create = inspect.getsource(aiortc.rtcpeerconnection.RTCPeerConnection)
    assert "RTCDtlsTransport(iceTransport, self.__certificates)" in create
    used = set()
    for method in (RTCDtlsTransport._recv_next, RTCDtlsTransport._write_ssl, RTCDtlsTransport.stop):
        used |= set(re.findall(r"self\._ssl\.(\w+)\(", inspect.getsource(method)))
    assert used <= {
        "DTLSv1_get_timeout",
        "DTLSv1_handle_timeout",
        "bio_write",
        "recv",
        "bio_read",
        "shutdown",
    }
    assert all(hasattr(dtls.RELEASED, name) for name in used - {"DTLSv1_handle_timeout"})
    recv_next = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "self._handle_rtcp_data(" in recv_next and "self._handle_rtp_data(" in recv_next
    start = inspect.getsource(RTCDtlsTransport.start)
    assert start.index("self._setup_srtp()") < start.index("State.CONNECTED")


def test_dormant_receiver_hooks_exist() -> None:
    """media/transceiver.py: the peer connection builds receivers from the module-level name;
    the members a NodeRtpReceiver drops are made by aiortc's constructor and used only by
    receive() (which it wraps), a started receiver's packet path and stop()."""
    create = inspect.getsource(aiortc.rtcpeerconnection.RTCPeerConnection)
    assert "RTCRtpReceiver(kind, dtlsTransport)" in create
    init = inspect.getsource(RTCRtpReceiver.__init__)
    for name in transceiver._LAZY:
        member = re.escape(name.removeprefix("_RTCRtpReceiver"))
        assert re.search(rf"self\.{member}(: [\w.]+)? = ", init), name
    stop = inspect.getsource(RTCRtpReceiver.stop)
    assert stop.index("if self.__started:") < stop.index("self.__rtcp_started.wait()")
    disconnect = inspect.getsource(RTCRtpReceiver._RTCRtpReceiver__stop_decoder)
    assert "if self.__decoder_thread:" in disconnect
    transceiver.install()
    assert aiortc.rtcpeerconnection.RTCRtpReceiver is transceiver._make_receiver


def test_sender_events_are_only_set_and_awaited() -> None:
    """media/transceiver.py: the sender's four events are made by aiortc's constructor and
    used only through set() and wait(), which a Latch provides."""
    create = inspect.getsource(aiortc.rtcpeerconnection.RTCPeerConnection)
    assert "RTCRtpSender(sender_track or kind, dtlsTransport)" in create
    source = inspect.getsource(RTCRtpSender)
    for name in transceiver._SENDER_EVENTS:
        member = re.escape(name.removeprefix("_RTCRtpSender"))
        assert re.search(rf"self\.{member} = asyncio\.Event\(\)", source), name
        uses = set(re.findall(rf"self\.{member}\.(\w+)\(", source))
        assert uses and uses <= {"set", "wait", "is_set", "clear"}, (name, uses)
    transceiver.install()
    assert aiortc.rtcpeerconnection.RTCRtpSender is transceiver._make_sender


def test_host_address_override_is_scoped() -> None:
    ice.install()
    assert ice.is_installed()
    with ice.host_addresses(("127.0.0.1",)):
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)


def test_lite_and_sparse_rtcp_are_scoped() -> None:
    lite.install()
    assert lite.is_installed()
    rtcp.install()
    assert aiortc.rtcrtpsender.random is not None
    plain = [rtcp.interval_sample() for _ in range(200)]
    assert all(0.5 <= x <= 1.5 for x in plain)
    with rtcp.sparse():
        sparse = [rtcp.interval_sample() for _ in range(200)]
    assert all(2.5 <= x <= 7.5 for x in sparse) and 4 < sum(sparse) / len(sparse) < 6


async def test_live_connection_internals(tmp_path: Path) -> None:
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        await h.join("bob")
        await asyncio.sleep(1.2)
        for name in ("alice", "bob"):
            session = h.room.session(name)
            assert session is not None and session.transceiver is not None
            t = session.transceiver
            assert any(c.mimeType.lower() == "audio/opus" for c in t._codecs)
            assert {e.uri for e in t._headerExtensions} >= {
                "urn:ietf:params:rtp-hdrext:sdes:mid",
                "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            }
            dtls = t.sender.transport
            assert dtls._state == State.CONNECTED
            assert callable(dtls._tx_srtp.protect)
            connection = dtls.transport._connection
            assert isinstance(connection, LiteConnection)
            assert connection.selected is not None and connection.selected.tcp is None
            route = session.downlink.udp_route() if session.downlink else None
            assert route is not None and route[0] is h.engine.port.sock
            assert route[1] == connection.selected.addr
            assert isinstance(t.sender._ssrc, int)
            assert t.sender._RTCRtpSender__packet_count > 0  # type: ignore[attr-defined]
            downlink = session.downlink
            assert downlink is not None and downlink.packets > 40
        # no decoder thread for a listener on the node side; the speaker's exists (idle)
        bob = h.room.session("bob")
        assert bob is not None and bob.transceiver is not None
        assert bob.transceiver.receiver._RTCRtpReceiver__decoder_thread is None  # type: ignore[attr-defined]
        assert bob.negotiated_direction == "sendonly"
    finally:
        await h.close()


def test_srtp_writer_matches_pylibsrtp_protect() -> None:
    """The fan-out's SrtpWriter reaches into pylibsrtp 1.0.0's Session; pin it byte-for-byte."""
    import os

    import pylibsrtp

    from media.fanout import SrtpWriter

    assert pylibsrtp.__version__ == "1.0.0"
    key = os.urandom(30)

    def session() -> pylibsrtp.Session:
        policy = pylibsrtp.Policy(
            key=key,
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )
        return pylibsrtp.Session(policy)

    reference, ours = session(), session()
    writer = SrtpWriter(ours)
    for seq in range(5):
        packet = bytes([0x80, 111, 0, seq]) + b"\x00\x00\x03\xc0" + b"\x12\x34\x56\x78"
        packet += os.urandom(60)
        assert bytes(writer.protect(packet)) == reference.protect(packet)
    with pytest.raises(ValueError):
        writer.protect(b"\x80" * 1500)


def test_pylibsrtp_exposes_what_the_native_fanout_calls() -> None:
    """media/_fastpath.c calls pylibsrtp's bundled srtp_protect through these two integers."""
    import pylibsrtp
    from pylibsrtp._binding import ffi, lib

    # libsrtp 2.x's signature: srtp_protect(srtp_t ctx, void *rtp_hdr, int *len_ptr)
    fn = ffi.addressof(lib, "srtp_protect")
    assert ffi.typeof(fn).cname == "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)"
    assert int(ffi.cast("uintptr_t", fn)) != 0
    session = pylibsrtp.Session(
        pylibsrtp.Policy(key=bytes(30), ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    )
    assert ffi.typeof(session._srtp).cname == "struct srtp_ctx_t_ * *"
    assert int(ffi.cast("uintptr_t", session._srtp[0])) != 0
    assert len(session._cdata) == 1500  # the Python path's buffer; the C side's MAX_PACKET
