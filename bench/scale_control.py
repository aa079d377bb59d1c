"""The control plane's part of bench/scale.py: node CPU with many idle listener sessions.

A real `salon serve` (with `--media-workers 2`, and as the baseline in the same run, with
none: the node answers every offer itself) and one live room. IDLE listeners join over
real room WebSockets and each sends a real WebRTC offer (one recvonly aiortc offer, the
same SDP for all); the node places each on a worker, which answers. Then:

- the node's CPU per second while nothing happens (the idle cost of holding them);
- the node's CPU per joining listener: JOINS more listeners join and are answered.

The sessions never connect (the offer's candidates lead nowhere), so they are what an idle
listener costs the control plane, not the media. Node CPU is its process's (not its
children's) from /proc.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection
from common import salon_node

from media import ice
from tests.support.crowd import prepare_accounts


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def recvonly_offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    with ice.host_addresses(("127.0.0.1",)):
        await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return str(sdp)


class Listener:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.answered = asyncio.get_running_loop().create_future()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data.get("type") == "signal" and data["signal"].get("type") == "answer":
                if not self.answered.done():
                    self.answered.set_result(True)
            elif data.get("type") == "error" and not self.answered.done():
                self.answered.set_exception(RuntimeError(str(data.get("error"))))


async def join(http: aiohttp.ClientSession, url: str, room: str, token: str, sdp: str) -> Listener:
    ws = await http.ws_connect(
        f"{url}/api/rooms/{room}/ws", headers={"Authorization": f"Bearer {token}"}
    )
    listener = Listener(ws)
    await ws.send_json({"type": "signal", "signal": {"type": "offer", "sdp": sdp}})
    await asyncio.wait_for(listener.answered, 60)
    return listener


async def crowd_in(
    http: aiohttp.ClientSession, url: str, room: str, tokens: list[str], sdp: str
) -> list[Listener]:
    joined: list[Listener] = []
    for i in range(0, len(tokens), 25):
        joined += await asyncio.gather(*(join(http, url, room, t, sdp) for t in tokens[i : i + 25]))
    return joined


async def control_run(
    tmp: Path, workers: int, idle: int, joins: int, seconds: float, sdp: str
) -> dict[str, Any]:
    names = ["host"] + [f"i{n}" for n in range(idle)] + [f"j{n}" for n in range(joins)]
    data = tmp / f"control-{workers}"
    tokens = prepare_accounts(data, names)
    env = {"SALON_ROOM_EMPTY_GRACE_SECONDS": "600", "SALON_MEDIA_WORKERS": str(workers)}
    pids: list[int] = []
    listeners: list[Listener] = []
    async with (
        salon_node(data, env=env, pids=pids) as url,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        headers = {"Authorization": f"Bearer {tokens['host']}"}
        async with http.post(url + "/api/rooms", json={"title": "Big"}, headers=headers) as r:
            room = (await r.json())["id"]
        host = await http.ws_connect(f"{url}/api/rooms/{room}/ws", headers=headers)
        drain = asyncio.create_task(_drain(host))
        started = time.monotonic()
        listeners = await crowd_in(http, url, room, [tokens[f"i{n}"] for n in range(idle)], sdp)
        set_up = time.monotonic() - started
        await asyncio.sleep(1.0)
        pid = pids[0]
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        idle_share = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        cpu1 = cpu_seconds(pid)
        listeners += await crowd_in(http, url, room, [tokens[f"j{n}"] for n in range(joins)], sdp)
        per_join = (cpu_seconds(pid) - cpu1) / joins
        for listener in listeners:
            listener.reader.cancel()
            await listener.ws.close()
        drain.cancel()
        await host.close()
    return {
        "set_up_seconds": round(set_up, 1),
        "idle_cpu_percent": round(100 * idle_share, 2),
        "ms_per_join": round(per_join * 1000, 2),
    }


async def _drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


async def control(tmp: Path, idle: int, joins: int, seconds: float) -> dict[str, Any]:
    sdp = await recvonly_offer()
    workers = await control_run(tmp, 2, idle, joins, seconds, sdp)
    embedded = await control_run(tmp, 0, idle, joins, seconds, sdp)
    return {
        "idle_sessions": idle,
        "joins": joins,
        "control_with_workers": workers,
        "control_embedded": embedded,
        "join_cpu_ratio": round(embedded["ms_per_join"] / workers["ms_per_join"], 2)
        if workers["ms_per_join"]
        else None,
    }
