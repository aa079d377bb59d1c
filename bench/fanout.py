"""Fan-out benchmark: node CPU per listener-packet, Salon's fan-out vs naive aiortc senders.

One room, one speaker, N listeners, all real aiortc peer connections over loopback; the
speaker and the listeners live in worker processes (bench/fanout_workers.py: listeners
count packets at the raw receive hook, never decode), the node (this process) runs the
MediaEngine. Node CPU is this process's CPU time (all threads, ``getrusage``) during a
window, minus the speaker-only baseline, divided by the RTP packets written to listeners
in that window. The listeners count what they receive over the same window, so a path
that silently drops packets cannot look cheap. Windows, in one run:

1. baseline: the speaker alone (mixer, encoder, uplink);
2. idle: N Salon listeners connected, fan-out switched off — the per-connection background
   (aiortc RTCP, aioice consent checks, DTLS reader) that every aiortc connection costs;
3. salon: Salon's fan-out (native batch, media/batch.py) serving SMALL, then all N of the
   connected listeners, alternated ``--rounds`` times: the slope is the marginal cost;
4. python: the same N listeners on the Python path;
5. floor: the same bytes to the same listeners from prebuilt entries, one native call per
   tick and no Python per packet; then the same from one shared socket;
6. naive: N' fresh listeners, each fed by its own aiortc ``RTCRtpSender`` whose track yields
   the same pre-encoded ``av.Packet`` (aiortc's per-sender coroutine, ``RtpPacket``
   serialisation, SRTP, asyncio ``sendto``) — what a straightforward aiortc server does.

    .venv/bin/python bench/fanout.py --quick     # ~50 s
    .venv/bin/python bench/fanout.py             # ~135 s on 2 cores

The last line is one JSON object: us_per_listener_packet, listeners_per_core,
naive_listeners_per_core, ratio, kb_per_listener, marginal_us, floor_us (plus the
decomposition: docs/performance.md explains every key).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import fractions
import gc
import json
import logging
import multiprocessing as mp
import os
import pstats
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import av
from aiohttp import ClientSession, web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout_net import RemoteNet, ipis, net_rx, pinned, remote_net, softirq_ticks, unavailable
from fanout_workers import slow_rtcp, worker_entry, write_tone

from media import ice
from media.batch import BatchWriter, Entry, load_native
from media.engine import MediaConfig, MediaEngine, RoomMedia
from media.fanout import Downlink

logger = logging.getLogger("bench.fanout")
LOOPBACK = ("127.0.0.1",)
PACKETS_PER_SECOND = 50


# ---- naive baseline: one aiortc sender per listener, fed av.Packets through a track ------


class PacketTrack(MediaStreamTrack):
    """What a straightforward aiortc server does: a track per listener yielding av.Packet."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[av.Packet | None] = asyncio.Queue(maxsize=10)
        self.sent = 0

    async def recv(self) -> av.Packet:
        packet = await self.queue.get()
        if packet is None:
            raise MediaStreamError
        self.sent += 1
        return packet

    def offer(self, packet: av.Packet) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # the loop is saturated: drop, do not grow
        self.queue.put_nowait(packet)


