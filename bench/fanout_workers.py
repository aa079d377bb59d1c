"""Worker processes of bench/fanout.py: the speaker and the counting listeners.

Each worker is a separate process (spawned) holding real aiortc peer connections to the
node under test; listeners count RTP packets at the raw receive hook and never decode, so
the node's figures are not limited by the listeners' decoders.
"""

from __future__ import annotations

import asyncio
import random
import time
import wave
from multiprocessing.connection import Connection
from pathlib import Path

import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import numpy as np
from aiohttp import ClientSession
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RtpPacket
from fanout_net import enter

from media import ice
from media.client import BotPeer

LOOPBACK = ("127.0.0.1",)


def write_tone(path: Path) -> None:
    t = np.arange(48_000) / 48_000
    pcm = (np.sin(2 * np.pi * 440 * t) * 9000).astype(np.int16)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48_000)
        wav.writeframes(pcm.tobytes())


class CountingListener:
    """A recvonly peer that counts packets at the raw hook and never decodes them."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = self.pc.addTransceiver("audio", direction="recvonly")
        self.packets = 0

        async def count(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.packets += 1

        transceiver.receiver._handle_rtp_packet = count  # type: ignore[method-assign]

    async def connect(
        self, http: ClientSession, url: str, name: str, mode: str, addresses: tuple[str, ...]
    ) -> None:
        offer = await self.pc.createOffer()
        with ice.host_addresses(addresses):
            await self.pc.setLocalDescription(offer)
        body = {"name": name, "mode": mode, "sdp": self.pc.localDescription.sdp}
        async with http.post(url + "/offer", json=body) as response:
            answer = (await response.json())["sdp"]
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))


async def worker_main(
    conn: Connection, url: str, index: int, tone: str | None, addresses: tuple[str, ...]
) -> None:
    loop = asyncio.get_running_loop()
    listeners: list[CountingListener] = []
    speaker: BotPeer | None = None
    async with ClientSession() as http:
        if tone is not None:

            async def to_node(message: dict) -> None:
                body = {"name": "speaker", "mode": "speaker", "sdp": message["sdp"]}
                async with http.post(url + "/offer", json=body) as response:
                    answer = await response.json()
                await speaker.handle({"type": "answer", "sdp": answer["sdp"]})  # type: ignore[union-attr]

            speaker = BotPeer(to_node, play=Path(tone), ice_addresses=addresses, keep_audio=False)
            await speaker.start()
            await speaker.wait_connected(15)
        conn.send(("ready", 0))
        while True:
            command, arg = await loop.run_in_executor(None, conn.recv)
            if command == "connect":
                mode, count = arg
                batch = [CountingListener() for _ in range(count)]
                first = len(listeners)  # names stay unique when a step adds listeners
                for i in range(0, count, 20):
                    await asyncio.gather(
                        *(
                            lst.connect(http, url, f"w{index}-{mode}-{first + j}", mode, addresses)
                            for j, lst in enumerate(batch[i : i + 20], start=i)
                        )
                    )
                listeners += batch
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and any(
                    lst.pc.connectionState != "connected" for lst in batch
                ):
                    await asyncio.sleep(0.1)
                connected = sum(lst.pc.connectionState == "connected" for lst in batch)
                conn.send(("connected", connected))
            elif command == "packets":
                conn.send(("packets", sum(lst.packets for lst in listeners)))
            elif command == "close":
                for lst in listeners:
                    await lst.pc.close()
                listeners = []
                conn.send(("closed", 0))
            else:
                break
        if speaker is not None:
            await speaker.close()
    conn.send(("stopped", 0))


def worker_entry(
    conn: Connection,
    url: str,
    index: int,
    tone: str | None,
    rtcp_seconds: float | None,
    addresses: tuple[str, ...] = LOOPBACK,
    place: tuple[str, int] | None = None,
) -> None:
    """PLACE: (network namespace, CPU) of the remote mode (bench/fanout_net.py), joined
    before any socket is opened; None: loopback, any CPU."""
    if place is not None:
        enter(*place)
    if rtcp_seconds is not None:
        slow_rtcp(rtcp_seconds)
    asyncio.run(worker_main(conn, url, index, tone, addresses))


class RtcpInterval:
    """Stands in for the ``random`` module aiortc's RTCP loops draw their interval from:
    ``0.5 + random()`` becomes SECONDS ± 0.5 s instead of 0.5–1.5 s."""

    def __init__(self, seconds: float) -> None:
        self.offset = seconds - 1.0

    def random(self) -> float:
        return self.offset + random.random()


def slow_rtcp(seconds: float) -> None:
    """Experiment (--rtcp-interval): RTCP reports every SECONDS in this process (aiortc 1.16
    sleeps ``0.5 + random.random()`` between sender and between receiver reports)."""
    interval = RtcpInterval(seconds)
    aiortc.rtcrtpsender.random = interval  # type: ignore[assignment]
    aiortc.rtcrtpreceiver.random = interval  # type: ignore[assignment]
