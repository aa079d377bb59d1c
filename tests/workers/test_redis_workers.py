"""Workers through Redis (issue 15): a redis-server started here, a node with `--redis`
and three `salon media-worker` processes. Speakers are on the mixer worker, listeners over
all three, and a listener on another worker raised to speaker is heard by everyone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.network import eventually
from tests.support.nodes import NodeFactory
from tests.support.workers import (
    SECRET,
    Redis,
    assert_everyone_heard,
    redis_workers,
    spread_room,
    start_worker,
    workers_ready,
)


@pytest.mark.timeout(180)
async def test_three_redis_workers_carry_one_room(
    node_factory: NodeFactory, tmp_path: Path, redis_server: Redis
) -> None:
    node = await node_factory(
        ice_addresses=("127.0.0.1",), redis_url=redis_server.url, worker_secret=SECRET
    )
    with redis_workers(node, redis_server, 3):
        workers = await workers_ready(node, 3)
        listeners = ("bob", "carol", "dave", "frank")
        room = await spread_room(node, tmp_path, listeners)
        assert set(room.where.values()) == set(workers), "sessions on all three workers"
        assert_everyone_heard(room, listeners)


@pytest.mark.timeout(60)
async def test_concurrent_sends_reach_the_worker_in_sequence_order(
    redis_server: Redis,
) -> None:
    """Many commands sent at once (a crowd joining) all reach the worker: each is sealed
    and added to its stream under one lock, so no later sequence number overtakes an
    earlier one on another pooled connection and gets it refused as a replay (seen in CI:
    a crowd's listener never placed). Without the lock this fails: with 60 sends some are
    refused as replays, with 300 the concurrent XADDs also run out of connections. The
    same holds for a worker's events to the node."""
    from media.worker.protocol import Command, Event
    from media.worker.redis_bus import RedisHub, RedisLink

    node_url = "http://127.0.0.1:1"
    hub = RedisHub(redis_server.url, node_url, SECRET.encode())
    link = RedisLink(redis_server.url, node_url, SECRET.encode(), "w1")
    events: list[Event] = []
    await link.connect()
    await hub.start(lambda sender, event: events.append(event), lambda worker: None)
    try:
        count = 300
        await asyncio.sleep(0.2)  # the hub's XREAD is waiting
        commands = [Command("open_mixer", n, {"room": f"r{n}"}) for n in range(count)]
        await asyncio.gather(*(hub.send("w1", c) for c in commands))
        got: list[int] = []

        async def read() -> None:
            async for command in link.commands():
                got.append(command.id)
                if len(got) == count:
                    return

        await asyncio.wait_for(read(), 20)
        assert got == list(range(count)) and link.refused == 0
        results = [Event("result", {"command": n, "error": ""}) for n in range(count)]
        await asyncio.gather(*(link.write(e) for e in results))
        await _until(lambda: len(events) >= count, 10)
        assert len(events) == count and hub.refused == 0
    finally:
        await hub.close()
        await link.close()


async def _until(condition: Callable[[], bool], timeout: float) -> None:
    async def check() -> bool:
        return condition()

    await eventually(check, timeout)


def _after(depth: int, call: Callable[[], object]) -> None:
    """Run CALL DEPTH turns of the event loop from now (each a fresh ``call_soon``)."""
    loop = asyncio.get_running_loop()

    def step(n: int) -> None:
        if n == 0:
            call()
        else:
            loop.call_soon(step, n - 1)

    step(depth)


@pytest.mark.timeout(90)
async def test_the_bus_closes_when_a_cancellation_is_lost_inside_redis_py(
    redis_server: Redis,
) -> None:
    """Closing the hub or a worker's outbox while a loop is inside a redis-py command ends
    that loop. Under Python 3.11, ``asyncio.wait_for`` (which redis-py wraps every send in,
    with its default 5 s socket timeout) drops a cancellation arriving just as the send
    finishes, and the loop read on forever: seen in CI, a test hung in ``hub.close()``.
    Here the close lands at each of the first few loop turns after an event is delivered
    (the hub) or queued (the outbox), which covers that window; each close must return."""
    for depth in range(6):
        await _close_at(redis_server, depth)


async def _close_at(redis_server: Redis, depth: int) -> None:
    from media.worker.protocol import Event
    from media.worker.redis_bus import RedisHub, RedisLink

    node_url = "http://127.0.0.1:1"
    hub = RedisHub(redis_server.url, node_url, SECRET.encode())
    link = RedisLink(redis_server.url, node_url, SECRET.encode(), "w1")
    await link.connect()
    closed: list[asyncio.Future[None]] = []

    def close_hub() -> None:
        closed.append(asyncio.ensure_future(hub.close()))

    def on_event(sender: str, event: Event) -> None:
        if not closed:  # inside the hub's reading loop, just before its next XREAD
            _after(depth, close_hub)

    await hub.start(on_event, lambda worker: None)
    await asyncio.sleep(0.2)  # the hub's XREAD is waiting
    await link.write(Event("result", {"command": 1, "error": ""}))
    await _until(lambda: bool(closed), 2)  # the hub delivered the event
    await asyncio.wait_for(closed[0], 10)  # the hub closed: its loops ended

    def close_link() -> None:
        closed.append(asyncio.ensure_future(link.close()))

    link.send_nowait(Event("result", {"command": 2, "error": ""}))  # the writer's XADD
    _after(depth, close_link)
    await _until(lambda: len(closed) == 2, 2)
    await asyncio.wait_for(closed[1], 10)  # the outbox closed: its writer ended


@pytest.mark.timeout(90)
async def test_a_redis_worker_stops_cleanly_on_sigterm(redis_server: Redis) -> None:
    """`salon media-worker --redis` answers SIGTERM by leaving: it ends its command stream
    (by flag as well as by cancellation, which redis-py can lose), closes its engine,
    removes its registry key (the node sees it gone at once) and exits 0."""
    import signal

    from media.worker.protocol import Event
    from media.worker.redis_bus import RedisHub

    node_url = "http://127.0.0.1:1"
    hub = RedisHub(redis_server.url, node_url, SECRET.encode(), poll=0.05)
    hellos: list[str] = []
    dead: list[str] = []

    def on_event(sender: str, event: Event) -> None:
        if event.kind == "hello":
            hellos.append(sender)

    await hub.start(on_event, dead.append)
    process = start_worker(node_url, redis_server.url)
    try:
        await _until(lambda: bool(hellos), 30)  # the worker said hello
        await asyncio.sleep(0.5)  # heartbeats: the hub knows it alive
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 20)
        assert code == 0
        await _until(lambda: bool(dead), 5)
        assert dead == hellos, "its registry key went with it"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        await hub.close()