class BenchRoom(RoomMedia):
    """RoomMedia that also feeds naive per-listener tracks with the same encoded packet.

    ``mode``: "native" / "python" (Salon's fan-out on the C batch or on the Python path),
    "off" (listeners stay connected but get nothing: the idle window) or "floor" (the
    cheapest loop that writes the same bytes: the entries are built once, then every tick is
    one native call on that list with the sequence numbers offset; no Python per packet).
    """

    naive: list[PacketTrack]
    loop_seconds = 0.0  # CPU time (this thread) inside the fan-out loop only
    mode = "native"
    floor_entries: list[Entry] | None = None
    shared_entries: list[Entry] | None = None
    shared_sock: socket.socket | None = None
    floor_ticks = 0
    floor_packets = 0
    parked: dict[str, Downlink] | None = None
    shared_host = "127.0.0.1"  # the node's address (the floor's extra socket binds there)

    def serve_only(self, count: int | None) -> None:
        """Fan out to the first COUNT listeners only (None: all); the rest stay connected.

        The others' downlinks are parked (the session has none, as before negotiation), so
        the room's real fan-out code runs unchanged for the served ones.
        """
        for name, downlink in (self.parked or {}).items():
            session = self.session(name)
            if session is not None:
                session.downlink = downlink
        self.parked = {}
        if count is None:
            return
        listeners = [n for n in self.participants if n != "speaker"]
        for name in listeners[count:]:
            session = self.session(name)
            if session is not None and session.downlink is not None:
                self.parked[name] = session.downlink
                session.downlink = None

    def fan_out(
        self,
        main: bytes,
        personal: dict[str, bytes],
        timestamp: int,
        level_byte: bytes,
        own: bytes | None = None,
    ) -> None:
        mode = self.mode
        if mode.startswith("floor"):
            t0 = time.thread_time()
            self._floor(main, timestamp, level_byte, shared=mode == "floor_shared")
            self.loop_seconds += time.thread_time() - t0
        elif mode != "off":
            t0 = time.thread_time()
            super().fan_out(main, personal, timestamp, level_byte, own)
            self.loop_seconds += time.thread_time() - t0
        if self.naive:
            packet = av.Packet(main)
            packet.pts = self.ticks * 960
            packet.time_base = fractions.Fraction(1, 48_000)
            for track in self.naive:
                track.offer(packet)

    call_seconds = 0.0  # of which: inside the batch send itself (header, SRTP, syscalls)

    def use_python_path(self, python: bool) -> None:
        self._writer = BatchWriter(native=not python, lock=self._writer.lock)
        self.time_batch_calls()

    def time_batch_calls(self) -> None:
        """Also time the send call alone, so the Python around it (entries) is known."""
        send = self._writer.send_batch

        def timed_send(entries: list[Entry], timestamp: int, level: bytes) -> list[Any]:
            t0 = time.thread_time()
            try:
                return send(entries, timestamp, level)
            finally:
                self.call_seconds += time.thread_time() - t0

        self._writer.send_batch = timed_send

    def _floor(self, main: bytes, timestamp: int, level_byte: bytes, shared: bool) -> None:
        native = load_native()
        assert native is not None, "the floor needs the native extension"
        if self.floor_entries is None:
            entries = []
            for name in self.participants:
                session = self.session(name)
                downlink = session.downlink if session is not None else None
                entry = downlink.entry(main) if downlink is not None else None
                if name != "speaker" and entry is not None:
                    entries.append(entry)
            self.floor_entries = entries
        entries = self.floor_entries
        if shared:
            # one socket for every listener, as the shared media port of wave 2 will have;
            # aioice takes data from any source address on the selected pair's socket
            if self.shared_entries is None:
                self.shared_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.shared_sock.setblocking(False)
                self.shared_sock.bind((self.shared_host, 0))
                self.shared_entries = [
                    (e[0]._replace(sock=self.shared_sock), *e[1:]) for e in entries
                ]
            entries = self.shared_entries
        self.floor_ticks += 1
        with self._writer.lock:  # the sessions are also aiortc's (RTCP on the loop)
            failures = native.send_batch(entries, timestamp, level_byte, self.floor_ticks)
        self.floor_packets += len(entries) - len(failures)


@dataclass
class Node:
    engine: MediaEngine
    room: BenchRoom
    answers: dict[str, asyncio.Future[str]]
    naive_pcs: list[RTCPeerConnection]
    addresses: tuple[str, ...] = LOOPBACK

    def salon_packets(self) -> int:
        total = 0
        for name in self.room.participants:
            session = self.room.session(name)
            if name != "speaker" and session is not None and session.downlink is not None:
                total += session.downlink.packets
        return total

    def naive_packets(self) -> int:
        return sum(t.sent for t in self.room.naive)


