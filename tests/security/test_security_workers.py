"""Attacks on the media workers' bus and controls (issue 15).

A client of the same Redis without the worker secret cannot command a worker or pose as
one; a captured genuine command played again is refused; a command for another worker is
refused; a worker's admin controls are for admins only."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from media.worker.local import LocalHub
from media.worker.protocol import (
    MAX_MESSAGE_BYTES,
    NODE,
    Command,
    Event,
    ProtocolError,
    Signer,
    Verifier,
)
from media.worker.redis_bus import namespace
from tests.support.attacks import parts
from tests.support.network import eventually
from tests.support.nodes import Node, NodeFactory
from tests.support.workers import SECRET, Redis, start_worker, worker_audio, workers_ready

KEY = SECRET.encode()


@pytest.mark.timeout(10)
def test_forged_replayed_misaddressed_and_stale_messages_are_refused() -> None:
    good = Signer(KEY, NODE)
    worker = Verifier(KEY, "w-1")
    body = Command("open_mixer", 1, {"room": "r"}).serialize()
    genuine = good.seal("w-1", body)
    assert worker.open(genuine).body == body
    cases = [
        (genuine, "message: replayed (sequence number not above the last)"),
        (Signer(b"not-the-secret-but-long", NODE).seal("w-1", body), "message: bad MAC"),
        (good.seal("w-2", body), "message: addressed to someone else"),
        (b"x" * (MAX_MESSAGE_BYTES + 1), f"message: longer than {MAX_MESSAGE_BYTES} bytes"),
        (b"[1, 2]", "message: must be an object"),
    ]
    for raw, expected in cases:
        with pytest.raises(ProtocolError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            worker.open(raw)
    stale = good.seal("w-1", body)
    with pytest.raises(ProtocolError, match="message: timestamp too far from now"):
        worker.open(stale, now=time.time() + 120)
    assert worker.refused == len(cases) + 1


@pytest.mark.timeout(10)
def test_commands_are_checked_field_by_field() -> None:
    with pytest.raises(ProtocolError, match="open_mixer: 'room' is required"):
        Command("open_mixer", 1, {})
    with pytest.raises(ProtocolError, match="unknown kind 'rm -rf'"):
        Command("rm -rf", 1, {})
    with pytest.raises(ProtocolError, match="open_relay: 'origin_port' must be an integer"):
        Command.parse(
            {
                "command": "open_relay",
                "id": 1,
                "fields": {
                    "room": "r",
                    "trunk": 1,
                    "own_key": "00" * 32,
                    "peer_key": "00" * 32,
                    "origin_host": "127.0.0.1",
                    "origin_port": 10**9,
                },
            }
        )
    with pytest.raises(ProtocolError, match="signal: 'room' is longer than 200 characters"):
        Command("signal", 1, {"room": "r" * 201, "participant": "1", "message": {}})
    with pytest.raises(ProtocolError, match="levels: unknown field 'extra'"):
        Event("levels", {"room": "r", "levels": {}, "extra": 1})


async def _next_beats(node: Node, worker: str, count: int = 2) -> dict[str, Any]:
    """The worker's load once it sent COUNT more heartbeats (it read everything sent before)."""
    state = worker_audio(node).pool.get(worker)
    assert state is not None
    start = state.beats

    async def later() -> dict[str, Any] | None:
        return state.load if state.beats >= start + count else None

    load: dict[str, Any] = await eventually(later, timeout=10)
    return load


