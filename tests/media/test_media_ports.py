"""The node's UDP port range: WebRTC host candidates and trunk sockets stay inside it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from media_harness import LOOPBACK, write_tone

from media.client import BotPeer
from media.engine import MediaConfig, MediaEngine
from media.ice import PortRangeExhausted
from media.relay import open_socket

pytestmark = pytest.mark.timeout(30)
LOW, HIGH = 47100, 47104


def host_ports(sdp: str) -> list[int]:
    return [int(m) for m in re.findall(r"a=candidate:\S+ \d \S+ \d+ \S+ (\d+) typ host", sdp)]


async def test_answers_use_ports_in_the_range(tmp_path: Path) -> None:
    engine = MediaEngine(MediaConfig(ice_addresses=LOOPBACK, ice_port_range=(LOW, HIGH)))
    answers: list[str] = []
    bots: list[BotPeer] = []
    room = engine.room("r", lambda who, msg: answers.append(msg["sdp"]), lambda levels: None)
    try:
        for name in ("a", "b"):

            async def to_node(message: dict, name: str = name) -> None:
                await room.signal(name, message)

            bot = BotPeer(to_node, play=write_tone(tmp_path / "t.wav", 440), ice_addresses=LOOPBACK)
            bots.append(bot)
            room.set_can_speak(name, True)
            await bot.start()
        await asyncio.sleep(0.2)
        ports = [p for sdp in answers for p in host_ports(sdp)]
        assert len(ports) == 2 and all(LOW <= p <= HIGH for p in ports), ports
        # the range also holds trunk sockets, and running out is a clear error
        socks = [await open_socket("127.0.0.1", port_range=(LOW, HIGH)) for _ in range(3)]
        assert all(LOW <= s.address[1] <= HIGH for s in socks)
        with pytest.raises(PortRangeExhausted, match="no free UDP port"):
            await open_socket("127.0.0.1", port_range=(LOW, HIGH))
        for s in socks:
            s.close()
    finally:
        for bot in bots:
            await bot.close()
        await engine.close()


def test_bad_range_is_refused() -> None:
    with pytest.raises(ValueError, match="ice_port_range"):
        MediaEngine(MediaConfig(ice_port_range=(5000, 4000)))