def build_node(native: bool, addresses: tuple[str, ...] = LOOPBACK) -> Node:
    engine = MediaEngine(MediaConfig(ice_addresses=addresses, native_fanout=native))
    answers: dict[str, asyncio.Future[str]] = {}

    def send(participant: str, message: dict) -> None:
        future = answers.get(participant)
        if message.get("type") == "answer" and future is not None and not future.done():
            future.set_result(message["sdp"])

    room = BenchRoom("bench", engine.config, send, lambda levels: None, engine.port)
    room.mode = "native" if native else "python"
    room.shared_host = addresses[0]
    room.time_batch_calls()
    room.naive = []  # the engine does not hold this room: run() closes it before the engine
    return Node(engine, room, answers, [], addresses)


async def handle_offer(request: web.Request) -> web.Response:
    node: Node = request.app["node"]
    body = await request.json()
    name, mode, sdp = body["name"], body["mode"], body["sdp"]
    if mode == "naive":
        return web.json_response({"sdp": await naive_answer(node, sdp)})
    node.room.set_can_speak(name, mode == "speaker")
    future = node.answers[name] = asyncio.get_running_loop().create_future()
    await node.room.signal(name, {"type": "offer", "sdp": sdp})
    try:
        answer = await future
    finally:  # the node keeps no answer once sent: neither may its stand-in signaling
        node.answers.pop(name, None)
    return web.json_response({"sdp": answer})


async def naive_answer(node: Node, sdp: str) -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    node.naive_pcs.append(pc)
    await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
    transceiver = pc.getTransceivers()[0]
    track = PacketTrack()
    transceiver.sender.replaceTrack(track)
    transceiver.direction = "sendonly"
    node.room.naive.append(track)
    answer = await pc.createAnswer()
    with ice.host_addresses(node.addresses):
        await pc.setLocalDescription(answer)
    return pc.localDescription.sdp


async def handle_close(request: web.Request) -> web.Response:
    node: Node = request.app["node"]
    for name in [n for n in node.room.participants if n != "speaker"]:
        await node.room.remove(name)
    for track in node.room.naive:
        track.offer(None)  # type: ignore[arg-type]
    node.room.naive = []
    for pc in node.naive_pcs:
        await pc.close()
    node.naive_pcs = []
    return web.json_response({})


# ---- measurement -----------------------------------------------------------------------------


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


async def ask(conns: list[Connection], command: str, arg: Any = None) -> list[Any]:
    loop = asyncio.get_running_loop()
    for conn in conns:
        conn.send((command, arg))
    replies = [await loop.run_in_executor(None, conn.recv) for conn in conns]
    return [value for _, value in replies]


def cpu_times() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, all threads (µs resolution)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


LAST_SYS = [0.0]  # system-CPU share of the last measure() window
LAST_NET_RX: list[int] = []  # NET_RX softirqs per CPU during the last measure() window
LAST_SOFTIRQ: list[int] = []  # softirq clock ticks per CPU (/proc/stat) during it
LAST_IPI: list[int] = []  # function-call interrupts (RPS's IPIs among them) per CPU


@contextlib.contextmanager
def profiled(enabled: bool, label: str) -> Iterator[None]:
    """--profile: cProfile the event-loop thread over a window, print the top functions."""
    if not enabled:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        print(f"--- profile: {label}, top functions by own time ---")
        pstats.Stats(profile).sort_stats("tottime").print_stats(14)


async def measure(seconds: float, packets: Any) -> tuple[float, int]:
    """CPU seconds used by this process and listener packets written during ``seconds``."""
    p0, (u0, s0), rx0, si0, ipi0 = packets(), cpu_times(), net_rx(), softirq_ticks(), ipis()
    await asyncio.sleep(seconds)
    u1, s1 = cpu_times()
    LAST_SYS[0] = s1 - s0
    LAST_NET_RX[:] = [b - a for a, b in zip(rx0, net_rx(), strict=True)]
    LAST_SOFTIRQ[:] = [b - a for a, b in zip(si0, softirq_ticks(), strict=True)]
    LAST_IPI[:] = [b - a for a, b in zip(ipi0, ipis(), strict=True)]
    return (u1 - u0) + (s1 - s0), packets() - p0


