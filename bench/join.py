"""Join time: from opening a room's WebSocket on a real node to the first audio packet.

A host bot speaks a 440 Hz tone in a room on a real node (``python -m cli serve``
subprocess, loopback ICE). A listener then joins N times in a row (fresh WebSocket, fresh
aiortc peer connection each time, leaving in between) and each join is timed:

- ``ws``: WebSocket open and the room state received (= joined the room);
- ``answer``: offer sent through the WebSocket and the node's answer applied;
- ``connected``: ICE + DTLS done on the listener's side;
- ``first packet``: first RTP packet decrypted at the listener (raw receive hook) — this is
  ``join_ms``, when audio reaches the client;
- ``first frame``: first decoded frame out of aiortc's default receive path
  (``track.recv``: its 4-frame jitter buffer + decoder) — what a naive aiortc client waits
  for before it can play anything.

Baseline in the same run: the same listener class joining a direct aiortc speaker (no node,
no WebSocket, signalling handed over in-process): the ICE + DTLS floor of aiortc itself.

    .venv/bin/python bench/join.py --quick    # < 60 s
    .venv/bin/python bench/join.py            # < 3 min

The last line is one JSON object: join_ms (mean, to the first packet) and the others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.rtp import RtpPacket

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import salon_node
from latency import LOOPBACK, RATE, RoomClient, bearer

from media import ice
from media.client import BotPeer, LoopTrack

STEPS = ("ws", "answer", "connected", "first_packet", "first_frame")


def tone() -> np.ndarray:
    t = np.arange(RATE) / RATE
    return (np.sin(2 * np.pi * 440 * t) * 0.3 * 32767).astype(np.int16)


class TimedListener(BotPeer):
    """The bot client, stamping the first RTP packet at its raw receive hook."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.first_packet: float | None = None

    def _count_packets(self, transceiver: RTCRtpTransceiver) -> None:
        super()._count_packets(transceiver)
        receiver = transceiver.receiver
        counting = receiver._handle_rtp_packet

        async def stamped(packet: RtpPacket, arrival_time_ms: int) -> None:
            if self.first_packet is None:
                self.first_packet = time.monotonic()
            await counting(packet, arrival_time_ms)

        receiver._handle_rtp_packet = stamped  # type: ignore[method-assign]

    async def wait_first_frame(self, timeout: float = 10.0) -> float:
        async with asyncio.timeout(timeout):
            while not self.chunks:
                await asyncio.sleep(0.002)
        return self.chunks[0][0]


async def watch(peer: TimedListener, t0: float, times: dict[str, float]) -> None:
    """Stamp 'answer' and 'connected' as they happen (polled every 2 ms)."""
    await asyncio.wait_for(peer.answered.wait(), 10)
    times["answer"] = (time.monotonic() - t0) * 1000
    async with asyncio.timeout(10):
        while peer.pc.connectionState != "connected":
            await asyncio.sleep(0.002)
    times["connected"] = (time.monotonic() - t0) * 1000


async def finish(peer: TimedListener, t0: float, times: dict[str, float]) -> None:
    first_frame = await peer.wait_first_frame()
    assert peer.first_packet is not None
    times["first_packet"] = (peer.first_packet - t0) * 1000
    times["first_frame"] = (first_frame - t0) * 1000


async def join_node(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], room_id: str
) -> dict[str, float]:
    client = RoomClient(http, url, headers)
    peer = TimedListener(client.send_signal, ice_addresses=LOOPBACK, speak=False)
    times: dict[str, float] = {}
    t0 = time.monotonic()
    try:
        client.ws = await http.ws_connect(f"{url}/api/rooms/{room_id}/ws", headers=headers)
        await client.ws.receive_json(timeout=10)
        times["ws"] = (time.monotonic() - t0) * 1000
        client.peer = peer
        client._pump = asyncio.ensure_future(client._run())
        watcher = asyncio.ensure_future(watch(peer, t0, times))
        await peer.start()
        await watcher
        await finish(peer, t0, times)
    finally:
        await client.close()
    return times


async def join_direct() -> dict[str, float]:
    speaker_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = LoopTrack(tone())
    peer: TimedListener | None = None

    async def to_speaker(message: dict) -> None:
        await speaker_pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
        speaker_pc.addTrack(track)
        answer = await speaker_pc.createAnswer()
        with ice.host_addresses(LOOPBACK):
            await speaker_pc.setLocalDescription(answer)
        assert peer is not None and speaker_pc.localDescription is not None
        await peer.handle({"type": "answer", "sdp": speaker_pc.localDescription.sdp})

    peer = TimedListener(to_speaker, ice_addresses=LOOPBACK, speak=False)
    times: dict[str, float] = {"ws": 0.0}
    t0 = time.monotonic()
    try:
        watcher = asyncio.ensure_future(watch(peer, t0, times))
        await peer.start()
        await watcher
        await finish(peer, t0, times)
    finally:
        track.stop()
        await peer.close()
        await speaker_pc.close()
    return times


def report(name: str, runs: list[dict[str, float]]) -> dict[str, float]:
    means = {step: statistics.mean(r[step] for r in runs) for step in STEPS}
    worst = max(r["first_packet"] for r in runs)
    print(
        f"{name} ({len(runs)} joins, mean ms): "
        + ", ".join(f"{step.replace('_', ' ')} {means[step]:.0f}" for step in STEPS)
        + f"; worst first packet {worst:.0f}"
    )
    return means


async def run(args: argparse.Namespace) -> dict[str, float]:
    direct = [await join_direct() for _ in range(args.joins)]
    node_runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="salon-bench-") as tmp:
        async with salon_node(Path(tmp) / "node") as url, aiohttp.ClientSession() as http:
            host = RoomClient(http, url, await bearer(http, url, "host"))
            try:
                room_id = await host.open_room("join")
                speaker = BotPeer(host.send_signal, ice_addresses=LOOPBACK, speak=True)
                speaker._pcm = tone()
                speaker._track = LoopTrack(speaker._pcm)
                await host.join(room_id, speaker)
                await speaker.wait_connected(15)
                await asyncio.sleep(1.0)
                for i in range(args.joins):
                    # a new user each time (signing in is not part of the join); every
                    # 3rd join re-uses the previous user: a rejoin within the grace period
                    if i % 3 != 2:
                        headers = await bearer(http, url, f"joiner{i}")
                    node_runs.append(await join_node(http, url, headers, room_id))
                    await asyncio.sleep(0.3)  # leave fully before the next join
            finally:
                await host.close()
    d = report("direct aiortc → aiortc (no node)", direct)
    n = report("through one Salon node", node_runs)
    print(f"join to first packet: {n['first_packet']:.0f} ms (goal < 500 ms)")
    return {
        "join_ms": round(n["first_packet"], 1),
        "join_first_frame_ms": round(n["first_frame"], 1),
        "join_connected_ms": round(n["connected"], 1),
        "direct_join_ms": round(d["first_packet"], 1),
        "direct_first_frame_ms": round(d["first_frame"], 1),
        "joins": len(node_runs),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer joins, under 60 s")
    parser.add_argument("--joins", type=int, default=None)
    args = parser.parse_args(argv)
    if args.joins is None:
        args.joins = 5 if args.quick else 20
    started = time.monotonic()
    result = asyncio.run(run(args))
    print(f"total {time.monotonic() - started:.0f}s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
