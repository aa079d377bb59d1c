"""Join storm: do listeners already in a room keep hearing steadily while hundreds join?

A real node (``python -m cli serve`` subprocess, loopback ICE). A host bot speaks a tone
in a room; 10 listeners (the "ears", in this process) are in it and stamp the arrival of
every RTP packet at aiortc's raw receive hook. Then N listeners join at the same instant
(two worker processes at a lower CPU priority, every join concurrent: WebSocket, offer,
ICE, DTLS). Reported per
storm:

- ``gap_ms``: the longest gap between two packets at any of the 10 ears from the storm's
  start until every joiner heard audio (+0.5 s); 20 ms is a perfect stream;
- ``all_heard_ms``: from the storm's start until the last joiner's first RTP packet;
- the node's own tick counters afterwards (``GET /api/admin/status``: late ticks, worst
  lateness).

Each storm size runs twice in the same run: with the node's tick on its own thread
(``SALON_MEDIA_TICK=thread``, the default) and on the event loop as before
(``SALON_MEDIA_TICK=loop``, the baseline). Accounts are written straight into the data
directory before the node starts (cheap password hashes, bearer sessions): set-up, not
measured.

Catch-up after an outage (``--outage`` part, in-process nodes with real signed HTTP):
node A queues deliveries to B while B is stopped (host backoff grows); B comes back and
sends A one signed request; reported: seconds from that request until A delivered B's
whole queue (``catch_up_s``, goal ≤ 5 s), against the time the old behaviour would wait
(the rest of B's backoff: ``backoff_wait_s``).

    .venv/bin/python bench/storm.py --quick     # 200 joins only, ≈ 2 min
    .venv/bin/python bench/storm.py             # 200 and 400 joins, ≈ 5 min

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RtpPacket

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import LineWorker, salon_node  # noqa: E402
from latency import LOOPBACK, RATE, RoomClient  # noqa: E402

from media.client import BotPeer, LoopTrack  # noqa: E402
from tests.support.crowd import prepare_accounts  # noqa: E402

EARS = 10
JOINED_BEFORE: set[str] = set()  # joiners' tokens already used (in an earlier storm)
WORKERS = 2


# ---- accounts, written before the node starts ---------------------------------------------


def node_env(tick: str) -> dict[str, str]:
    """The node's settings for a storm: the given tick scheduling, rooms kept while empty."""
    return {"SALON_MEDIA_TICK": tick, "SALON_ROOM_EMPTY_GRACE_SECONDS": "600"}


# ---- listeners ------------------------------------------------------------------------------