async def measure_window(
    seconds: float, packets: Any, pipes: list[Connection]
) -> tuple[float, int, int]:
    """Like measure(), plus the packets the listeners counted over the same window."""
    r0 = sum(await ask(pipes, "packets"))
    cpu, sent = await measure(seconds, packets)
    r1 = sum(await ask(pipes, "packets"))
    return cpu, sent, r1 - r0


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def run(args: argparse.Namespace, net: RemoteNet | None = None) -> dict[str, Any]:
    """One whole run; NET: the listeners in a namespace on the other core (remote mode)."""
    native = load_native() is not None and not args.python
    if args.rtcp_interval is not None:  # an experiment: what the RTCP background costs
        slow_rtcp(args.rtcp_interval)
    host = net.node_ip if net is not None else "127.0.0.1"
    node = build_node(native, (host,))
    await node.engine.start()  # the node's one media port
    app = web.Application()
    app["node"] = node
    app.router.add_post("/offer", handle_offer)
    app.router.add_post("/close", handle_close)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://{host}:{port}"
    tone = Path(args.tmp) / "tone.wav"
    write_tone(tone)

    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for i in range(args.workers):
        parent, child = ctx.Pipe()
        speaker_tone = str(tone) if i == 0 else None
        place = (net.namespace, net.listener_cpu) if net is not None else None
        addresses = (net.listener_ip,) if net is not None else LOOPBACK
        proc = ctx.Process(
            target=worker_entry,
            args=(child, url, i, speaker_tone, args.rtcp_interval, addresses, place),
        )
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    try:
        loop = asyncio.get_running_loop()
        for conn in pipes:
            await loop.run_in_executor(None, conn.recv)  # ready (speaker connected)
        await asyncio.sleep(1.0)

        async with ClientSession() as http:
            base_cpu, _ = await measure(args.seconds, lambda: 0)
            base_rate = base_cpu / args.seconds
            print(f"baseline (speaker only): {base_rate * 100:.1f}% of a core")

            gc.collect()
            rss0 = rss_kb()
            room = node.room
            room.mode = "off"
            counts = split(args.listeners, args.workers)
            connected = sum(await ask_split(pipes, "salon", counts))
            await asyncio.sleep(1.0)
            gc.collect()
            kb_per_listener = (rss_kb() - rss0) / max(1, connected)
            with profiled(args.profile, "idle window (the per-connection background)"):
                idle_cpu, _ = await measure(args.seconds, lambda: 0)
            idle_sys = LAST_SYS[0]
            idle_us = (
                max(0.0, idle_cpu - base_rate * args.seconds)
                / max(1, connected)
                / args.seconds
                / PACKETS_PER_SECOND
                * 1e6
            )
            print(
                f"idle: {connected} connected listeners, no fan-out: node CPU "
                f"{idle_cpu / args.seconds * 100:.1f}% → background {idle_us:.2f} µs per "
                f"listener per 20 ms (aiortc RTCP, aioice consent, DTLS: paid by both paths)"
            )
            # Marginal cost: all listeners stay connected (same background) while the fan-out
            # serves SMALL or all of them, alternating windows to average the box's noise;
            # the slope is per extra listener-packet, and the background per listener per
            # tick is added to it (an extra listener costs both).
            room.mode = "native" if native else "python"
            windows: dict[int, list[dict[str, float]]] = {args.small: [], connected: []}
            for _ in range(args.rounds):
                for n in (args.small, connected):
                    room.serve_only(n)
                    await asyncio.sleep(0.5)
                    windows[n].append(await salon_window(args, node, pipes, base_rate, n))
            room.serve_only(None)
            keys = ("cpu", "sent", "loop", "call")
            low = {k: sum(w[k] for w in windows[args.small]) for k in keys}
            high = {k: sum(w[k] for w in windows[connected]) for k in keys}
            call_us = high["call"] / max(1, high["sent"]) * 1e6
            last = windows[connected][-1]
            salon_us = sum(w["us"] for w in windows[connected]) / args.rounds
            loop_us = high["loop"] / max(1, high["sent"]) * 1e6
            sent = int(last["sent"])
            salon_sys_us = max(0.0, last["sys"] - idle_sys) / max(1, sent) * 1e6
            slope_us = (high["cpu"] - low["cpu"]) / max(1, high["sent"] - low["sent"]) * 1e6
            slope_loop_us = (high["loop"] - low["loop"]) / max(1, high["sent"] - low["sent"]) * 1e6
            marginal_us = slope_us + idle_us

            # where the receive softirqs ran while all N were served: on loopback mostly
            # in the node's own system calls; in the remote mode on the listeners' core
            def per_cpu(key: str) -> list[int]:
                rows = [w[key] for w in windows[connected]]
                return [sum(c) for c in zip(*rows, strict=True)]  # type: ignore[call-overload]

            rx, softirq, ipi = per_cpu("net_rx"), per_cpu("softirq"), per_cpu("ipi")
            print(
                f"while serving {connected}, per CPU: NET_RX softirqs {rx}, softirq time "
                f"{softirq} ticks of 1/{os.sysconf('SC_CLK_TCK')} s, function-call IPIs {ipi}"
            )
            rx_node = softirq_node = ipi_per_packet = None
            if net is not None:
                rx_node = rx[net.node_cpu] / max(1, sum(rx))
                softirq_node = softirq[net.node_cpu] / max(1, sum(softirq))
                # RPS hands a packet to the listeners' core with an IPI when that core's
                # backlog was idle: the one cost of the hand-over that stays on the node
                ipi_per_packet = ipi[net.listener_cpu] / max(1, high["sent"])
            print(
                f"marginal ({args.small} → {connected} listeners served, {args.rounds} rounds): "
                f"{slope_us:.2f} µs of node CPU per extra listener-packet ({slope_loop_us:.2f} "
                f"inside the fan-out call) + {idle_us:.2f} µs background = {marginal_us:.2f} µs"
            )
            print(f"{kb_per_listener:.0f} KB RSS per listener")
            steps = windows[args.small] + windows[connected]
            overloaded = any(
                w["sent"] / max(1, w["listeners"]) / args.seconds < 0.98 * PACKETS_PER_SECOND
                for w in steps
            )
            if overloaded:
                print(
                    "WARNING: the mixer lost ticks in a window (the box is overloaded): the "
                    "marginal slope compares unequal loads and is not reliable"
                )
            python_loop_us = python_us = 0.0
            floor_us = floor_node_us = floor_shared_us = floor_shared_node_us = 0.0
            if native:
                room.use_python_path(True)
                room.mode = "python"
                await asyncio.sleep(0.5)
                py = await salon_window(args, node, pipes, base_rate, connected, "python")
                python_us, python_loop_us = py["us"], py["loop_us"]
                steps.append(py)
                room.use_python_path(False)
                # the floor comes last: it moves sequence numbers past the downlinks' own
                room.mode = "floor"
                await asyncio.sleep(0.5)
                fl = await salon_window(
                    args, node, pipes, base_rate, connected, "floor", floor=True
                )
                floor_us, floor_node_us = fl["loop_us"], fl["us"]
                steps.append(fl)
                room.mode = "floor_shared"
                await asyncio.sleep(0.5)
                fs = await salon_window(
                    args, node, pipes, base_rate, connected, "floor, one socket", floor=True
                )
                floor_shared_us, floor_shared_node_us = fs["loop_us"], fs["us"]
                steps.append(fs)
                room.mode = "off"
                if room.shared_sock is not None:
                    room.shared_sock.close()
            await ask(pipes, "close")
            async with http.post(url + "/close", json={}):
                pass
            await asyncio.sleep(1.0)

            naive_n = min(args.naive_listeners, args.listeners)
            connected_naive = sum(await ask_split(pipes, "naive", split(naive_n, args.workers)))
            await asyncio.sleep(1.0)
            cpu_n, sent_n, received_n = await measure_window(
                args.seconds, node.naive_packets, pipes
            )
            naive_us = max(0.0, cpu_n - base_rate * args.seconds) / max(1, sent_n) * 1e6
            naive_sys_us = max(0.0, LAST_SYS[0] - idle_sys) / max(1, sent_n) * 1e6
            print(
                f"naive: {connected_naive} listeners, {sent_n} packets in {args.seconds:.0f}s "
                f"({sent_n / max(1, connected_naive) / args.seconds:.1f} pps each), listeners "
                f"counted {received_n} ({received_n / max(1, sent_n) * 100:.1f}%), node CPU "
                f"{cpu_n / args.seconds * 100:.1f}% → {naive_us:.1f} µs per listener-packet "
                f"(kernel {naive_sys_us:.1f} µs above idle)"
            )
            short = any(st["received"] < 0.97 * st["sent"] for st in steps)
            short = short or received_n < 0.97 * sent_n
            if short or connected < args.listeners or connected_naive < naive_n:
                print("WARNING: listeners did not receive (nearly) every packet written")
            await ask(pipes, "close")
            async with http.post(url + "/close", json={}):
                pass
    finally:
        for conn in pipes:
            conn.send(("stop", None))
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        await node.room.close()
        await node.engine.close()
        await node.engine.close_port()
        await runner.cleanup()

    per_core = 1e6 / PACKETS_PER_SECOND / salon_us if salon_us else float("inf")
    naive_per_core = 1e6 / PACKETS_PER_SECOND / naive_us if naive_us else float("inf")
    return {
        "us_per_listener_packet": round(salon_us, 2),
        "listeners_per_core": round(per_core),
        "naive_listeners_per_core": round(naive_per_core),
        "ratio": round(naive_us / salon_us, 2) if salon_us else float("inf"),
        "kb_per_listener": round(kb_per_listener, 1),
        "marginal_us": round(marginal_us, 2),
        "floor_us": round(floor_us, 2),
        "loop_to_floor": round(loop_us / floor_us, 2) if floor_us else float("inf"),
        "marginal_ratio": round(naive_us / marginal_us, 2) if marginal_us > 0 else float("inf"),
        "marginal_slope_us": round(slope_us, 2),
        "marginal_loop_us": round(slope_loop_us, 2),
        "native": native,
        "overloaded": overloaded,
        "naive_us_per_listener_packet": round(naive_us, 2),
        "fanout_loop_us": round(loop_us, 2),
        "batch_call_us": round(call_us, 2),
        "python_loop_us": round(python_loop_us, 2),
        "python_us_per_listener_packet": round(python_us, 2),
        "floor_node_us": round(floor_node_us, 2),
        "floor_one_socket_us": round(floor_shared_us, 2),
        "floor_one_socket_node_us": round(floor_shared_node_us, 2),
        "background_us": round(idle_us, 2),
        "salon_sys_us": round(salon_sys_us, 2),
        "naive_sys_us": round(naive_sys_us, 2),
        "listeners": connected,
        "small_listeners": args.small,
        "naive_listeners": connected_naive,
        "mode": "remote" if net is not None else "loopback",
        "net_rx_on_node_cpu": round(rx_node, 3) if rx_node is not None else None,
        "softirq_on_node_cpu": round(softirq_node, 3) if softirq_node is not None else None,
        "ipis_per_listener_packet": None if ipi_per_packet is None else round(ipi_per_packet, 3),
    }


