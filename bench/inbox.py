"""Inbox benchmark: signed inbox POSTs verified and stored per core-second of node CPU.

A real node (``cli.app.build_app``, the production composition root) runs in this process
on 127.0.0.1; a load process serves the remote actors' documents (a few fake actors on a
local aiohttp server), pre-signs every activity (draft-cavage ``rsa-sha256``, as Mastodon
signs) before the clock starts, then POSTs them to the shared inbox over keep-alive
connections. Node CPU is this process's CPU time (``time.process_time``, all threads)
between the first POST and the last answer, so the load generator's own work is not
counted. Warm-up (not timed): each actor follows alice (the node fetches and caches its
document and answers ``Accept``), alice follows each actor back (stored through the
store), and every announcement queue drains.

Timed mix of distinct activities: 40 % ``Create{Event}`` of a new live room, 40 %
``Update{Event}`` of such a room, 20 % ``Follow`` of the locked user lola (stored as a
pending follow, no delivery). Every one is verified, replay-recorded and stored; the run
checks the node's tables afterwards.

Baseline, same run, a fresh node: the same pipeline with no actor cache
(``actor_cache_seconds = 0``), i.e. a signed GET of the actor document for every POST,
what a verifier without a key cache does.

    .venv/bin/python bench/inbox.py --quick    # < 60 s
    .venv/bin/python bench/inbox.py            # < 3 min on 2 cores

The last line is one JSON object: verified_per_core_second, baseline (plus details).
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
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli.app import build_app
from federation import keys
from federation.activities import Actor, ActorPublicKey
from federation.service import FEDERATION, Federation
from federation.signatures import HttpRequest, sign_cavage
from node.settings import load_settings

AS2 = "application/activity+json"
ACTORS = 4
CONCURRENCY = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the load process: remote actors + pre-signed POSTs ----------------------------------
def _activities(base: str, node: str, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    for i in range(n):
        actor = f"{base}/users/a{i % ACTORS}"
        kind = ("Create", "Update", "Create", "Update", "Follow")[i % 5]
        if kind == "Follow":
            out.append(
                {
                    "@context": "https://www.w3.org/ns/activitystreams",
                    "id": f"{base}/activities/follow-{i}",
                    "type": "Follow",
                    "actor": actor,
                    "object": f"{node}/users/lola",
                }
            )
            continue
        room = f"{base}/rooms/r{i - (i % 5 == 1 or i % 5 == 3)}"
        stamp = now.replace(microsecond=(i * 7) % 1_000_000).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(
            {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": f"{base}/activities/{kind.lower()}-{i}",
                "type": kind,
                "actor": actor,
                "to": ["https://www.w3.org/ns/activitystreams#Public"],
                "object": {
                    "id": room,
                    "type": "Event",
                    "name": f"Room {i}",
                    "attributedTo": actor,
                    "url": room,
                    "startTime": stamp,
                    "updated": stamp,
                    "status": "live",
                    "joinMode": "open",
                    "speakers": [actor],
                    "listenerCount": i % 50,
                },
            }
        )
    return out


def _sign_all(
    actor_keys: list[keys.ActorKeys], base: str, inbox: str, docs: list[dict[str, Any]]
) -> list[tuple[bytes, dict[str, str]]]:
    signed = []
    now = datetime.now(UTC)
    for doc in docs:
        body = json.dumps(doc).encode("utf-8")
        index = int(doc["actor"].rsplit("a", 1)[1])
        request = HttpRequest("POST", inbox, {"Content-Type": AS2}, body)
        headers = {"Content-Type": AS2}
        headers.update(
            sign_cavage(
                request,
                key_id=keys.rsa_key_id(f"{base}/users/a{index}"),
                private_key=actor_keys[index].rsa_private_key,
                now=now,
            )
        )
        signed.append((body, headers))
    return signed


async def _load_main(conn: Connection, node_url: str) -> None:
    actor_keys = [keys.ActorKeys.generate() for _ in range(ACTORS)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    fetches = 0

    async def actor(request: web.Request) -> web.Response:
        nonlocal fetches
        fetches += 1
        index = int(request.match_info["name"][1:])
        actor_id = f"{base}/users/a{index}"
        doc = Actor(
            id=actor_id,
            inbox=f"{actor_id}/inbox",
            shared_inbox=f"{base}/inbox",
            preferred_username=f"a{index}",
            public_keys=(
                ActorPublicKey(
                    keys.rsa_key_id(actor_id), actor_id, actor_keys[index].rsa_public_pem
                ),
            ),
        ).serialize()
        return web.json_response(doc, content_type=AS2)

    async def inbox(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202)

    app = web.Application()
    app.router.add_get("/users/{name}", actor)
    app.router.add_post("/inbox", inbox)
    app.router.add_post("/users/{name}/inbox", inbox)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    loop = asyncio.get_running_loop()
    conn.send(("base", base))
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def send(items: list[tuple[bytes, dict[str, str]]]) -> dict[int, int]:
            statuses: dict[int, int] = {}
            queue = list(reversed(items))

            async def worker() -> None:
                while queue:
                    body, headers = queue.pop()
                    async with http.post(f"{node_url}/inbox", data=body, headers=headers) as r:
                        await r.read()
                        statuses[r.status] = statuses.get(r.status, 0) + 1

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            return statuses

        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command[0] == "stop":
                break
            if command[0] == "warmup":
                follows = [
                    {
                        "@context": "https://www.w3.org/ns/activitystreams",
                        "id": f"{base}/activities/warm-{i}-{command[1]}",
                        "type": "Follow",
                        "actor": f"{base}/users/a{i}",
                        "object": f"{node_url}/users/alice",
                    }
                    for i in range(ACTORS)
                ]
                signed = _sign_all(actor_keys, base, f"{node_url}/inbox", follows)
                conn.send(("warm", await send(signed), fetches))
            elif command[0] == "prepare":
                docs = _activities(base, node_url, command[1])
                # distinct ids per phase
                for doc in docs:
                    doc["id"] += f"-{command[2]}"
                signed = _sign_all(actor_keys, base, f"{node_url}/inbox", docs)
                conn.send(("prepared", len(signed)))
                await loop.run_in_executor(None, conn.recv)  # "go"
                before = fetches
                started = time.perf_counter()
                statuses = await send(signed)
                conn.send(("done", statuses, time.perf_counter() - started, fetches - before))
    await runner.cleanup()


def _load_process(conn: Connection, node_url: str) -> None:
    asyncio.run(_load_main(conn, node_url))


# ---- the node under test (this process) ----------------------------------------------------
@dataclasses.dataclass
class Phase:
    label: str
    activities: int
    statuses: dict[int, int]
    wall_seconds: float
    cpu_seconds: float
    actor_fetches: int
    stored_rooms: int
    seen: int

    @property
    def per_core_second(self) -> float:
        return self.statuses.get(202, 0) / self.cpu_seconds if self.cpu_seconds else 0.0


async def _call(http: aiohttp.ClientSession, method: str, url: str, body: Any) -> Any:
    async with http.request(method, url, json=body) as resp:
        data = await resp.json(content_type=None)
        assert resp.status in (200, 201), (resp.status, data)
        return data


async def run_phase(label: str, n: int, cache_seconds: float, tmp: Path) -> Phase:
    port = free_port()
    settings = dataclasses.replace(
        load_settings(tmp / label, environ={}),
        port=port,
        testnet=True,
        delivery_poll_seconds=0.05,
        actor_cache_seconds=cache_seconds,
    )
    app = build_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    node_url = settings.base_url
    fed: Federation = app[FEDERATION]
    ctx = fed
    loop = asyncio.get_running_loop()
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_load_process, args=(child, node_url))
    proc.start()
    try:
        for name, locked in (("alice", False), ("lola", True)):
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                data = await _call(
                    http,
                    "POST",
                    f"{node_url}/api/auth/signup",
                    {"username": name, "password": "password123"},
                )
                if locked:
                    async with http.patch(
                        f"{node_url}/api/me",
                        json={"locked": True},
                        headers={"X-CSRF-Token": data["csrf_token"]},
                    ) as resp:
                        assert resp.status == 200, await resp.text()
        _, base = await loop.run_in_executor(None, parent.recv)
        parent.send(("warmup", 0))
        _, warm, _ = await loop.run_in_executor(None, parent.recv)
        assert warm == {202: ACTORS}, warm
        alice = ctx.users.by_name("alice")
        assert alice is not None
        for i in range(ACTORS):
            row = ctx.actors.actor_by_uri(f"{base}/users/a{i}")
            assert row is not None
            ctx.follows.put(alice.id, row.user_id, "accepted", ctx.clock.now())
        while ctx.deliveries.summary()["pending"]:
            await asyncio.sleep(0.05)
        parent.send(("prepare", n, label))
        await loop.run_in_executor(None, parent.recv)
        seen_before = ctx.seen.seen_count()
        cpu0 = time.process_time()
        parent.send(("go",))
        _, statuses, wall, fetches = await loop.run_in_executor(None, parent.recv)
        cpu = time.process_time() - cpu0
        phase = Phase(
            label,
            n,
            statuses,
            wall,
            cpu,
            fetches,
            ctx.count("remote_rooms"),
            ctx.seen.seen_count() - seen_before,
        )
        parent.send(("stop",))
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
        await runner.cleanup()
    assert phase.statuses == {202: n}, phase.statuses
    assert phase.seen == n, (phase.seen, n)
    return phase


def report(phase: Phase) -> None:
    print(
        f"  {phase.label:<9} {phase.activities:>6} POSTs  202: {phase.statuses.get(202, 0):>6}"
        f"  wall {phase.wall_seconds:6.2f} s  node CPU {phase.cpu_seconds:6.2f} s"
        f"  -> {phase.per_core_second:8.1f} verified/core-s"
        f"  (actor fetches {phase.actor_fetches}, rooms stored {phase.stored_rooms})",
        flush=True,
    )


async def main(quick: bool) -> dict[str, Any]:
    n, n_base = (3000, 400) if quick else (12000, 1500)
    with tempfile.TemporaryDirectory(prefix="salon-bench-inbox-") as tmp:
        print(f"inbox benchmark ({'quick' if quick else 'full'}), {os.cpu_count()} cores")
        salon = await run_phase("salon", n, 86400.0, Path(tmp))
        report(salon)
        naive = await run_phase("no-cache", n_base, 0.0, Path(tmp))
        report(naive)
    return {
        "verified_per_core_second": round(salon.per_core_second, 1),
        "baseline": round(naive.per_core_second, 1),
        "ratio": round(salon.per_core_second / naive.per_core_second, 2),
        "activities": n,
        "baseline_activities": n_base,
        "wall_per_second": round(n / salon.wall_seconds, 1),
        "baseline_kind": "same node, no actor cache (signed GET of the actor per POST)",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smaller run, < 60 s")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(main(args.quick))
    print(json.dumps(result))
