"""Mouth-to-ear latency through one real Salon node, against a direct aiortc connection.

A speaker plays a click train (one 10 ms burst every 500 ms, aligned on 20 ms frame
boundaries); a listener records what it hears with arrival timestamps. Both are the
project's bot client (``media.client.BotPeer`` / its ``LoopTrack``), carried by aiortc:

- **node**: a real node (``python -m cli serve`` subprocess, ``SALON_ICE_ADDRESSES=127.0.0.1``).
  The host signs in with a bearer token, opens a room and speaks through the room
  WebSocket; the listener joins the room through its own WebSocket. Path: speaker's aiortc
  sender → node uplink tap → Salon jitter buffer → 20 ms mixer (decode, mix, encode once)
  → fan-out → listener's aiortc receiver.
- **direct**: the same track and sender class talks straight to the same ``BotPeer``
  listener class (aiortc → aiortc, no node) — the baseline.

Emission time of a click = the moment the speaker's track hands the frame holding it to
aiortc's sender (``TimedLoopTrack.recv`` returns). Arrival time of a click = arrival time of
the decoded frame holding its onset (``BotPeer.chunks``, stamped when ``track.recv``
returns) plus the onset's offset inside that frame. The onset is the first sample above
30 % of the recording's peak after ≥ 100 ms of quiet. Both paths share the listener's aiortc
receive path (its 4-frame jitter buffer + decoder), so ``added_ms`` is what the node adds.

    .venv/bin/python bench/latency.py --quick    # < 60 s
    .venv/bin/python bench/latency.py            # < 3 min

The last line is one JSON object: latency_ms, direct_ms, added_ms (medians), plus spreads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import salon_node  # noqa: E402

from media import ice  # noqa: E402
from media.client import BotPeer, LoopTrack  # noqa: E402

LOOPBACK = ("127.0.0.1",)
RATE = 48_000
PERIOD = 0.5  # seconds between clicks (a multiple of 20 ms)
CLICK_SAMPLES = 480  # 10 ms burst
PASSWORD = "bench-password-123"


# ---- the click train and its instrumented track -------------------------------------------


def click_train() -> np.ndarray:
    """One period: a 10 ms 1.5 kHz burst at sample 0, then silence (looped by LoopTrack)."""
    pcm = np.zeros(int(RATE * PERIOD), dtype=np.int16)
    t = np.arange(CLICK_SAMPLES) / RATE
    pcm[:CLICK_SAMPLES] = (np.sin(2 * np.pi * 1500 * t) * 0.7 * 32767).astype(np.int16)
    return pcm


class TimedLoopTrack(LoopTrack):
    """The bot's LoopTrack, recording when each frame is handed to aiortc's sender."""

    def __init__(self, pcm: np.ndarray) -> None:
        super().__init__(pcm)
        self.emitted: list[tuple[int, float]] = []  # (pts in samples, monotonic time)

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        self.emitted.append((int(frame.pts or 0), time.monotonic()))
        return frame

    def click_times(self) -> list[float]:
        period = int(RATE * PERIOD)
        return [t for pts, t in self.emitted if pts % period == 0]


def timed_speaker(peer: BotPeer, pcm: np.ndarray) -> TimedLoopTrack:
    """Give a BotPeer the instrumented track (before ``start()``; same class otherwise)."""
    track = TimedLoopTrack(pcm)
    peer._track = track
    return track


# ---- analysis ----------------------------------------------------------------------------------


def onsets(chunks: list[tuple[float, np.ndarray]], since: float) -> list[float]:
    """Arrival times of click onsets in a recording of (arrival time, pcm) chunks."""
    chunks = [(t, pcm) for t, pcm in chunks if t >= since and len(pcm)]
    if not chunks:
        return []
    pcm = np.concatenate([c for _, c in chunks]).astype(np.float64)
    starts = np.cumsum([0] + [len(c) for _, c in chunks])
    peak = np.max(np.abs(pcm)) if len(pcm) else 0.0
    if peak < 1000:
        return []
    loud = np.flatnonzero(np.abs(pcm) > 0.3 * peak)
    quiet_gap = int(0.1 * RATE)
    found: list[float] = []
    last = -quiet_gap - 1
    for index in loud:
        if index - last > quiet_gap:
            chunk = int(np.searchsorted(starts, index, side="right")) - 1
            found.append(chunks[chunk][0] + (index - starts[chunk]) / RATE)
        last = int(index)
    return found


def delays_ms(emitted: list[float], arrived: list[float]) -> list[float]:
    """Per click: arrival − latest emission before it (clicks are PERIOD apart)."""
    out = []
    emitted = sorted(emitted)
    for t in arrived:
        before = [e for e in emitted if e <= t]
        if before and t - before[-1] < PERIOD:
            out.append((t - before[-1]) * 1000)
    return out


def summary(name: str, delays: list[float]) -> float:
    if not delays:
        raise SystemExit(f"{name}: no clicks detected at the listener")
    median = statistics.median(delays)
    print(
        f"{name}: {len(delays)} clicks, median {median:.1f} ms "
        f"(min {min(delays):.1f}, max {max(delays):.1f}, "
        f"stdev {statistics.pstdev(delays):.1f})"
    )
    return median


async def record_clicks(speaker: TimedLoopTrack, listener: BotPeer, seconds: float) -> list[float]:
    await asyncio.sleep(1.0)  # let both jitter buffers settle
    since = time.monotonic()
    await asyncio.sleep(seconds)
    await asyncio.sleep(0.5)  # the last click's flight
    emitted = [t for t in speaker.click_times() if t >= since - PERIOD]
    return delays_ms(emitted, onsets(listener.chunks, since))


# ---- direct aiortc → aiortc ------------------------------------------------------------------


async def run_direct(seconds: float) -> list[float]:
    """The listener BotPeer offers recvonly; an aiortc peer answers with the timed track."""
    speaker_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = TimedLoopTrack(click_train())
    listener: BotPeer | None = None

    async def to_speaker(message: dict) -> None:
        await speaker_pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
        speaker_pc.addTrack(track)  # reuses the offered audio transceiver: sendonly
        answer = await speaker_pc.createAnswer()
        with ice.host_addresses(LOOPBACK):
            await speaker_pc.setLocalDescription(answer)
        assert listener is not None and speaker_pc.localDescription is not None
        await listener.handle({"type": "answer", "sdp": speaker_pc.localDescription.sdp})

    listener = BotPeer(to_speaker, ice_addresses=LOOPBACK, speak=False)
    try:
        await listener.start()
        await listener.wait_connected(15)
        return await record_clicks(track, listener, seconds)
    finally:
        track.stop()
        await listener.close()
        await speaker_pc.close()


# ---- through a real node -----------------------------------------------------------------------


async def bearer(http: aiohttp.ClientSession, url: str, user: str) -> dict[str, str]:
    """Sign a fresh user up and return bearer-token headers for it."""
    credentials = {"username": user, "password": PASSWORD}
    async with http.post(url + "/api/auth/signup", json=credentials) as response:
        if response.status != 201:
            raise SystemExit(f"signup {user}: HTTP {response.status} {await response.text()}")
    async with http.post(url + "/api/auth/token", json=credentials) as response:
        token = (await response.json())["token"]
    return {"Authorization": f"Bearer {token}"}


class RoomClient:
    """A room WebSocket carrying a BotPeer's signalling (what ``salon bot`` does)."""

    def __init__(self, http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
        self.http = http
        self.url = url
        self.headers = headers
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.peer: BotPeer | None = None
        self._pump: asyncio.Task[None] | None = None

    async def open_room(self, title: str) -> str:
        async with self.http.post(
            self.url + "/api/rooms", json={"title": title}, headers=self.headers
        ) as response:
            room = await response.json()
            if response.status != 201:
                raise SystemExit(f"create room: HTTP {response.status} {room}")
        return str(room["id"])

    async def join(self, room_id: str, peer: BotPeer) -> None:
        """Open the room WebSocket (= join) and send the peer's offer through it."""
        self.ws = await self.http.ws_connect(
            f"{self.url}/api/rooms/{room_id}/ws", headers=self.headers
        )
        state = await self.ws.receive_json(timeout=10)
        if state.get("type") != "state":
            raise SystemExit(f"unexpected first message: {state}")
        self.peer = peer
        self._pump = asyncio.ensure_future(self._run())
        await peer.start()

    async def send_signal(self, message: dict[str, Any]) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.send_json({"type": "signal", "signal": message})

    async def _run(self) -> None:
        assert self.ws is not None and self.peer is not None
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data.get("type") == "signal":
                await self.peer.handle(data["signal"])
            elif data.get("type") == "error":
                print(f"node error: {data.get('error')}", file=sys.stderr)

    async def close(self) -> None:
        if self.peer is not None:
            await self.peer.close()
        if self.ws is not None:
            await self.ws.close()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump


async def run_node(seconds: float) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="salon-bench-") as tmp:
        async with salon_node(Path(tmp) / "node") as url, aiohttp.ClientSession() as http:
            host = RoomClient(http, url, await bearer(http, url, "host"))
            listener = RoomClient(http, url, await bearer(http, url, "ear"))
            try:
                room_id = await host.open_room("latency")
                speaker = BotPeer(host.send_signal, ice_addresses=LOOPBACK, speak=True)
                track = timed_speaker(speaker, click_train())
                await host.join(room_id, speaker)
                ear = BotPeer(listener.send_signal, ice_addresses=LOOPBACK, speak=False)
                await listener.join(room_id, ear)
                await speaker.wait_connected(15)
                await ear.wait_connected(15)
                return await record_clicks(track, ear, seconds)
            finally:
                await listener.close()
                await host.close()


async def run(args: argparse.Namespace) -> dict[str, float]:
    direct = summary("direct aiortc → aiortc", await run_direct(args.seconds))
    node = summary("through one Salon node", await run_node(args.seconds))
    added = node - direct
    print(f"the node adds {added:.1f} ms (goal ≤ 30 ms)")
    return {
        "latency_ms": round(node, 1),
        "direct_ms": round(direct, 1),
        "added_ms": round(added, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter recordings, under 60 s")
    parser.add_argument("--seconds", type=float, default=None, help="recording per path")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 6.0 if args.quick else 20.0
    started = time.monotonic()
    result = asyncio.run(run(args))
    print(f"total {time.monotonic() - started:.0f}s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
