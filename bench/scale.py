"""Scale benchmark (issue 15): what media workers buy, measured on this machine.

A control plane in this process (the node's bus, media/worker/local.py, and its
``WorkerPool``) starts two real ``salon media-worker`` processes. A speaker and N counting
listeners (real aiortc peer connections in other processes, bench/fanout_workers.py;
every RTP packet counted at the listeners, never decoded) join one room:

1. **one worker**: the room's mixer and all N listeners on worker 1;
2. **two workers**: the mixer on worker 1 with N/2 listeners, a relay on worker 2 (fed by
   the mixer's trunk, no decoding) with the other N/2.

Each window reads every worker's CPU time (``/proc/PID/stat``) and the packets the
listeners counted. A worker's capacity at full delivery is its listeners divided by the
share of a core it used: a first window with the speaker and no listener gives each
worker's fixed cost (the mixer's decode/mix/encode and trunk send, the relay's trunk
receive), the listener windows the marginal cost per listener, and a worker's capacity is
the rest of its core over that marginal cost (pooled over both workers' listeners in the
two-worker window). Capacity with two workers is the sum over both, each on its own core.
The ratio to one worker is the figure (goal ≥ 1.7).

3. **latency**: two more listeners, one on each worker, tap the same packets (the relay
   passes the mixer's RTP timestamps through): the extra latency of the relay listener is
   its arrival time minus the mixer listener's for the same timestamp (goal ≤ 1 ms).

    .venv/bin/python bench/scale.py --quick     # ~40 s
    .venv/bin/python bench/scale.py             # 100 listeners, 10 s windows, ~90 s

4. **control plane** (bench/scale_control.py): a real node with 2 000 idle listener
   sessions on two workers vs the same node without workers: its CPU idle and per join.

The last line is one JSON object: listeners, delivery_one, delivery_two, fixed_cpu,
us_per_listener_packet, capacity_one_worker, capacity_two_workers, capacity_ratio,
worker_cpu_one, worker_cpu_two, extra_latency_ms_p50, extra_latency_ms_p95,
latency_samples, idle_sessions, joins, control_with_workers, control_embedded,
join_cpu_ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RtpPacket

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout_workers import LOOPBACK, worker_entry, write_tone
from scale_control import control

from media import ice
from media.trunk import new_keypair
from media.worker.local import LocalHub
from media.worker.protocol import Event
from node.workers.local import LocalWorkers
from node.workers.pool import WorkerPool

ROOM = "scale"
TICK = 0.02


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ControlPlane:
    """The node's side, reduced to what the benchmark needs: the bus and the routing."""

    def __init__(self, socket_path: Path) -> None:
        secret = secrets.token_hex(32)
        self.hub = LocalHub(socket_path, secret.encode())
        self.pool = WorkerPool(self.hub, self._event, lambda worker: None)
        self.children = LocalWorkers(
            2, "http://bench", secret, "127.0.0.1", socket_path=socket_path
        )
        self.answers: dict[str, asyncio.Future[str]] = {}
        self.route: dict[str, str] = {}  # listener process prefix ("w1") → worker
        self.workers: list[str] = []

    def _event(self, worker: str, event: Event) -> None:
        if event.kind == "to_participant" and event.fields["message"].get("type") == "answer":
            future = self.answers.get(event.fields["participant"])
            if future is not None and not future.done():
                future.set_result(event.fields["message"]["sdp"])

    async def start(self) -> None:
        await self.pool.start()
        await self.children.start()
        await asyncio.wait_for(self.pool.ready.wait(), 60)
        while len([w for w in self.pool.workers() if w.ready]) < 2:
            await asyncio.sleep(0.05)
        self.workers = sorted(w.id for w in self.pool.workers())
        mixer, relay = self.workers
        await self.pool.call(mixer, "open_mixer", room=ROOM)
        origin_key, origin_public = new_keypair()
        relay_key, relay_public = new_keypair()
        state = self.pool.get(mixer)
        assert state is not None
        await self.pool.call(
            mixer,
            "open_trunk",
            room=ROOM,
            trunk=7,
            own_key=bytes(origin_key).hex(),
            peer_key=relay_public.hex(),
        )
        await self.pool.call(
            relay,
            "open_relay",
            room=ROOM,
            trunk=7,
            own_key=bytes(relay_key).hex(),
            peer_key=origin_public.hex(),
            origin_host="127.0.0.1",
            origin_port=state.media_port,
        )

    async def offer(self, name: str, sdp: str, worker: str, speaker: bool = False) -> str:
        await self.pool.call(worker, "set_can_speak", room=ROOM, participant=name, allowed=speaker)
        future = self.answers[name] = asyncio.get_running_loop().create_future()
        message = {"type": "offer", "sdp": sdp}
        await self.pool.call(worker, "signal", room=ROOM, participant=name, message=message)
        return await asyncio.wait_for(future, 20)

    def pids(self) -> dict[str, int]:
        return {w.id: w.pid for w in self.pool.workers()}

    async def close(self) -> None:
        await self.children.stop()
        await self.pool.close()


