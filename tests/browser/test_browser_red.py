"""Chromium plays the node's RED: a listener whose reports show loss gets RED packets built
from the encode-once stream, and Chromium keeps playing continuous sound from them."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from cli.app import NODE
from media.session import ParticipantSession
from tests.browser.browser_harness import ENERGY_HEARD, Launch, Person
from tests.support.audio import tone
from tests.support.cli import bot_room_url, creds, salon
from tests.support.nodes import NodeFactory


@pytest.mark.timeout(90)
async def test_chromium_negotiates_and_plays_red(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    await node.user("alice")
    host = await salon(
        "bot", "host", *creds(node, "alice"), "--title", "Red check",
        "--play", str(tone(tmp_path / "440.wav", 440)), "--seconds", "60",
    )  # fmt: skip
    try:
        room_url = await bot_room_url(host)
        bob = await Person.open(await launch(), node.url, "bob")
        await bob.join_and_hear(room_url, "Red check", timeout=20)

        assert node.app is not None
        room = node.app[NODE].audio.engine.rooms()[0]
        sessions = [room.session(name) for name in room.participants]
        listeners = [s for s in sessions if s and s.negotiated_direction == "sendonly"]
        assert len(listeners) == 1
        session: ParticipantSession = listeners[0]
        downlink = session.downlink
        assert downlink is not None and downlink.red_type is not None  # Chromium offered RED

        def per_packet() -> tuple[int, int]:
            assert downlink is not None
            return downlink.octets, downlink.packets

        octets, packets = per_packet()
        await asyncio.sleep(1.0)
        plain = (per_packet()[0] - octets) / max(1, per_packet()[1] - packets)

        before = await bob.inbound()
        octets, packets = per_packet()
        for _ in range(6):  # as if Chromium's receiver reports said 50 % lost
            session.loss.add(128)
            await asyncio.sleep(0.5)
        after = await bob.inbound()
        red = (per_packet()[0] - octets) / max(1, per_packet()[1] - packets)
        assert red > 1.6 * plain, (plain, red)  # the previous frame rides along
        assert after["codec"].lower() in ("audio/opus", "audio/red")  # what getStats names
        received = after["totalSamplesReceived"] - before["totalSamplesReceived"]
        concealed = after["concealedSamples"] - before["concealedSamples"]
        assert received > 48_000 * 2  # 3 s of RED played
        assert concealed < 0.02 * received, (concealed, received)  # measured: 0
        assert after["totalAudioEnergy"] - before["totalAudioEnergy"] > 2 * ENERGY_HEARD
    finally:
        host.send_signal(signal.SIGTERM)
        await asyncio.wait_for(host.communicate(), 20)