@pytest.mark.timeout(60)
async def test_redis_clients_without_the_secret_cannot_command_or_pose_as_workers(
    node_factory: NodeFactory, redis_server: Redis
) -> None:
    node = await node_factory(
        ice_addresses=("127.0.0.1",), redis_url=redis_server.url, worker_secret=SECRET
    )
    process = start_worker(node.url, redis_server.url)
    attacker = aioredis.Redis.from_url(redis_server.url)
    try:
        (worker,) = await workers_ready(node, 1)
        pool = worker_audio(node).pool
        ns = namespace(node.url)
        stream = f"{ns}:worker:{worker}:commands"
        # a genuine command works, and is then played again by someone who captured it
        await pool.call(worker, "open_mixer", room="room-1")
        assert (await _next_beats(node, worker))["rooms"] == 1
        await pool.call(worker, "close_room", room="room-1")
        entries = await attacker.xrange(stream)
        opened = [v[b"m"] for _, v in entries if b"open_mixer" in v[b"m"]]
        await attacker.xadd(stream, {"m": opened[0]})
        # forged: signed without the secret; misaddressed: a command for another worker
        wrong = Signer(b"an-attacker-guessed-this", NODE)
        body = Command("open_mixer", 99, {"room": "room-2"}).serialize()
        await attacker.xadd(stream, {"m": wrong.seal(worker, body)})
        await attacker.xadd(stream, {"m": b"not even json"})
        load = await _next_beats(node, worker, 3)
        assert load["rooms"] == 0, "no replayed or forged command was carried out"
        assert load["refused"] == 3
        # posing as a worker: a forged heartbeat key and a forged hello on the event stream
        fake = Signer(b"an-attacker-guessed-this", "w-evil")
        beat = Event("heartbeat", {"load": {"advertise": "6.6.6.6", "media_port": 9}})
        await attacker.sadd(f"{ns}:workers", "w-evil")
        await attacker.set(f"{ns}:worker:w-evil", fake.seal(NODE, beat.serialize()), px=5000)
        hello = Event("hello", {"advertise": "6.6.6.6", "media_port": 9, "pid": 1})
        await attacker.xadd(f"{ns}:events", {"m": fake.seal(NODE, hello.serialize())})
        await _next_beats(node, worker, 3)
        assert [w.id for w in pool.workers()] == [worker]
        assert pool.hub.refused >= 2
    finally:
        await attacker.aclose()
        process.kill()
        process.wait(10)


@pytest.mark.timeout(60)
async def test_worker_controls_are_for_admins(node_factory: NodeFactory) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",), media_workers=1)
    (worker,) = await workers_ready(node, 1)
    await parts(node).accounts.create_user("root", "password123", is_admin=True)
    admin = await node.user()
    await admin.signin("root")
    mallory = await node.user("mallory")
    for method, path in (
        ("GET", "/api/admin/workers"),
        ("POST", f"/api/admin/workers/{worker}/drain"),
    ):
        status, body = await mallory.call(method, path)
        assert (status, body) == (403, {"error": "admins only"})
    status, body = await admin.call("POST", "/api/admin/workers/w-unknown/drain")
    assert (status, body) == (404, {"error": "no such worker"})
    status, body = await admin.call("POST", "/api/admin/workers/" + "w" * 5000 + "/drain")
    assert status in (404, 414)
    status, body = await admin.call("GET", "/api/admin/workers")
    assert status == 200 and [w["id"] for w in body["workers"]] == [worker]
    assert body["workers"][0]["draining"] is False


@pytest.mark.timeout(60)
async def test_a_local_process_without_the_secret_cannot_join_the_local_bus(
    node_factory: NodeFactory,
) -> None:
    """The Unix socket is private (0600, in a private directory); even a process that can
    reach it cannot register a worker without the node's generated secret, and one line
    over the size limit ends that connection."""
    node = await node_factory(ice_addresses=("127.0.0.1",), media_workers=1)
    (worker,) = await workers_ready(node, 1)
    hub = worker_audio(node).pool.hub
    assert isinstance(hub, LocalHub)
    assert stat.S_IMODE(os.stat(hub.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(hub.path.parent).st_mode) == 0o700
    reader, writer = await asyncio.open_unix_connection(str(hub.path))
    fake = Signer(b"guessed-but-not-the-secret", "w-evil")
    hello = Event("hello", {"advertise": "6.6.6.6", "media_port": 9, "pid": 1})
    writer.write(fake.seal(NODE, hello.serialize()) + b"\n")
    writer.write(b"{" + b"x" * (MAX_MESSAGE_BYTES + 2048) + b"\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""  # the node hung up
    writer.close()
    assert hub.refused >= 1
    assert [w.id for w in worker_audio(node).pool.workers()] == [worker]