class StampingPeer(BotPeer):
    """Receive-only bot client that stamps packets at aiortc's raw hook (no decoding).

    A joiner (``stamp_all`` False) stops decrypting once it has its first packet: the
    joiners share two cores with the node here, where real clients would be elsewhere, and
    decrypting 50 packets a second each would take the node's CPU (aiortc then drops
    SRTP without looking at it: ``RTCDtlsTransport._rx_srtp`` None).
    """

    def __init__(self, *args: Any, stamp_all: bool = False, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.first_packet: float | None = None
        self.arrivals: list[float] | None = [] if stamp_all else None

    def _count_packets(self, transceiver: RTCRtpTransceiver) -> None:
        receiver = transceiver.receiver

        async def stamp(packet: RtpPacket, arrival_time_ms: int) -> None:
            now = time.monotonic()
            if self.first_packet is None:
                self.first_packet = now
                if self.arrivals is None:
                    receiver.transport._rx_srtp = None
            if self.arrivals is not None:
                self.arrivals.append(now)
            self.packets_received += 1

        receiver._handle_rtp_packet = stamp  # type: ignore[method-assign]

    def _on_track(self, track: MediaStreamTrack) -> None:
        return  # nothing decodes: the raw hook is the measurement


async def join(
    http: aiohttp.ClientSession, url: str, room_id: str, token: str, stamp_all: bool = False
) -> RoomClient:
    client = RoomClient(http, url, {"Authorization": f"Bearer {token}"})
    peer = StampingPeer(
        client.send_signal, ice_addresses=LOOPBACK, speak=False, stamp_all=stamp_all
    )
    await client.join(room_id, peer)
    return client


async def close_all(clients: list[RoomClient]) -> None:
    async def one(client: RoomClient) -> None:
        if client.ws is not None and not client.ws.closed:
            with contextlib.suppress(ConnectionError):
                await client.ws.send_json({"type": "command", "id": 1, "action": "leave"})
        await client.close()

    await asyncio.gather(*(one(c) for c in clients), return_exceptions=True)


# ---- the worker processes: the joiners -----------------------------------------------------


async def worker() -> None:
    logging.basicConfig(level=logging.ERROR)
    os.nice(10)  # the load generator yields the CPU to the node it measures
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    clients: list[RoomClient] = []

    def reply(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        while line := await reader.readline():
            cmd = json.loads(line)
            if cmd["op"] == "storm":
                joined = await asyncio.gather(
                    *(join(http, cmd["url"], cmd["room"], t) for t in cmd["tokens"]),
                    return_exceptions=True,
                )
                errors = [repr(r) for r in joined if isinstance(r, BaseException)]
                clients = [c for c in joined if isinstance(c, RoomClient)]
                peers = [c.peer for c in clients if isinstance(c.peer, StampingPeer)]
                deadline = time.monotonic() + cmd["wait"]
                while time.monotonic() < deadline and any(p.first_packet is None for p in peers):
                    await asyncio.sleep(0.02)
                firsts = {
                    token: (c.peer.first_packet if isinstance(c.peer, StampingPeer) else None)
                    for token, c in zip(cmd["tokens"], joined, strict=True)
                    if isinstance(c, RoomClient)
                }
                states: dict[str, int] = {}
                for client in clients:
                    peer = client.peer
                    if isinstance(peer, StampingPeer) and peer.first_packet is None:
                        closed = client.ws.close_code if client.ws is not None else None
                        state = f"{peer.pc.connectionState}/{peer.pc.signalingState}"
                        state += f"/answers {peer.answers}/ws closed {closed}"
                        states[state] = states.get(state, 0) + 1
                reply({"first": firsts, "errors": errors, "unheard_states": states})
            elif cmd["op"] == "close":
                await close_all(clients)
                clients = []
                reply({})
            else:
                break
    reply({})


class Worker(LineWorker):
    call_timeout = 120.0
    name = "a joiner worker"


# ---- one storm ------------------------------------------------------------------------------


def longest_gap(arrivals: list[float], since: float, until: float) -> float:
    times = [t for t in arrivals if since <= t <= until]
    if len(times) < 2:
        return float("inf")
    return max(b - a for a, b in itertools.pairwise(times))


async def status(http: aiohttp.ClientSession, url: str, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(url + "/api/admin/status", headers=headers) as response:
        if response.status != 200:
            return {}
        return dict(await response.json())


async def storm(
    http: aiohttp.ClientSession,
    url: str,
    room_id: str,
    ears: list[RoomClient],
    workers: list[Worker],
    tokens: list[str],
) -> dict[str, Any]:
    share = [tokens[i :: len(workers)] for i in range(len(workers))]
    t0 = time.monotonic()
    answers = await asyncio.gather(
        *(
            w.call(op="storm", url=url, room=room_id, tokens=part, wait=60)
            for w, part in zip(workers, share, strict=True)
        )
    )
    errors = [e for a in answers for e in a["errors"]]
    by_token = {t: f for a in answers for t, f in a["first"].items()}
    heard = [f for f in by_token.values() if f is not None]
    unheard_states: dict[str, int] = {}
    for answer in answers:
        for state, n in answer["unheard_states"].items():
            unheard_states[state] = unheard_states.get(state, 0) + n
    rejoined = [t for t in tokens if t in JOINED_BEFORE]
    JOINED_BEFORE.update(tokens)
    until = (max(heard) if heard else time.monotonic()) + 0.5
    gaps = []
    for ear in ears:
        assert isinstance(ear.peer, StampingPeer) and ear.peer.arrivals is not None
        gaps.append(longest_gap(ear.peer.arrivals, t0, until))
    await asyncio.gather(*(w.call(op="close") for w in workers))
    return {
        "joins": len(tokens),
        "gap_ms": round(max(gaps) * 1000, 1),
        "gaps_ms": sorted(round(g * 1000) for g in gaps),
        "all_heard_ms": round((max(heard) - t0) * 1000) if len(heard) == len(tokens) else None,
        "heard": len(heard),
        "errors": len(errors),
        "rejoined": len(rejoined),
        "rejoined_unheard": sum(1 for t in rejoined if by_token.get(t) is None),
        "unheard_states": unheard_states,
        "first_error": errors[0] if errors else None,
    }


async def storms_on_node(
    data: Path, tick: str, sizes: list[int], tokens: dict[str, str], profile: Path | None
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    joiners = [tokens[n] for n in tokens if n.startswith("j")]
    JOINED_BEFORE.clear()
    async with salon_node(data, node_env(tick), profile) as url, aiohttp.ClientSession() as http:
        host = RoomClient(http, url, {"Authorization": f"Bearer {tokens['host']}"})
        ears: list[RoomClient] = []
        workers = await asyncio.gather(*(Worker.start(__file__) for _ in range(WORKERS)))
        try:
            room_id = await host.open_room(f"storm {tick}")
            speaker = BotPeer(host.send_signal, ice_addresses=LOOPBACK, speak=True)
            t = np.arange(RATE) / RATE
            speaker._pcm = (np.sin(2 * np.pi * 440 * t) * 0.3 * 32767).astype(np.int16)
            speaker._track = LoopTrack(speaker._pcm)
            await host.join(room_id, speaker)
            await speaker.wait_connected(15)
            for i in range(EARS):
                ears.append(await join(http, url, room_id, tokens[f"ear{i}"], stamp_all=True))
            for ear in ears:
                assert ear.peer is not None
                await ear.peer.wait_connected(15)
            await asyncio.sleep(2.0)
            for size in sizes:
                before = await status(http, url, tokens["host"])
                result = await storm(http, url, room_id, ears, workers, joiners[:size])
                after = await status(http, url, tokens["host"])
                result["tick"] = tick
                result["load_avg"] = round(os.getloadavg()[0], 1)
                result["late_ticks"] = _media(after, "late_ticks") - _media(before, "late_ticks")
                result["max_lateness_ms"] = _media(after, "max_lateness_ms")
                result["max_tick_ms"] = _media(after, "max_tick_ms")
                print(json.dumps(result), flush=True)
                results.append(result)
                await asyncio.sleep(3.0)  # the leavers' seats and connections close
        finally:
            await close_all(ears)
            await host.close()
            await asyncio.gather(*(w.stop() for w in workers))
    return results


def _media(status: dict[str, Any], key: str) -> float:
    value = status.get("media", {}).get(key, 0)
    return float(value) if isinstance(value, int | float) else 0.0


async def run_storms(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [200] if args.quick else [200, 400]
    if args.joins:
        sizes = [args.joins]
    if args.sizes:
        sizes = args.sizes
    names = ["host"] + [f"ear{i}" for i in range(EARS)] + [f"j{i}" for i in range(max(sizes))]
    out: dict[str, Any] = {"load_avg_start": round(os.getloadavg()[0], 1)}
    with tempfile.TemporaryDirectory(prefix="salon-storm-") as tmp:
        seed = Path(tmp) / "seed"
        tokens = prepare_accounts(seed, names, first_is_admin=True)
        for tick in args.ticks:
            data = Path(tmp) / tick
            shutil.copytree(seed, data)
            profile = Path(args.profile) / f"node-{tick}.prof" if args.profile else None
            for result in await storms_on_node(data, tick, sizes, tokens, profile):
                key = f"{tick}_{result['joins']}"
                out[f"gap_ms_{key}"] = result["gap_ms"]
                out[f"all_heard_ms_{key}"] = result["all_heard_ms"]
                out[f"late_ticks_{key}"] = result["late_ticks"]
                out[f"errors_{key}"] = result["errors"]
    out["load_avg_end"] = round(os.getloadavg()[0], 1)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="200 joins only")
    parser.add_argument("--joins", type=int, default=0, help="one storm of this size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[], help="storms in a row")
    parser.add_argument("--ticks", nargs="+", default=["loop", "thread"])
    parser.add_argument("--profile", default="", help="directory for the node's cProfile")
    parser.add_argument("--no-outage", action="store_true", help="skip the catch-up part")
    parser.add_argument("--outage", type=float, default=0.0, help="seconds the peer is down")
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(worker())
        return
    started = time.monotonic()
    result = asyncio.run(run_storms(args))
    if not args.no_outage:
        from outage import run_outage

        outage = args.outage or (35.0 if args.quick else 45.0)
        result.update(asyncio.run(run_outage(outage)))
    print(f"total {time.monotonic() - started:.0f}s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