async def salon_window(
    args: argparse.Namespace,
    node: Node,
    pipes: list[Connection],
    base_rate: float,
    connected: int,
    label: str = "salon",
    floor: bool = False,
) -> dict[str, float]:
    """One measured window of the room's current fan-out mode, with its figures printed."""
    room = node.room
    loop0, call0 = room.loop_seconds, room.call_seconds

    def packets() -> int:
        return room.floor_packets if floor else node.salon_packets()

    with profiled(args.profile and connected == args.listeners, f"{label} window"):
        cpu, sent, received = await measure_window(args.seconds, packets, pipes)
    loop = room.loop_seconds - loop0
    us = max(0.0, cpu - base_rate * args.seconds) / max(1, sent) * 1e6
    loop_us = loop / max(1, sent) * 1e6
    call_us = (room.call_seconds - call0) / max(1, sent) * 1e6 if not floor else loop_us
    print(
        f"{label}: {connected} listeners, {sent} packets written in {args.seconds:.0f}s "
        f"({sent / max(1, connected) / args.seconds:.1f} pps each), listeners counted "
        f"{received} ({received / max(1, sent) * 100:.1f}%), node CPU "
        f"{cpu / args.seconds * 100:.1f}% → {us:.2f} µs per listener-packet; inside the "
        f"fan-out call {loop_us:.2f} µs (thread CPU), of which the batch send {call_us:.2f} µs"
    )
    return {
        "cpu": cpu,
        "sys": LAST_SYS[0],
        "sent": sent,
        "received": received,
        "us": us,
        "loop": loop,
        "loop_us": loop_us,
        "call": room.call_seconds - call0,
        "listeners": connected,
        "net_rx": list(LAST_NET_RX),  # type: ignore[dict-item]
        "softirq": list(LAST_SOFTIRQ),  # type: ignore[dict-item]
        "ipi": list(LAST_IPI),  # type: ignore[dict-item]
    }


