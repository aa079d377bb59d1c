"""Seek benchmark: how fast a 1-hour replay answers a seek (an HTTP range request).

A real node (``cli.app.build_app``) runs in this process on 127.0.0.1. The bench writes a
1-hour Ogg Opus replay (48 kHz mono, 20 ms packets of the room's own encoder, one page a
second, media/ogg.py) with its store row, as the recorder leaves it at the room's end.

Timed, Salon: ``GET /rooms/{id}/replay.ogg`` with ``Range: bytes=O-(O+64 KiB-1)`` at random
offsets O over the file (what a player asks for after a seek), on one keep-alive
connection, until the last byte of the answer is read.

Timed, naive baseline (same run, same node, same offsets): what a player must do when the
server has no ranges — read the file from its start up to O + 64 KiB.

    .venv/bin/python bench/seek.py --quick    # 50 seeks
    .venv/bin/python bench/seek.py            # 300 seeks

The last line is one JSON object: seeks, file_bytes, duration_s, seek_ms_median,
seek_ms_p95, seek_ms_max, baseline_ms_median, baseline_ms_p95, ratio (baseline/seek
medians). Goal (issue #14): seek_ms_p95 < 50.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli.app import NODE, build_app
from media import ogg
from media.codec import OpusEncoder
from node.settings import load_settings

CHUNK = 64 * 1024
HOUR = 3600


def hour_of_opus(seconds: int = HOUR) -> bytes:
    """SECONDS of Ogg Opus: one second of voice-like sound encoded once, then repeated
    packet for packet (the page layout and size are what a recording of that length has)."""
    encoder = OpusEncoder()
    rng = np.random.default_rng(1)
    second = []
    for i in range(50):
        t = (i * 960 + np.arange(960)) / 48_000
        pcm = 0.3 * np.sin(2 * np.pi * (180 + 40 * np.sin(t * 3)) * t) + 0.05 * rng.standard_normal(
            960
        )
        second.append((encoder.encode(pcm.astype(np.float32)), 960))
    return ogg.write_opus((p for _ in range(seconds) for p in second), per_page=50)


async def seek_ms(
    http: aiohttp.ClientSession, url: str, offsets: list[int], *, ranged: bool = True
) -> list[float]:
    """Milliseconds per seek: a range request at each offset (RANGED), or the naive way,
    reading from the start of the file up to the offset plus one chunk."""
    times = []
    for offset in offsets:
        start = time.perf_counter()
        if ranged:
            headers = {"Range": f"bytes={offset}-{offset + CHUNK - 1}"}
            async with http.get(url, headers=headers) as resp:
                assert resp.status == 206, resp.status
                body = await resp.read()
                assert len(body) > 0
        else:
            wanted = offset + CHUNK
            got = 0
            async with http.get(url) as resp:
                assert resp.status == 200, resp.status
                async for chunk in resp.content.iter_chunked(CHUNK):
                    got += len(chunk)
                    if got >= wanted:
                        break
        times.append((time.perf_counter() - start) * 1000)
    return times


async def measure(seeks: int, seconds: int = HOUR, data: bytes | None = None) -> dict[str, Any]:
    """Seeks over an hour of generated Opus, or over DATA (a recorded file) when given."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(Path(tmp), environ={})
        app = build_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        try:
            parts = app[NODE]
            host = await parts.accounts.signup("alice", "password123", "127.0.0.1")
            room = parts.rooms.create(host, parts.rooms.parse_draft({"title": "One hour"}))
            parts.rooms.act(room.id, host, "end")
            if data is None:
                data = hour_of_opus(seconds)
            duration = ogg.read_opus(data).duration
            folder = settings.replay_path
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{room.id}.ogg").write_bytes(data)
            store, now = parts.replays.store, time.time()
            store.begin(room.id, host.id, room.title, now)
            store.finish(room.id, status="ready", size=len(data), duration=duration, ended=now)
            rng = random.Random(7)
            offsets = [rng.randrange(0, max(1, len(data) - CHUNK)) for _ in range(seeks)]
            url = f"{base}/rooms/{room.id}/replay.ogg"
            async with aiohttp.ClientSession() as http:
                await seek_ms(http, url, offsets[:5])  # warm the connection and page cache
                ranged = await seek_ms(http, url, offsets)
                naive = await seek_ms(http, url, offsets, ranged=False)
        finally:
            await runner.cleanup()
    p95 = lambda xs: statistics.quantiles(xs, n=20)[18]  # noqa: E731
    return {
        "seeks": seeks,
        "file_bytes": len(data),
        "duration_s": duration,
        "seek_ms_median": round(statistics.median(ranged), 3),
        "seek_ms_p95": round(p95(ranged), 3),
        "seek_ms_max": round(max(ranged), 3),
        "baseline_ms_median": round(statistics.median(naive), 3),
        "baseline_ms_p95": round(p95(naive), 3),
        "ratio": round(statistics.median(naive) / statistics.median(ranged), 1),
    }


def seek_figures(path: Path, seeks: int = 50) -> dict[str, Any]:
    """bench/record.py's FIGURE_HOOKS entry: seeks into the file it just recorded, served by
    a fresh node on its own event loop (a worker thread: the caller's loop is running)."""
    data = path.read_bytes()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, measure(seeks, data=data)).result()
    return {
        "seek_ms": result["seek_ms_median"],
        "seek_ms_p95": result["seek_ms_p95"],
        "seek_baseline_ms": result["baseline_ms_median"],
        "seek_ratio": result["ratio"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 seeks instead of 300")
    args = parser.parse_args()
    seeks = 50 if args.quick else 300
    print(f"seek benchmark, 1-hour replay, {seeks} seeks, {os.cpu_count()} cores", flush=True)
    result = asyncio.run(measure(seeks))
    print(
        f"  range request: median {result['seek_ms_median']} ms, p95 {result['seek_ms_p95']} ms;"
        f" reading from the start: median {result['baseline_ms_median']} ms"
        f" ({result['ratio']}× slower)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
