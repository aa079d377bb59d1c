"""Room events in a big room: node CPU and messages per socket, coalesced vs per-event.

A real node (``python -m cli serve`` subprocess). A room with N listeners (WebSocket
clients only, no audio; ``--listeners``, 1 000 by default) in worker processes at a lower
CPU priority, which only count what they receive. While the load runs — people join and
leave (``--joins`` per second, each stays ``--stay`` seconds, then leaves), react
(``--reactions`` per second) and chat (``--chat`` per second) — the bench reads the node
process's own CPU time from /proc (clients never count) and the messages each passive
listener socket received. Reported per mode:

- ``cpu``: node CPU over the window, % of one core;
- ``msgs``: messages per listener socket per second;
- ``dropped``: listener sockets the node closed meanwhile (4008: a client too slow).

The two modes run in the same invocation, one fresh node each: Salon's coalesced updates
(``audience_coalesce_above`` = 50, ``audience_flushes_per_second`` = 4, the defaults) and
the naive per-event broadcast (``SALON_AUDIENCE_COALESCE_ABOVE=0``). Goal: 1 000 listeners,
20 joins/s, 50 reactions/s under 20 % of a core. Reactions and chat need the chat part
(``react`` and ``chat`` client messages); on a node without it the bench says so and runs
joins only. Accounts are written straight into the data directory (set-up, not measured).

    .venv/bin/python bench/events.py --quick    # 300 listeners, 6 s windows
    .venv/bin/python bench/events.py            # 1 000 listeners, 10 s windows

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
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import LineWorker, salon_node  # noqa: E402

from tests.support.crowd import prepare_accounts  # noqa: E402

WORKERS = 2
ACTORS = 60  # listeners of this process that react and chat (not counted as passive)
REACTIONS = ["clap", "laugh", "heart", "plus_one"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process PID (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# ---- listener workers: connect, count, report ------------------------------------------------


class Listener:
    def __init__(self) -> None:
        self.count = 0
        self.closed_by_node: int | None = None

    async def run(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.count += 1
        self.closed_by_node = ws.close_code


async def worker() -> None:
    logging.basicConfig(level=logging.ERROR)
    os.nice(10)  # the load generator yields the CPU to the node it measures
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    listeners: list[Listener] = []
    tasks: list[asyncio.Task[None]] = []
    sockets: list[aiohttp.ClientWebSocketResponse] = []

    def reply(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def connect(http: aiohttp.ClientSession, url: str, room: str, token: str) -> None:
        ws = await http.ws_connect(
            f"{url}/api/rooms/{room}/ws",
            headers={"Authorization": f"Bearer {token}"},
            max_msg_size=0,
        )
        await ws.receive()  # the state
        listener = Listener()
        listeners.append(listener)
        sockets.append(ws)
        tasks.append(asyncio.create_task(listener.run(ws)))

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        while line := await reader.readline():
            cmd = json.loads(line)
            if cmd["op"] == "connect":
                tokens = cmd["tokens"]
                for start in range(0, len(tokens), 50):
                    await asyncio.gather(
                        *(
                            connect(http, cmd["url"], cmd["room"], t)
                            for t in tokens[start : start + 50]
                        )
                    )
                reply({"connected": len(listeners)})
            elif cmd["op"] == "counts":
                reply(
                    {
                        "counts": [li.count for li in listeners],
                        "dropped": sum(1 for li in listeners if li.closed_by_node == 4008),
                        "closed": sum(1 for li in listeners if li.closed_by_node is not None),
                    }
                )
            elif cmd["op"] == "close":
                for ws in sockets:
                    with contextlib.suppress(Exception):
                        await ws.close()
                for task in tasks:
                    task.cancel()
                listeners.clear()
                sockets.clear()
                tasks.clear()
                reply({})
            else:
                break
    reply({})


class Worker(LineWorker):
    call_timeout = 600.0
    name = "a listener worker"


# ---- the load, from this process ---------------------------------------------------------------


class Actor:
    """A listener that reacts and chats (its own socket is drained, not counted)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.errors: list[str] = []
        self.ids = itertools.count(1)
        self.task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.TEXT and '"error"' in msg.data:
                data = json.loads(msg.data)
                if data.get("type") == "error":
                    self.errors.append(str(data.get("error")))

    async def send(self, **message: Any) -> None:
        await self.ws.send_json({**message, "id": next(self.ids)})