async def ask_split(pipes: list[Connection], mode: str, counts: list[int]) -> list[int]:
    loop = asyncio.get_running_loop()
    for conn, count in zip(pipes, counts, strict=True):
        conn.send(("connect", (mode, count)))
    return [(await loop.run_in_executor(None, conn.recv))[1] for conn in pipes]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller run, under 60 s")
    parser.add_argument("--listeners", type=int, default=None)
    parser.add_argument("--small", type=int, default=None, help="first count (slope)")
    parser.add_argument("--rounds", type=int, default=None, help="alternations (slope)")
    parser.add_argument("--naive-listeners", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--python", action="store_true", help="Salon on the Python path")
    parser.add_argument("--profile", action="store_true", help="cProfile the windows")
    parser.add_argument(
        "--rtcp-interval",
        type=float,
        default=None,
        help="experiment: aiortc RTCP reports every N s (node and listeners) instead of ~1 s",
    )
    parser.add_argument(
        "--net",
        choices=("both", "remote", "loopback"),
        default="both",
        help="remote: listeners in a network namespace on the other core (root); "
        "loopback: everything on 127.0.0.1 (the figures before); both: remote, then loopback",
    )
    parser.add_argument("--tmp", default="/tmp")
    args = parser.parse_args(argv)
    if args.listeners is None:
        args.listeners = 100 if args.quick else 200
    if args.small is None:
        args.small = max(1, args.listeners // 3)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.naive_listeners is None:
        args.naive_listeners = args.listeners  # same N for both paths
    if args.seconds is None:
        args.seconds = 5.0 if args.quick else 12.0
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    result: dict[str, Any] | None = None
    if args.net in ("remote", "both"):
        reason = unavailable()
        if reason is None:
            try:
                result = run_remote(args)
            except (OSError, subprocess.CalledProcessError) as exc:
                reason = f"{exc}: {getattr(exc, 'stderr', '') or ''}".strip()
        if reason is not None:
            print(f"remote mode unavailable ({reason}): measuring on loopback only")
    if result is None or args.net == "both":
        print("=== loopback: listeners and node on 127.0.0.1, any CPU ===")
        loopback = asyncio.run(run(args))
        if result is None:
            result = loopback
        else:
            result.update({f"{k}_loopback": loopback[k] for k in LOOPBACK_KEYS})
    print(f"total {time.monotonic() - started:.0f}s")
    print(json.dumps(result))


# the figures of the loopback run kept next to the remote run's (as ``<key>_loopback``)
LOOPBACK_KEYS = (
    "us_per_listener_packet",
    "ratio",
    "marginal_us",
    "marginal_ratio",
    "floor_us",
    "loop_to_floor",
    "fanout_loop_us",
    "batch_call_us",
    "naive_us_per_listener_packet",
    "background_us",
    "overloaded",
)


def run_remote(args: argparse.Namespace) -> dict[str, Any]:
    """The run with the listeners in a namespace on the other core (bench/fanout_net.py)."""
    with remote_net() as net:
        print(
            f"=== remote: node on CPU {net.node_cpu} ({net.node_ip}), listeners in "
            f"namespace {net.namespace} on CPU {net.listener_cpu} ({net.listener_ip}), "
            f"RPS steering their receive path to CPU {net.listener_cpu} ==="
        )
        with pinned(net.node_cpu):
            return asyncio.run(run(args, net))


if __name__ == "__main__":
    main()
