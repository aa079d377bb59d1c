"""The node's Prometheus metrics (issue #15): a real node with a known load — two rooms,
one with a host bot and three listener bots (real `salon bot` processes), inbox requests
accepted and refused — scraped over HTTP and parsed with prometheus_client's parser."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from cli.app import NODE
from federation import keys
from tests.security.fake_actor_server import FakeActorServer
from tests.support.cli import stop_bot
from tests.support.metrics import Samples, listening_ports, scrape, value
from tests.support.network import FAST
from tests.support.nodes import NodeFactory, free_port
from tests.support.workers import listen_bot, tone_host

LISTENERS = ("bob", "carol", "dave")


@pytest.fixture
async def remote() -> AsyncIterator[FakeActorServer]:
    """Another server's actor, signing inbox POSTs (tests/security/fake_actor_server.py)."""
    server = await FakeActorServer().start()
    yield server
    await server.close()


def follow(remote: FakeActorServer, actor_id: str, target: str) -> dict[str, object]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.url}/activities/follow-metrics",
        "type": "Follow",
        "actor": actor_id,
        "object": target,
    }


async def until_scraped(
    address: str, ready: Callable[[Samples], bool], timeout: float = 20.0
) -> Samples:
    """Scrape until READY(samples) holds (the bots take a few seconds to connect)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await scrape(address)
        try:
            if ready(samples):
                return samples
        except KeyError:
            pass
        if time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.25)


@pytest.mark.timeout(120)
async def test_metrics_match_a_known_load(
    node_factory: NodeFactory, tmp_path: Path, remote: FakeActorServer
) -> None:
    address = f"127.0.0.1:{free_port()}"
    node = await node_factory(ice_addresses=("127.0.0.1",), metrics_address=address, **FAST)
    for name in ("alice", *LISTENERS):
        await node.user(name)
    erin = await node.user("erin")
    status, _ = await erin.call("POST", "/api/rooms", {"title": "Second room"})
    assert status == 201

    host, room_url, _ = await tone_host(node, tmp_path, "Metrics", seconds=40)
    bots = []
    try:
        bots = [await listen_bot(node, room_url, name, 30) for name in LISTENERS]
        worker = {"worker": "node"}
        first = await until_scraped(
            address,
            lambda s: (
                value(s, "salon_worker_listeners", **worker) == 3
                and value(s, "salon_worker_sessions", **worker) == 4
            ),
        )
        assert value(first, "salon_rooms", status="live") == 2
        assert value(first, "salon_rooms", status="scheduled") == 0
        assert value(first, "salon_listeners") == 3
        assert value(first, "salon_speakers") == 1  # alice; erin never entered her room
        assert value(first, "salon_participants") == 4
        assert value(first, "salon_worker_up", **worker) == 1
        assert value(first, "salon_worker_sessions", **worker) == 4
        assert value(first, "salon_worker_listeners", **worker) == 3
        assert value(first, "salon_worker_rooms", **worker) == 1  # media only where people are
        assert value(first, "salon_trunks", direction="origin") == 0
        assert value(first, "salon_trunks", direction="relay") == 0

        await asyncio.sleep(1.5)  # more than the loads' 1 s window
        second = await scrape(address)
        sent_before = value(first, "salon_worker_packets_sent_total", **worker)
        sent_after = value(second, "salon_worker_packets_sent_total", **worker)
        # 4 downlinks × 50 packets a second (the host hears the mix-minus); generous floor
        assert sent_after - sent_before >= 100, (sent_before, sent_after)
        assert value(second, "salon_worker_packets_per_second", **worker) > 50
        assert value(second, "salon_worker_fanout_microseconds_per_packet", **worker) > 0
        assert value(second, "salon_worker_cpu_percent", **worker) > 0
        assert value(second, "salon_media_ticks_total") > 0
        assert value(second, "salon_event_loop_lag_seconds_count") >= 1
        assert value(second, "process_cpu_seconds_total") > 0
    finally:
        for bot in [*bots, host]:
            await stop_bot(bot)

    # the inbox: one good signed Follow, one bad signature, one body over the cap
    mallory = remote.actor("mallory")
    status, text = await remote.post(
        f"{node.url}/inbox",
        follow(remote, mallory, f"{node.url}/users/alice"),
        key_id=f"{mallory}#main-key",
    )
    assert status == 202, text
    status, text = await remote.post(
        f"{node.url}/inbox",
        follow(remote, mallory, f"{node.url}/users/bob"),
        key_id=f"{mallory}#main-key",
        private_key=keys.generate_rsa_private_key(),
    )
    assert status == 401, text
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{node.url}/inbox", data=b"x" * (node.settings.max_body_bytes + 1)) as resp,
    ):
        assert resp.status == 413
    samples = await until_scraped(
        address, lambda s: value(s, "salon_federation_deliveries", state="pending") >= 0
    )
    assert value(samples, "salon_inbox_accepted_total") == 1
    assert value(samples, "salon_inbox_refused_total", reason="bad_signature") == 1
    assert value(samples, "salon_inbox_refused_total", reason="too_large") == 1
    refused = sum(v for (n, _), v in samples.items() if n == "salon_inbox_refused_total")
    assert refused == 2
    # the Follow was accepted: its Accept is one delivery (queued, sent or failed)
    states = {
        dict(labels)["state"]: v
        for (n, labels), v in samples.items()
        if n == "salon_federation_deliveries"
    }
    assert set(states) == {"pending", "failed", "skipped"}
    assert sum(states.values()) + value(samples, "salon_federation_deliveries_sent_total") == 1


@pytest.mark.timeout(30)
async def test_public_port_never_serves_metrics_and_off_means_nothing_listens(
    node_factory: NodeFactory,
) -> None:
    before = listening_ports()
    node = await node_factory()  # metrics_address unset: off
    assert node.settings.metrics_address == ""
    assert node.app is not None
    port = node.app[NODE].audio.engine.port
    assert listening_ports() - before == {node.settings.port, port.tcp_port}, "nothing else"
    async with aiohttp.ClientSession() as http:
        for method in ("GET", "HEAD", "POST"):
            async with http.request(method, f"{node.url}/metrics") as resp:
                assert resp.status in (404, 405), (method, resp.status)
                assert resp.status == 404 or method == "POST"

    before = listening_ports()
    metrics_port = free_port()
    address = f"127.0.0.1:{metrics_port}"
    on = await node_factory("b", metrics_address=address)
    assert on.app is not None
    media_tcp = on.app[NODE].audio.engine.port.tcp_port
    assert listening_ports() - before == {on.settings.port, media_tcp, metrics_port}
    async with aiohttp.ClientSession() as http, http.get(f"{on.url}/metrics") as resp:
        assert resp.status == 404, "the public port never serves /metrics, even when on"
    assert value(await scrape(address), "salon_rooms", status="live") == 0
    await on.stop()
    assert metrics_port not in listening_ports(), "the metrics site stops with the node"