async def open_socket(
    http: aiohttp.ClientSession, url: str, room: str, token: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(
        f"{url}/api/rooms/{room}/ws", headers={"Authorization": f"Bearer {token}"}, max_msg_size=0
    )
    await ws.receive()  # the state
    return ws


async def chat_supported(actor: Actor) -> bool:
    """Does the node take ``react``? (an error naming the message type means no)."""
    before = len(actor.errors)
    await actor.send(type="react", reaction="clap")
    await asyncio.sleep(1.0)
    return not any("unknown message type" in e for e in actor.errors[before:])


async def churn(
    http: aiohttp.ClientSession, url: str, room: str, token: str, stay: float, joins: list[int]
) -> None:
    """One person joins (opens the room socket), stays, and leaves."""
    try:
        ws = await open_socket(http, url, room, token)
    except (aiohttp.ClientError, TimeoutError):
        return
    joins[0] += 1
    drain = asyncio.create_task(_drain(ws))
    await asyncio.sleep(stay)
    with contextlib.suppress(Exception):
        await ws.send_json({"type": "command", "id": 1, "action": "leave"})
        await asyncio.wait_for(drain, 10)
    drain.cancel()
    await ws.close()


async def _drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


async def paced(rate: float, seconds: float, act: Any) -> int:
    """Call ACT() RATE times a second for SECONDS (evenly paced); how many times it ran."""
    if rate <= 0:
        return 0
    start = time.monotonic()
    done = 0
    while True:
        due = start + done / rate
        if due >= start + seconds:
            return done
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        act()
        done += 1


async def run_mode(args: argparse.Namespace, mode: str, tmp: Path) -> dict[str, Any]:
    n = args.listeners
    churners = max(1, int(args.joins * (args.stay + 2)))
    names = ["host"] + [f"l{i}" for i in range(n)] + [f"c{i}" for i in range(churners)]
    data = tmp / mode
    tokens = prepare_accounts(data, names)
    env = {"SALON_ROOM_EMPTY_GRACE_SECONDS": "600", "SALON_ROOMS_PER_USER": "10"}
    if mode == "naive":
        env["SALON_AUDIENCE_COALESCE_ABOVE"] = "0"
    elif args.flushes:
        env["SALON_AUDIENCE_FLUSHES_PER_SECOND"] = str(args.flushes)
    actors_n = min(ACTORS, n // 4)
    profile = Path(args.profile + f".{mode}") if args.profile else None
    passive = [tokens[f"l{i}"] for i in range(actors_n, n)]
    pids: list[int] = []
    workers = [await Worker.start(__file__) for _ in range(WORKERS)]
    try:
        async with (
            salon_node(data, env=env, pids=pids, profile=profile) as url,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
        ):
            headers = {"Authorization": f"Bearer {tokens['host']}"}
            async with http.post(url + "/api/rooms", json={"title": "Big"}, headers=headers) as r:
                room = (await r.json())["id"]
            host = await open_socket(http, url, room, tokens["host"])
            host_drain = asyncio.create_task(_drain(host))
            set_up = time.monotonic()
            share = [passive[i::WORKERS] for i in range(WORKERS)]
            await asyncio.gather(
                *(
                    w.call(op="connect", url=url, room=room, tokens=s)
                    for w, s in zip(workers, share, strict=True)
                )
            )
            actors = [
                Actor(await open_socket(http, url, room, tokens[f"l{i}"])) for i in range(actors_n)
            ]
            print(f"[{mode}] {n} listeners in the room after {time.monotonic() - set_up:.0f} s")
            with_chat = bool(actors) and await chat_supported(actors[0])
            if not with_chat:
                print(f"[{mode}] this node has no chat/react yet: joins and leaves only")
            await asyncio.sleep(2.0)  # the set-up's last messages drain

            joins = [0]
            pending: set[asyncio.Task[None]] = set()
            pool = itertools.cycle([tokens[f"c{i}"] for i in range(churners)])

            def join() -> None:
                task = asyncio.create_task(churn(http, url, room, next(pool), args.stay, joins))
                pending.add(task)
                task.add_done_callback(pending.discard)

            def react() -> None:
                actor = random.choice(actors)
                task = asyncio.create_task(
                    actor.send(type="react", reaction=random.choice(REACTIONS))
                )
                pending.add(task)
                task.add_done_callback(pending.discard)

            said = itertools.count()

            def chat() -> None:
                actor = random.choice(actors)
                task = asyncio.create_task(actor.send(type="chat", text=f"message {next(said)}"))
                pending.add(task)
                task.add_done_callback(pending.discard)

            # warm up: the churn reaches its steady state (people in, people leaving)
            load = [asyncio.create_task(paced(args.joins, args.stay + 1 + args.seconds, join))]
            if with_chat:
                load.append(
                    asyncio.create_task(paced(args.reactions, args.stay + 1 + args.seconds, react))
                )
                load.append(
                    asyncio.create_task(paced(args.chat, args.stay + 1 + args.seconds, chat))
                )
            await asyncio.sleep(args.stay + 1)
            before = await asyncio.gather(*(w.call(op="counts") for w in workers))
            cpu0, t0 = cpu_seconds(pids[0]), time.monotonic()
            await asyncio.sleep(args.seconds)
            cpu1, t1 = cpu_seconds(pids[0]), time.monotonic()
            after = await asyncio.gather(*(w.call(op="counts") for w in workers))
            await asyncio.gather(*load)
            await asyncio.gather(*pending, return_exceptions=True)
            counts0 = [c for b in before for c in b["counts"]]
            counts1 = [c for a in after for c in a["counts"]]
            window = t1 - t0
            per_socket = (sum(counts1) - sum(counts0)) / max(1, len(counts1)) / window
            rate_limited = sum(1 for a in actors for e in a.errors if "slow down" in e)
            result = {
                "cpu": round(100 * (cpu1 - cpu0) / window, 1),
                "msgs": round(per_socket, 2),
                "dropped": sum(a["dropped"] for a in after),
                "closed": sum(a["closed"] for a in after),
                "joins": joins[0],
                "chat": with_chat,
                "rate_limited": rate_limited,
            }
            print(
                f"[{mode}] node CPU {result['cpu']} % of a core, {result['msgs']} messages per "
                f"socket per second, {result['dropped']} sockets dropped as too slow"
            )
            for w in workers:
                await w.call(op="close")
            for actor in actors:
                await actor.ws.close()
                actor.task.cancel()
            host_drain.cancel()
            await host.close()
            return result
    finally:
        for w in workers:
            await w.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="salon-events-"))
    try:
        if args.only:
            result = await run_mode(args, args.only, tmp)
            return {f"events_{args.only}_{k}": v for k, v in result.items()}
        ours = await run_mode(args, "coalesced", tmp)
        naive = await run_mode(args, "naive", tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cpu_ratio = naive["cpu"] / ours["cpu"] if ours["cpu"] else float("inf")
    msg_ratio = naive["msgs"] / ours["msgs"] if ours["msgs"] else float("inf")
    print(
        f"{args.listeners} listeners, {args.joins} joins/s, "
        + (f"{args.reactions} reactions/s, {args.chat} chat/s: " if ours["chat"] else "no chat: ")
        + f"node CPU {ours['cpu']} % (per-event broadcast {naive['cpu']} %, ×{cpu_ratio:.1f}); "
        f"messages per socket per second {ours['msgs']} (per-event {naive['msgs']}, "
        f"×{msg_ratio:.1f}); goal < 20 % of a core"
    )
    return {
        "listeners": args.listeners,
        "joins_per_s": args.joins,
        "reactions_per_s": args.reactions if ours["chat"] else 0,
        "chat_per_s": args.chat if ours["chat"] else 0,
        "events_cpu_percent": ours["cpu"],
        "events_naive_cpu_percent": naive["cpu"],
        "events_cpu_ratio": round(cpu_ratio, 2),
        "events_msgs_per_socket_s": ours["msgs"],
        "events_naive_msgs_per_socket_s": naive["msgs"],
        "events_msgs_ratio": round(msg_ratio, 2),
        "events_dropped_sockets": ours["dropped"],
        "events_naive_dropped_sockets": naive["dropped"],
        "chat_supported": ours["chat"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="300 listeners, 6 s windows")
    parser.add_argument("--listeners", type=int, default=None, help="room size (default 1000)")
    parser.add_argument("--joins", type=float, default=20.0, help="joins per second")
    parser.add_argument("--stay", type=float, default=2.0, help="seconds a joiner stays")
    parser.add_argument("--reactions", type=float, default=50.0, help="reactions per second")
    parser.add_argument("--chat", type=float, default=2.0, help="chat messages per second")
    parser.add_argument("--seconds", type=float, default=None, help="measured window")
    parser.add_argument("--flushes", type=float, default=0.0, help="audience flushes/s")
    parser.add_argument("--profile", default="", help="write the node's cProfile to PATH.MODE")
    parser.add_argument("--only", choices=["coalesced", "naive"], help="run one mode only")
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(worker())
        return
    if args.listeners is None:
        args.listeners = 300 if args.quick else 1000
    if args.seconds is None:
        args.seconds = 6.0 if args.quick else 10.0
    started = time.monotonic()
    result = asyncio.run(run(args))
    print(f"total {time.monotonic() - started:.0f}s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
