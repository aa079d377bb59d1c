"""Recording benchmark (issue #14): origin CPU of a recorded room vs the same room unrecorded.

One room on an in-process MediaEngine (the origin), 4 speakers each playing a tone and
100 counting listeners, all real aiortc peer connections over loopback, living in worker
processes (bench/fanout_workers.py's CountingListener: listeners never decode). The node's
CPU (this process, every thread: the media tick, the fan-out, the recorder's writer
thread) is measured over alternating windows, recording off and on, ``--rounds`` times in
the same run; the naive baseline is the unrecorded window.

Figures (the last line is one JSON object):

- ``cpu_off_pct`` / ``cpu_on_pct``: node CPU in percent of one core, median over rounds;
- ``extra_cpu_pct``: (on − off) / off × 100 — goal ≤ 3 %;
- ``file_bytes`` / ``stream_bytes`` / ``size_ratio``: bytes of the Ogg file vs the Opus
  payload bytes of the listener mix while recording (what the stream carried) — goal
  within 5 % (the Ogg overhead: 27 bytes + lacing per page and headers);
- ``writer_us_per_packet`` / ``writer_core_pct``: the recorder's page building alone (pure
  Python CRC included) per packet and as a share of one core at 50 packets a second — the
  noise-free lower bound of the extra;
- ``seek_ms`` (median; ``seek_ms_p95``, ``seek_baseline_ms``: reading from the start,
  ``seek_ratio``): range requests into the file just recorded, from bench/seek.py through
  ``FIGURE_HOOKS``.

    .venv/bin/python bench/record.py --quick    # ~40 s
    .venv/bin/python bench/record.py            # ~90 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.fanout import cpu_times, split
from bench.fanout_workers import LOOPBACK, CountingListener, write_tone
from bench.seek import seek_figures
from media.client import BotPeer
from media.engine import MediaConfig, MediaEngine, RoomMedia
from media.recorder import Recorder

# Extra figures computed on the finished recording: each hook gets the Ogg file's path and
# returns keys to add (bench/seek.py's returns seek_ms and its baseline).
FIGURE_HOOKS: list[Callable[[Path], dict[str, Any]]] = [seek_figures]


def writer_cost(path: Path) -> dict[str, Any]:
    """The recorder's own work, without the noise of a whole node: CPU per packet to build
    pages from this run's packets (what the writer thread does besides os.write), and the
    share of one core that is at 50 packets a second."""
    from media.ogg import OggOpusStream, parse_pages

    packets = [p for page in list(parse_pages(path.read_bytes()))[2:] for p in page.packets]
    stream = OggOpusStream(1, 312)
    t0 = time.thread_time()
    for packet in packets:
        stream.add(packet)
        if stream.packets % 25 == 0:
            stream.pages()
    spent = time.thread_time() - t0
    per_packet = spent / max(1, len(packets))
    return {
        "writer_us_per_packet": round(per_packet * 1e6, 2),
        "writer_core_pct": round(per_packet * 50 * 100, 3),
    }


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CountingRecorder(Recorder):
    """A Recorder that also counts the payload bytes handed to it (the stream's bytes)."""

    stream_bytes = 0

    def push(self, packet: bytes) -> None:
        self.stream_bytes += len(packet)
        super().push(packet)


async def worker_main(conn: Connection, url: str, index: int, speakers: int, tone: str) -> None:
    loop = asyncio.get_running_loop()
    peers: list[BotPeer] = []
    listeners: list[CountingListener] = []
    async with ClientSession() as http:
        for s in range(speakers):
            name = f"speaker{index}-{s}"
            holder: list[BotPeer] = []

            async def to_node(message: dict, name: str = name, holder: list = holder) -> None:
                body = {"name": name, "mode": "speaker", "sdp": message["sdp"]}
                async with http.post(url + "/offer", json=body) as response:
                    answer = await response.json()
                await holder[0].handle({"type": "answer", "sdp": answer["sdp"]})

            peer = BotPeer(to_node, play=Path(tone), ice_addresses=LOOPBACK, keep_audio=False)
            holder.append(peer)
            await peer.start()
            await peer.wait_connected(15)
            peers.append(peer)
        conn.send(("ready", 0))
        while True:
            command, arg = await loop.run_in_executor(None, conn.recv)
            if command == "connect":
                batch = [CountingListener() for _ in range(arg)]
                for i in range(0, arg, 20):
                    await asyncio.gather(
                        *(
                            lst.connect(http, url, f"w{index}-l{i + j}", "listener")
                            for j, lst in enumerate(batch[i : i + 20])
                        )
                    )
                listeners += batch
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and any(
                    lst.pc.connectionState != "connected" for lst in batch
                ):
                    await asyncio.sleep(0.1)
                conn.send(
                    ("connected", sum(lst.pc.connectionState == "connected" for lst in batch))
                )
            else:
                break
        for lst in listeners:
            await lst.pc.close()
        for peer in peers:
            await peer.close()
    conn.send(("stopped", 0))


def worker_entry(conn: Connection, url: str, index: int, speakers: int, tone: str) -> None:
    asyncio.run(worker_main(conn, url, index, speakers, tone))


async def ask(pipes: list[Connection], command: str, args: list[Any]) -> list[Any]:
    loop = asyncio.get_running_loop()
    for pipe, arg in zip(pipes, args, strict=True):
        pipe.send((command, arg))
    return [(await loop.run_in_executor(None, pipe.recv))[1] for pipe in pipes]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    engine = MediaEngine(MediaConfig(ice_addresses=LOOPBACK, tick="thread"))
    await engine.start()
    answers: dict[str, asyncio.Future[str]] = {}

    def send(participant: str, message: dict) -> None:
        future = answers.get(participant)
        if message.get("type") == "answer" and future is not None and not future.done():
            future.set_result(message["sdp"])

    room: RoomMedia = engine.room("bench", send, lambda levels: None)

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        name = body["name"]
        room.set_can_speak(name, body["mode"] == "speaker")
        future = answers[name] = asyncio.get_running_loop().create_future()
        await room.signal(name, {"type": "offer", "sdp": body["sdp"]})
        return web.json_response({"sdp": await future})

    app = web.Application()
    app.router.add_post("/offer", offer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"

    workdir = Path(tempfile.mkdtemp(prefix="salon-bench-record-"))
    tone = workdir / "tone.wav"
    write_tone(tone)
    ctx = mp.get_context("spawn")
    pipes: list[Connection] = []
    procs = []
    workers = args.workers
    speakers = split(args.speakers, workers)
    for i in range(workers):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker_entry, args=(child, url, i, speakers[i], str(tone)))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    loop = asyncio.get_running_loop()
    for pipe in pipes:
        await loop.run_in_executor(None, pipe.recv)
    connected = sum(await ask(pipes, "connect", split(args.listeners, workers)))
    await asyncio.sleep(2)  # settle: ICE, DTLS, first RTCP

    path = workdir / "bench.ogg"
    recorder: CountingRecorder | None = None
    stream_bytes = 0
    off: list[float] = []
    on: list[float] = []
    for _ in range(args.rounds):
        for recording in (False, True):
            if recording:
                recorder = CountingRecorder(
                    path, room.pre_skip, resume=path.exists(), flush_seconds=0.5
                )
                room.set_recorder(recorder)
            u0, s0 = cpu_times()
            t0 = time.monotonic()
            await asyncio.sleep(args.seconds)
            u1, s1 = cpu_times()
            share = ((u1 - u0) + (s1 - s0)) / (time.monotonic() - t0) * 100
            (on if recording else off).append(share)
            if recording and recorder is not None:
                room.set_recorder(None)
                recorder.stop(final=False)
                stream_bytes += recorder.stream_bytes
    # the whole file: headers and every page, against every payload byte the recorder got
    final = Recorder(path, room.pre_skip, resume=True)
    final.stop(final=True)
    file_bytes = path.stat().st_size
    result: dict[str, Any] = {
        "speakers": args.speakers,
        "listeners": connected,
        "rounds": args.rounds,
        "window_seconds": args.seconds,
        "cpu_off_pct": round(statistics.median(off), 2),
        "cpu_on_pct": round(statistics.median(on), 2),
    }
    result["extra_cpu_pct"] = round(
        (result["cpu_on_pct"] - result["cpu_off_pct"]) / result["cpu_off_pct"] * 100, 2
    )
    result.update(
        file_bytes=file_bytes,
        stream_bytes=stream_bytes,
        size_ratio=round(file_bytes / stream_bytes, 4) if stream_bytes else None,
    )
    result.update(writer_cost(path))
    for hook in FIGURE_HOOKS:
        result.update(hook(path))
    await ask(pipes, "stop", [None] * workers)
    for proc in procs:
        proc.join(10)
    await engine.close()
    await engine.close_port()
    await runner.cleanup()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--listeners", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 2, 5.0
    result = asyncio.run(run(args))
    print(
        f"recording: node CPU {result['cpu_on_pct']} % of a core vs {result['cpu_off_pct']} % "
        f"unrecorded (+{result['extra_cpu_pct']} %), {result['listeners']} listeners, "
        f"{result['speakers']} speakers; file {result['file_bytes']} B vs stream "
        f"{result['stream_bytes']} B (ratio {result['size_ratio']})"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
