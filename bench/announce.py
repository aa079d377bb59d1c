"""Announce benchmark: one room announced to 10 000 followers spread over 100 nodes.

A real node (``cli.app.build_app``) runs in this process on 127.0.0.1 with alice; a
receiver process runs one aiohttp application on 100 loopback ports, i.e. 100 simulated
remote nodes (each ``127.0.0.1:PORT`` is its own host to the node), answering 202 and
counting POSTs per inbox. 10 000 remote followers — 100 per receiver, each with a personal
inbox and its node's shared inbox — are inserted through the node's store (``upsert_actor``
+ an accepted follow), as the inbox would have stored them.

Timed, Salon: alice starts a room (``POST /api/rooms``); the node's announcer queues the
``Create{Event}`` once per shared inbox and the delivery worker signs and sends it. The
clock runs from the API call until every queued delivery is ``sent`` (2xx from the
receiver), and the receiver's count is checked.

Timed, baseline (same run, same node and worker): the same activity queued once per
follower's personal inbox (10 000 rows), i.e. per-follower delivery without shared-inbox
collapsing, until all are sent.

    .venv/bin/python bench/announce.py --quick    # < 60 s: one round
    .venv/bin/python bench/announce.py            # < 3 min on 2 cores: median of 3 rounds

The last line is one JSON object: posts, seconds, baseline_posts, baseline_seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli.app import build_app
from federation.activities import host_of
from federation.service import FEDERATION, Federation
from node.settings import load_settings

NODES = 100
FOLLOWERS = 10_000


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [int(s.getsockname()[1]) for s in socks]
    for s in socks:
        s.close()
    return ports


# ---- receivers: 100 simulated nodes in one process ------------------------------------------
async def _receivers_main(conn: Connection, ports: list[int]) -> None:
    counts: dict[str, int] = {"shared": 0, "personal": 0}

    async def inbox(request: web.Request) -> web.Response:
        await request.read()
        counts["shared" if request.path == "/inbox" else "personal"] += 1
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/inbox", inbox)
    app.router.add_post("/users/{name}/inbox", inbox)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    loop = asyncio.get_running_loop()
    conn.send("ready")
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            break
        conn.send(dict(counts))
        counts.update(shared=0, personal=0)
    await runner.cleanup()


def _receivers(conn: Connection, ports: list[int]) -> None:
    asyncio.run(_receivers_main(conn, ports))


# ---- the node ------------------------------------------------------------------------------
async def _until_sent(fed: Federation, expected: int, timeout: float) -> float:
    """Seconds until EXPECTED rows more than now are sent (poll every 5 ms)."""
    start = time.perf_counter()
    while True:
        summary = fed.deliveries.summary()
        if summary["sent"] >= expected:
            return time.perf_counter() - start
        if summary["failed"]:
            raise RuntimeError(f"deliveries failed: {fed.deliveries.recent(3, 'failed')}")
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"only {summary} after {timeout} s")
        await asyncio.sleep(0.005)


async def _counted(parent: Connection) -> dict[str, int]:
    parent.send("count")
    got: dict[str, int] = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    return got


async def _salon_round(
    fed: Federation, http: aiohttp.ClientSession, csrf: str, parent: Connection, rep: int
) -> tuple[float, int]:
    """Start a room; seconds until every queued delivery is sent, and POSTs received."""
    base_url = fed.settings.base_url
    before = fed.deliveries.summary()
    t0 = time.perf_counter()
    async with http.post(
        f"{base_url}/api/rooms", json={"title": f"Announced {rep}"}, headers={"X-CSRF-Token": csrf}
    ) as resp:
        assert resp.status == 201, await resp.text()
    queued = fed.deliveries.summary()["pending"] - before["pending"]
    await _until_sent(fed, before["sent"] + queued, timeout=60)
    seconds = time.perf_counter() - t0
    got = await _counted(parent)
    posts = got["shared"] + got["personal"]
    print(
        f"  salon    #{rep + 1}: {queued} deliveries queued, {posts} POSTs received "
        f"({got['shared']} to shared inboxes) in {seconds:.3f} s",
        flush=True,
    )
    return seconds, posts


async def _baseline_round(
    fed: Federation, alice: Any, personal: list[str], parent: Connection, rep: int
) -> tuple[float, int]:
    """The latest room's Create once per follower's personal inbox, until all are sent."""
    row = fed.db.one("SELECT document FROM outbox_activities ORDER BY created_at DESC LIMIT 1")
    assert row is not None
    document = json.loads(row[0])
    document["id"] += "-per-follower"
    already = fed.deliveries.summary()["sent"]
    t0 = time.perf_counter()
    added = fed.publisher.publish(document, alice, personal, public=True)
    await _until_sent(fed, already + added, timeout=170)
    seconds = time.perf_counter() - t0
    got = await _counted(parent)
    posts = got["shared"] + got["personal"]
    print(
        f"  baseline #{rep + 1}: {added} deliveries queued, {posts} POSTs received "
        f"({got['personal']} to personal inboxes) in {seconds:.3f} s",
        flush=True,
    )
    return seconds, posts


async def main(quick: bool) -> dict[str, Any]:
    repeats = 1 if quick else 3
    ports = free_ports(NODES + 1)
    node_port, receiver_ports = ports[0], ports[1:]
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_receivers, args=(child, receiver_ports))
    proc.start()
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="salon-bench-announce-") as tmp:
        settings = dataclasses.replace(
            load_settings(Path(tmp), environ={}),
            port=node_port,
            testnet=True,
            delivery_poll_seconds=0.05,
        )
        app = build_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", node_port).start()
        fed: Federation = app[FEDERATION]
        ctx = fed
        try:
            assert await loop.run_in_executor(None, parent.recv) == "ready"
            http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            async with http.post(
                f"{settings.base_url}/api/auth/signup",
                json={"username": "alice", "password": "password123"},
            ) as resp:
                csrf = (await resp.json())["csrf_token"]
            alice = ctx.users.by_name("alice")
            assert alice is not None

            print(f"announce benchmark ({'quick' if quick else 'full'}), {os.cpu_count()} cores")
            started = time.perf_counter()
            personal: list[str] = []
            now = ctx.clock.now()
            for i in range(FOLLOWERS):
                base = f"http://127.0.0.1:{receiver_ports[i % NODES]}"
                actor = f"{base}/users/f{i}"
                user_id = ctx.actors.upsert_actor(
                    actor_uri=actor,
                    username=f"f{i}",
                    domain=host_of(base),
                    display_name="",
                    bio="",
                    locked=False,
                    inbox=f"{actor}/inbox",
                    shared_inbox=f"{base}/inbox",
                    document={"id": actor, "type": "Person", "inbox": f"{actor}/inbox"},
                    now=now,
                )
                ctx.follows.put(user_id, alice.id, "accepted", now)
                personal.append(f"{actor}/inbox")
            setup = time.perf_counter() - started
            print(f"  setup: {FOLLOWERS} followers on {NODES} nodes stored in {setup:.1f} s")

            salon_runs: list[tuple[float, int]] = []
            base_runs: list[tuple[float, int]] = []
            for rep in range(repeats):
                salon_runs.append(await _salon_round(fed, http, csrf, parent, rep))
                base_runs.append(await _baseline_round(fed, alice, personal, parent, rep))
            seconds, posts = sorted(salon_runs)[len(salon_runs) // 2]
            baseline_seconds, baseline_posts = sorted(base_runs)[len(base_runs) // 2]
            await http.close()
            parent.send("stop")
        finally:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
            await runner.cleanup()
    return {
        "posts": posts,
        "seconds": round(seconds, 3),
        "baseline_posts": baseline_posts,
        "baseline_seconds": round(baseline_seconds, 3),
        "followers": FOLLOWERS,
        "nodes": NODES,
        "repeats": repeats,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one round instead of 3, < 60 s")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(main(args.quick))
    print(json.dumps(result))
