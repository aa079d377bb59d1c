"""What an idle listener's session holds (issue #12's memory goal): the parts a listener
never uses are not made, and everything a listener or speaker needs still works."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from media_harness import Harness, write_tone

from media.receiver import NodeRtpReceiver

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
        # the clients' own receivers are aiortc's (the hook is scoped to the node)
        assert not isinstance(bob.pc.getTransceivers()[0].receiver, NodeRtpReceiver)
    finally:
        await h.close()
    # closing stopped both without waiting on events that were never made
    assert bob_session.closed and alice_session.closed

