"""Scale benchmark (issue 15): what media workers buy, measured on this machine.

A control plane in this process (the node's bus, media/worker/local.py, and its
``WorkerPool``) starts two real ``salon media-worker`` processes. A speaker and N counting
listeners (real aiortc peer connections in other processes, bench/fanout_workers.py;
every RTP packet counted at the listeners, never decoded) join one room:

1. **one worker**: the room's mixer and all N listeners on worker 1;
2. **two workers**: the mixer on worker 1 with N/2 listeners, a relay on worker 2 (fed by
   the mixer's trunk, no decoding) with the other N/2.

Each window reads every worker's CPU time (its threads' run time in ns,
``/proc/PID/task/*/schedstat``) and the packets the listeners counted. A worker's capacity
at full delivery is its listeners divided by the share of a core it used: a window with
the speaker and no listener gives each worker's fixed cost (the mixer's decode/mix/encode
and trunk send, the relay's trunk receive), the listener windows the marginal cost per
listener, and a worker's capacity is the rest of its core over that marginal cost (pooled
over both workers' listeners in the two-worker window). Capacity with two workers is the
sum over both, each on its own core. The ratio to one worker is the figure (goal ≥ 1.7).

The windows are repeated in ``--rounds`` rounds, each a fixed-cost window then the two
configurations, in ABBA order (one→two, two→one, …) so that a drift of this shared box's
load weighs on both alike; each round gives its own ratio, and the figure is their
median, printed with the spread. The two workers are pinned to distinct cores
(``os.sched_setaffinity``), as the capacity sum assumes; the listener processes' CPU and
the whole box's busy share are measured in the same windows and reported.

3. **latency**: two more listeners, one on each worker, stay for the whole run (in every
   window's load) and tap the same packets (the relay passes the mixer's RTP timestamps
   through): in each two-worker window the extra latency of the relay listener is its
   arrival time minus the mixer listener's for the same timestamp (goal ≤ 1 ms).

    .venv/bin/python bench/scale.py --quick     # 40 listeners, 4 s windows, 3 rounds: ~60 s
    .venv/bin/python bench/scale.py             # 100 listeners, 10 s windows, 4 rounds

4. **control plane** (bench/scale_control.py): a real node with 2 000 idle listener
   sessions on two workers vs the same node without workers: its CPU idle and per join.

The last line is one JSON object: listeners, delivery_one, delivery_two, fixed_cpu,
us_per_listener_packet, capacity_one_worker, capacity_two_workers, capacity_ratio,
worker_cpu_one, worker_cpu_two, capacity_ratio_rounds, capacity_ratio_min,
capacity_ratio_max, rounds, delivery_rounds, rounds_discarded, pinned, listener_cpu_one,
listener_cpu_two, box_busy_one, box_busy_two, extra_latency_ms_p50, extra_latency_ms_p95,
latency_samples, idle_sessions, joins, control_with_workers, control_embedded, join_cpu_ratio.
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
from dataclasses import dataclass
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
    """PID's CPU time: its threads' run time in ns (/proc/PID/task/*/schedstat).

    /proc/PID/stat counts in clock ticks (10 ms here): over a 4 s window that was ±0.5 % of
    a core per reading, a quarter of what 40 listeners cost; the scheduler's own run time
    is exact. (A thread that ends within a window takes its time with it: the workers'
    threads live as long as the run.) Falls back to /proc/PID/stat where it reads 0.
    """
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
    if total:
        return total / 1e9
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
        self.placed: dict[str, str] = {}  # listener → the worker that holds its session

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
        self.placed[name] = worker
        message = {"type": "offer", "sdp": sdp}
        await self.pool.call(worker, "signal", room=ROOM, participant=name, message=message)
        return await asyncio.wait_for(future, 20)

    async def remove_listeners(self) -> None:
        """Remove every counting listener's session (the speaker and the probes stay)."""
        for name, worker in list(self.placed.items()):
            if name.startswith("w"):
                await self.pool.call(worker, "remove", room=ROOM, participant=name)
                del self.placed[name]
                self.answers.pop(name, None)

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


def box_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return float(sum(fields) - idle), float(sum(fields))


def pin(pid: int, cpu: int) -> bool:
    """Every thread of PID onto CPU (threads it starts later inherit it); False if refused."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), {cpu})
    except OSError:
        return False
    return True


@dataclass
class Window:
    share: dict[str, float]  # each worker's share of one core
    packets: list[int]  # counted by each listener process
    elapsed: float
    listener_cpu: float  # the listener processes' CPU, in cores
    box_busy: float  # the whole machine's busy share (1.0 = every core busy)


async def window(plane: ControlPlane, conns: list[Any], pids: list[int], seconds: float) -> Window:
    """Each worker's share of a core, and the packets each listener process counted."""
    workers = plane.pids()
    cpu0 = {w: cpu_seconds(p) for w, p in workers.items()}
    others0 = sum(cpu_seconds(p) for p in pids)
    busy0, total0 = box_busy()
    packets0 = await ask(conns, "packets")
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    packets1 = await ask(conns, "packets")
    elapsed = time.perf_counter() - start
    busy1, total1 = box_busy()
    return Window(
        share={w: (cpu_seconds(p) - cpu0[w]) / elapsed for w, p in workers.items()},
        packets=[b - a for a, b in zip(packets0, packets1, strict=True)],
        elapsed=elapsed,
        listener_cpu=(sum(cpu_seconds(p) for p in pids) - others0) / elapsed,
        box_busy=(busy1 - busy0) / max(total1 - total0, 1.0),
    )


@dataclass
class Phase:
    kind: str  # "one": every listener on the mixer worker; "two": half on each worker
    connected: list[int]  # listeners per listener process
    window: Window
    extra_ms: list[float]  # the latency probes' relay-minus-mixer arrival, this window


async def phase(
    plane: ControlPlane,
    listeners: list[Any],
    pids: list[int],
    probes: list[StampListener],
    kind: str,
    name: str,
    args: argparse.Namespace,
) -> Phase:
    """Connect N listeners as KIND says, settle, measure one window, disconnect them."""
    mixer, relay = plane.workers
    plane.route = {"w1": mixer, "w2": mixer if kind == "one" else relay}
    connected = await ask(listeners, "connect", (name, args.listeners // 2))
    await asyncio.sleep(1.0)
    for probe in probes:
        probe.arrivals.clear()
    measured = await window(plane, listeners, pids, args.seconds)
    extra: list[float] = []
    if kind == "two":
        common = set(probes[0].arrivals) & set(probes[1].arrivals)
        extra = [(probes[1].arrivals[t] - probes[0].arrivals[t]) * 1000 for t in common]
    await ask(listeners, "close")
    await plane.remove_listeners()
    return Phase(kind, connected, measured, extra)


@dataclass
class Round:
    fixed: Window
    one: Phase
    two: Phase

    def estimate(self, mixer: str, relay: str) -> dict[str, float] | None:
        """This round's capacities (None when a marginal cost came out ≤ 0: noise won)."""
        fixed = self.fixed.share
        n_one, n_two = sum(self.one.connected), sum(self.two.connected)
        one, two = self.one.window.share, self.two.window.share
        marginal_one = (one[mixer] - fixed[mixer]) / n_one
        spent_two = two[mixer] + two[relay] - fixed[mixer] - fixed[relay]
        marginal_two = spent_two / n_two
        if marginal_one <= 0 or marginal_two <= 0:
            return None
        capacity_one = (1 - fixed[mixer]) / marginal_one
        capacity_two = (2 - fixed[mixer] - fixed[relay]) / marginal_two
        return {
            "capacity_one": capacity_one,
            "capacity_two": capacity_two,
            "ratio": capacity_two / capacity_one,
            "marginal_one": marginal_one,
            "marginal_two": marginal_two,
            "marginal_mixer": (two[mixer] - fixed[mixer]) / self.two.connected[0],
            "marginal_relay": (two[relay] - fixed[relay]) / self.two.connected[1],
        }


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
    pids = [p.pid for p in procs if p.pid is not None]
    worker_pids = plane.pids()
    # each worker on a core of its own, as the capacity sum assumes (and no migrations); the
    # listener processes, the speaker and this process share both cores with them
    pinned = args.pin and (os.cpu_count() or 1) >= 2
    pinned = pinned and pin(worker_pids[mixer], 0) and pin(worker_pids[relay], 1)
    listeners = conns[1:]
    rounds: list[Round] = []
    try:
        # the latency probes stay for the whole run, one on each worker: part of every
        # window's load, the fixed windows' included
        probes = [StampListener(), StampListener()]
        await probes[0].connect(plane, "probe-mixer", mixer)
        await probes[1].connect(plane, "probe-relay", relay)
        await asyncio.sleep(1.0)
        for r in range(args.rounds):
            # fixed costs: the speaker, the mixer, the trunk to the relay, the probes
            fixed = await window(plane, listeners, pids, args.seconds)
            # ABBA: one→two, then two→one, … so that a drift of the box's load over the
            # run weighs on both configurations alike
            order = ("one", "two") if r % 2 == 0 else ("two", "one")
            done = {
                k: await phase(plane, listeners, pids, probes, k, f"{k}{r}", args) for k in order
            }
            rounds.append(Round(fixed, done["one"], done["two"]))
    finally:
        for conn in conns:
            conn.send(("stop", None))
        for proc in procs:
            proc.join(20)
        await runner.cleanup()
        await plane.close()
    return summarize(rounds, mixer, relay, pinned)


def summarize(rounds: list[Round], mixer: str, relay: str, pinned: bool) -> dict[str, Any]:
    """Medians over the rounds (and their spread); delivery: the worst round."""
    med = statistics.median
    estimates = [e for e in (r.estimate(mixer, relay) for r in rounds) if e is not None]

    def est(key: str) -> float:
        return med(e[key] for e in estimates) if estimates else float("nan")

    def delivered(p: Phase) -> float:
        return sum(p.window.packets) / (sum(p.connected) * p.window.elapsed / TICK)

    def delivery(kind: str) -> float:
        return min(delivered(r.one if kind == "one" else r.two) for r in rounds)

    def share(kind: str, worker: str) -> float:
        return med((r.one if kind == "one" else r.two).window.share[worker] for r in rounds)

    def load(kind: str, what: str) -> float:
        return med(getattr((r.one if kind == "one" else r.two).window, what) for r in rounds)

    ratios = [e["ratio"] for e in estimates]
    extra = sorted(x for r in rounds for x in r.two.extra_ms)
    p95 = extra[int(0.95 * (len(extra) - 1))] if extra else float("nan")
    return {
        "listeners": int(med(sum(r.one.connected) for r in rounds)),
        "delivery_one": round(delivery("one"), 4),
        "delivery_two": round(delivery("two"), 4),
        "fixed_cpu": {
            "mixer": round(med(r.fixed.share[mixer] for r in rounds), 4),
            "relay": round(med(r.fixed.share[relay] for r in rounds), 4),
        },
        "us_per_listener_packet": {
            "one_worker": round(est("marginal_one") * 1e6 / 50, 1),
            "two_workers": round(est("marginal_two") * 1e6 / 50, 1),
            "mixer": round(est("marginal_mixer") * 1e6 / 50, 1),
            "relay": round(est("marginal_relay") * 1e6 / 50, 1),
        },
        "worker_cpu_one": {
            "mixer": round(share("one", mixer), 3),
            "other": round(share("one", relay), 3),
        },
        "worker_cpu_two": {
            "mixer": round(share("two", mixer), 3),
            "relay": round(share("two", relay), 3),
        },
        "capacity_one_worker": round(est("capacity_one")) if estimates else None,
        "capacity_two_workers": round(est("capacity_two")) if estimates else None,
        "capacity_ratio": round(med(ratios), 2) if ratios else None,
        "capacity_ratio_rounds": [round(x, 2) for x in ratios],
        "capacity_ratio_min": round(min(ratios), 2) if ratios else None,
        "capacity_ratio_max": round(max(ratios), 2) if ratios else None,
        "rounds": len(rounds),
        "delivery_rounds": [
            [round(delivered(r.one), 4), round(delivered(r.two), 4)] for r in rounds
        ],
        "rounds_discarded": len(rounds) - len(estimates),
        "pinned": pinned,
        "listener_cpu_one": round(load("one", "listener_cpu"), 3),
        "listener_cpu_two": round(load("two", "listener_cpu"), 3),
        "box_busy_one": round(load("one", "box_busy"), 3),
        "box_busy_two": round(load("two", "box_busy"), 3),
        "extra_latency_ms_p50": round(statistics.median(extra), 3) if extra else None,
        "extra_latency_ms_p95": round(p95, 3),
        "latency_samples": len(extra),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=100, help="N (even)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each measured window")
    parser.add_argument("--rounds", type=int, default=4, help="fixed/one/two rounds (ABBA)")
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="let the workers float (latency tails)"
    )
    parser.add_argument("--quick", action="store_true", help="40 listeners, 4 s windows, 3 rounds")
    parser.add_argument("--idle", type=int, default=2000, help="idle sessions (control plane)")
    parser.add_argument("--joins", type=int, default=100, help="joins measured on top of them")
    parser.add_argument("--only", choices=("media", "control"), help="run one part")
    args = parser.parse_args(argv)
    if args.quick:
        args.listeners, args.seconds, args.idle, args.joins = 40, 4.0, 300, 50
        args.rounds = 3
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
        f"  median of {result['rounds']} rounds (ABBA), spread {result['capacity_ratio_min']}"
        f"-{result['capacity_ratio_max']}: {result['capacity_ratio_rounds']};"
        f" {result['rounds_discarded']} discarded; workers pinned: {result['pinned']};"
        f" box busy {result['box_busy_one']:.0%} / {result['box_busy_two']:.0%},"
        f" listener processes {result['listener_cpu_one']:.2f} / {result['listener_cpu_two']:.2f}"
        " cores (one / two)"
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
