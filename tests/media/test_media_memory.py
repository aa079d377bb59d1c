"""What an idle listener's session holds (issue #12's memory goal): the parts a listener
never uses are not made, and everything a listener or speaker needs still works."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket
from media_harness import Harness, write_tone

from media.dtls import NodeDtlsTransport
from media.transceiver import Latch, NodeRtpReceiver, NodeRtpSender

pytestmark = pytest.mark.timeout(40)


async def test_a_listeners_receiver_stays_dormant_a_speakers_starts(tmp_path: Path) -> None:
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        bob = await h.join("bob")
        alice_session, bob_session = h.room.session("alice"), h.room.session("bob")
        assert alice_session is not None and alice_session.transceiver is not None
        assert bob_session is not None and bob_session.transceiver is not None
        # bob listens (sendonly answer): his receiver never started and holds no queue
        bob_receiver = bob_session.transceiver.receiver
        assert isinstance(bob_receiver, NodeRtpReceiver) and bob_receiver.dormant
        # alice speaks (sendrecv): hers started, and bob hears her through the node
        alice_receiver = alice_session.transceiver.receiver
        assert isinstance(alice_receiver, NodeRtpReceiver) and not alice_receiver.dormant
        before = bob.packets_received
        await asyncio.sleep(1.0)
        assert bob.packets_received > before + 20
        # both senders hold latches, not asyncio events, and they run (bob hears alice)
        for session in (alice_session, bob_session):
            sender = session.transceiver.sender
            assert isinstance(sender, NodeRtpSender)
            assert isinstance(sender._RTCRtpSender__rtcp_started, Latch)
            assert sender._RTCRtpSender__rtcp_started.is_set()
        # the clients' own receivers and senders are aiortc's (the hook is scoped to the node)
        assert not isinstance(bob.pc.getTransceivers()[0].receiver, NodeRtpReceiver)
        assert not isinstance(bob.pc.getTransceivers()[0].sender, NodeRtpSender)
    finally:
        await h.close()
    # closing stopped both without waiting on events that were never made, and the
    # senders' stop() returned on their latches
    assert bob_session.closed and alice_session.closed


async def test_one_outbound_srtp_session_carries_the_audio_and_the_sender_reports(
    tmp_path: Path,
) -> None:
    """A listener's downlink protects with the DTLS transport's own outbound session (no
    second one for the fan-out); aiortc's sender reports, protected with it under the
    node's lock, still arrive and decrypt at the client, between packets of audio."""
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        bob = await h.join("bob")
        session = h.room.session("bob")
        assert session is not None and session.transceiver is not None
        transport = session.transceiver.sender.transport
        assert isinstance(transport, NodeDtlsTransport)
        for _ in range(100):
            if session.downlink is not None and session.downlink._srtp is not None:
                break
            await asyncio.sleep(0.05)
        assert session.downlink is not None and session.downlink._srtp is not None
        assert session.downlink._srtp.session is transport._tx_srtp  # one outbound session
        sender = session.transceiver.sender
        client = bob.pc.getTransceivers()[0].receiver
        lsr = client._RTCRtpReceiver__lsr  # what the client read from our sender reports
        for round_ in range(3):
            info = RtcpSenderInfo(
                ntp_timestamp=(1000 + round_) << 32,
                rtp_timestamp=0,
                packet_count=session.downlink.packets,
                octet_count=session.downlink.octets,
            )
            await sender._send_rtcp([RtcpSrPacket(ssrc=sender._ssrc, sender_info=info)])
            await asyncio.sleep(0.2)
            assert lsr.get(sender._ssrc) == ((1000 + round_) << 16) & 0xFFFFFFFF
        before = bob.packets_received
        await asyncio.sleep(0.5)
        assert bob.packets_received > before + 10  # audio still decrypts after the reports
    finally:
        await h.close()


async def test_a_latch_behaves_as_an_event_for_what_aiortc_uses() -> None:
    latch = Latch()
    assert not latch.is_set() and latch._waiters is None  # nothing made before a wait
    first = asyncio.ensure_future(latch.wait())
    gone = asyncio.ensure_future(latch.wait())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    assert not first.done()
    latch.set()
    assert await first is True and latch.is_set()
    assert await latch.wait() is True  # set: returns at once
    latch.clear()
    assert not latch.is_set()
    later = asyncio.ensure_future(asyncio.gather(latch.wait(), latch.wait()))
    await asyncio.sleep(0)
    latch.set()
    assert await later == [True, True]