async def handle_offer(request: web.Request) -> web.Response:
    plane: ControlPlane = request.app["plane"]
    body = await request.json()
    name, mode = body["name"], body["mode"]
    speaker = mode == "speaker"
    worker = plane.workers[0] if speaker else plane.route[name.split("-", 1)[0]]
    return web.json_response({"sdp": await plane.offer(name, body["sdp"], worker, speaker)})


class StampListener:
    """A recvonly peer that notes when each RTP timestamp arrived (the latency probe)."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = self.pc.addTransceiver("audio", direction="recvonly")
        self.arrivals: dict[int, float] = {}

        async def stamp(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.arrivals.setdefault(packet.timestamp, time.perf_counter())

        transceiver.receiver._handle_rtp_packet = stamp  # type: ignore[method-assign]

    async def connect(self, plane: ControlPlane, name: str, worker: str) -> None:
        with ice.host_addresses(LOOPBACK):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        local = self.pc.localDescription
        answer = await plane.offer(name, local.sdp, worker)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))


async def ask(conns: list[Any], command: str, arg: Any = None) -> list[Any]:
    loop = asyncio.get_running_loop()
    for conn in conns:
        conn.send((command, arg))
    return [(await loop.run_in_executor(None, conn.recv))[1] for conn in conns]


async def window(
    plane: ControlPlane, conns: list[Any], seconds: float
) -> tuple[dict[str, float], list[int], float]:
    """Each worker's share of a core, and the packets each listener process counted."""
    pids = plane.pids()
    cpu0 = {w: cpu_seconds(p) for w, p in pids.items()}
    packets0 = await ask(conns, "packets")
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    packets1 = await ask(conns, "packets")
    elapsed = time.perf_counter() - start
    share = {w: (cpu_seconds(p) - cpu0[w]) / elapsed for w, p in pids.items()}
    return share, [b - a for a, b in zip(packets0, packets1, strict=True)], elapsed


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="salon-scale-"))
    plane = ControlPlane(tmp / "bus.sock")
    await plane.start()
    app = web.Application()
    app["plane"] = plane
    app.router.add_post("/offer", handle_offer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    tone = tmp / "tone.wav"
    write_tone(tone)
    ctx = mp.get_context("spawn")
    conns, procs = [], []
    for index in range(3):  # 0: the speaker; 1 and 2: listeners
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=worker_entry, args=(child, url, index, str(tone) if index == 0 else None, None)
        )
        proc.start()
        conns.append(parent)
        procs.append(proc)
    for conn in conns:
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "ready"
    mixer, relay = plane.workers
    half = args.listeners // 2
    listeners = conns[1:]
    try:
        # 0. fixed costs: the speaker, the mixer and the trunk to the relay, no listener
        await asyncio.sleep(1.0)
        fixed, _, _ = await window(plane, listeners, args.seconds)
        # 1. one worker: everyone on the mixer worker
        plane.route = {"w1": mixer, "w2": mixer}
        connected = await ask(listeners, "connect", ("salon", half))
        await asyncio.sleep(1.0)
        share_one, packets_one, elapsed_one = await window(plane, listeners, args.seconds)
        await ask(listeners, "close")
        for name in [n for n in list(plane.answers) if n != "speaker"]:
            await plane.pool.call(mixer, "remove", room=ROOM, participant=name)
        plane.answers = {k: v for k, v in plane.answers.items() if k == "speaker"}
        # 2. two workers: half on the mixer, half on the relay
        plane.route = {"w1": mixer, "w2": relay}
        connected_two = await ask(listeners, "connect", ("two", half))
        probes = [StampListener(), StampListener()]
        await probes[0].connect(plane, "probe-mixer", mixer)
        await probes[1].connect(plane, "probe-relay", relay)
        await asyncio.sleep(1.0)
        share_two, packets_two, elapsed_two = await window(plane, listeners, args.seconds)
    finally:
        for conn in conns:
            conn.send(("stop", None))
        for proc in procs:
            proc.join(20)
        await runner.cleanup()
        await plane.close()
    n = sum(connected)
    ticks_one = elapsed_one / TICK
    ticks_two = elapsed_two / TICK
    delivery_one = sum(packets_one) / (n * ticks_one)
    delivery_two = sum(packets_two) / (sum(connected_two) * ticks_two)
    # a worker's capacity: the core left after its fixed costs over the marginal cost per
    # listener (both workers run the same fan-out code; the two-worker marginal is pooled
    # over both workers' listeners, which halves the noise of each worker's own estimate)
    marginal_one = (share_one[mixer] - fixed[mixer]) / n
    capacity_one = (1 - fixed[mixer]) / marginal_one
    n_two = sum(connected_two)
    spent_two = share_two[mixer] + share_two[relay] - fixed[mixer] - fixed[relay]
    marginal_two = spent_two / n_two
    capacity_two = (2 - fixed[mixer] - fixed[relay]) / marginal_two
    marginal_mixer = (share_two[mixer] - fixed[mixer]) / connected_two[0]
    marginal_relay = (share_two[relay] - fixed[relay]) / connected_two[1]
    common = set(probes[0].arrivals) & set(probes[1].arrivals)
    extra = sorted((probes[1].arrivals[t] - probes[0].arrivals[t]) * 1000 for t in common)
    p95 = extra[int(0.95 * (len(extra) - 1))] if extra else float("nan")
    return {
        "listeners": n,
        "delivery_one": round(delivery_one, 4),
        "delivery_two": round(delivery_two, 4),
        "fixed_cpu": {"mixer": round(fixed[mixer], 4), "relay": round(fixed[relay], 4)},
        "us_per_listener_packet": {
            "one_worker": round(marginal_one * 1e6 / 50, 1),
            "two_workers": round(marginal_two * 1e6 / 50, 1),
            "mixer": round(marginal_mixer * 1e6 / 50, 1),
            "relay": round(marginal_relay * 1e6 / 50, 1),
        },
        "worker_cpu_one": {
            "mixer": round(share_one[mixer], 3),
            "other": round(share_one[relay], 3),
        },
        "worker_cpu_two": {
            "mixer": round(share_two[mixer], 3),
            "relay": round(share_two[relay], 3),
        },
        "capacity_one_worker": round(capacity_one),
        "capacity_two_workers": round(capacity_two),
        "capacity_ratio": round(capacity_two / capacity_one, 2),
        "extra_latency_ms_p50": round(statistics.median(extra), 3) if extra else None,
        "extra_latency_ms_p95": round(p95, 3),
        "latency_samples": len(extra),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=100, help="N (even)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each measured window")
    parser.add_argument("--quick", action="store_true", help="40 listeners, 4 s windows")
    parser.add_argument("--idle", type=int, default=2000, help="idle sessions (control plane)")
    parser.add_argument("--joins", type=int, default=100, help="joins measured on top of them")
    parser.add_argument("--only", choices=("media", "control"), help="run one part")
    args = parser.parse_args(argv)
    if args.quick:
        args.listeners, args.seconds, args.idle, args.joins = 40, 4.0, 300, 50
    result: dict[str, Any] = {}
    if args.only != "control":
        result.update(asyncio.run(run(args)))
        print_media(result)
    if args.only != "media":
        tmp = Path(tempfile.mkdtemp(prefix="salon-scale-control-"))
        result.update(asyncio.run(control(tmp, args.idle, args.joins, min(args.seconds, 5.0))))
        print_control(result)
    print(json.dumps(result))


def print_media(result: dict[str, Any]) -> None:
    print(
        f"{result['listeners']} listeners; delivery {result['delivery_one']:.1%} (one worker),"
        f" {result['delivery_two']:.1%} (two)"
    )
    print(
        f"capacity: {result['capacity_one_worker']} listeners on one worker's core,"
        f" {result['capacity_two_workers']} on two: x{result['capacity_ratio']} (goal >= 1.7)"
    )
    print(
        f"extra latency on the relay worker: p50 {result['extra_latency_ms_p50']} ms,"
        f" p95 {result['extra_latency_ms_p95']} ms over {result['latency_samples']} packets"
        " (goal <= 1 ms)"
    )


def print_control(result: dict[str, Any]) -> None:
    workers, embedded = result["control_with_workers"], result["control_embedded"]
    print(
        f"control plane with {result['idle_sessions']} idle sessions on 2 workers:"
        f" {workers['idle_cpu_percent']} % of a core idle, {workers['ms_per_join']} ms CPU per"
        f" join; embedded (no workers): {embedded['idle_cpu_percent']} %,"
        f" {embedded['ms_per_join']} ms per join: x{result['join_cpu_ratio']}"
    )


if __name__ == "__main__":
    main()
