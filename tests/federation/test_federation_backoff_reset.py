"""Hearing from a host clears its backoff (issue 18), and nobody else can make it so.

Unit level: the delivery worker with a fake clock against a fake inbox. Real nodes: B is
stopped while A queues deliveries to it; B comes back and sends A one signed request; A
delivers B's queue without its clock moving. Attacks: a forged or unsigned request in
B's name, a verified request from another host, and a flood of B's own requests.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from federation.as2 import host_of
from federation.delivery import HostBackoff
from federation.sender import WAKE_INTERVAL
from federation.service import FEDERATION, Federation
from node.clock import FakeClock
from tests.support.delivery import Inbox, publish_updates, sending
from tests.support.network import FAST, eventually, follow_accepted
from tests.support.nodes import Node, NodeFactory
from tests.support.remote import FakeRemote, post

# ---- the worker ------------------------------------------------------------------------------


async def test_heard_from_clears_the_backoff_and_makes_the_queue_due(
    tmp_path: Path, inbox: Inbox
) -> None:
    clock = FakeClock()
    async with sending(tmp_path / "n", clock) as ctx:
        publish_updates(ctx, inbox.url, 3)
        worker = ctx.worker()
        assert await worker.run_once() == 3
        host = host_of(inbox.url)
        assert ctx.deliveries.host(host)[0] == 1  # one failure: resting 30 s
        assert await worker.run_once() == 0
        inbox.status = 202
        worker.heard_from(host)
        assert ctx.deliveries.host(host) == (0, None)
        assert worker.wake.is_set()
        assert await worker.run_once() == 3  # no clock movement needed
        assert ctx.deliveries.summary()["sent"] == 3
        assert inbox.hits == 4


async def test_a_healthy_or_unknown_host_costs_nothing(tmp_path: Path, inbox: Inbox) -> None:
    clock = FakeClock()
    async with sending(tmp_path / "n", clock) as ctx:
        worker = ctx.worker()
        for _ in range(100):
            worker.heard_from("unknown.example")
            worker.heard_from(host_of(inbox.url))
        assert worker.wakes == 0
        assert ctx.deliveries.host("unknown.example") == (0, None)
        assert not worker.wake.is_set()


async def test_a_flood_of_requests_is_one_probe_per_interval(tmp_path: Path, inbox: Inbox) -> None:
    """A host that keeps signing requests while its inbox fails gets one probe per
    WAKE_INTERVAL, not one per request (no delivery storm)."""
    clock = FakeClock()
    async with sending(tmp_path / "n", clock) as ctx:
        publish_updates(ctx, inbox.url, 20)
        worker = ctx.worker()
        await worker.run_once()
        assert inbox.hits == 1
        host = host_of(inbox.url)
        for _ in range(3):
            for _ in range(500):  # the flood
                worker.heard_from(host)
            while await worker.run_once():
                pass
            clock.advance(1.0)
        assert worker.wakes == 1
        assert inbox.hits == 2  # the first probe, and one after the first reset
        clock.advance(WAKE_INTERVAL)
        for _ in range(500):
            worker.heard_from(host)
        while await worker.run_once():
            pass
        assert worker.wakes == 2
        assert inbox.hits == 3
        rows = ctx.deliveries.recent(50)
        assert sum(r.attempts for r in rows) == 3  # only the probes used an attempt


async def test_a_delivery_accepted_after_failures_wakes_the_rest(
    tmp_path: Path, inbox: Inbox
) -> None:
    clock = FakeClock()
    async with sending(tmp_path / "n", clock) as ctx:
        first = {"id": f"{ctx.urls.base}/activities/first", "type": "Update", "actor": "x"}
        ctx.publisher.publish(first, None, [inbox.url], public=False)
        worker = ctx.worker()
        await worker.run_once()  # fails: the row retries in 16 s, the host rests 30 s
        clock.advance(5)
        later = {"id": f"{ctx.urls.base}/activities/later", "type": "Update", "actor": "x"}
        ctx.publisher.publish(later, None, [inbox.url], public=False)
        await worker.run_once()  # deferred to the end of the host's rest, no attempt
        # the host's rest is over (one failure on record) when the first row's retry is due;
        # the later row still waits for the end of the rest it was deferred to (t + 30 s)
        ctx.deliveries.put_host(HostBackoff(host_of(inbox.url), 1, None), None)
        clock.advance(12)
        inbox.status = 202
        assert await worker.run_once() == 1  # the first row, due again, is accepted
        assert await worker.run_once() == 1  # and the deferred one was woken with it
        assert ctx.deliveries.summary()["sent"] == 2


# ---- real nodes ------------------------------------------------------------------------------


def federation_of(node: Node) -> Federation:
    assert node.app is not None
    return node.app[FEDERATION]


def rows_to(node: Node, host: str) -> list[str]:
    fed = federation_of(node)
    rows = fed.db.all("SELECT state FROM deliveries WHERE host = ?", (host,))
    return [r[0] for r in rows]


async def a_queue_for_b(node_factory: NodeFactory) -> tuple[Node, Node, FakeClock]:
    """A (frozen clock, production backoff) has queued room announcements for a stopped B."""
    clock = FakeClock(start=time.time())  # signatures carry A's Date: keep it current
    a = await node_factory(
        "a", clock=clock, testnet=True, delivery_poll_seconds=0.05, delivery_jitter_seconds=0.0
    )
    b = await node_factory("b", **FAST)
    alice = await (await a.user()).signup("alice")
    await (await a.user()).signup("carol")
    bob = await (await b.user()).signup("bob")
    await follow_accepted(bob, alice, a)
    await b.stop()
    for title in ("While you were out", "Still out"):
        status, _ = await alice.call("POST", "/api/rooms", {"title": title})
        assert status == 201
    b_host = host_of(b.settings.base_url)

    async def backing_off() -> bool:
        failures, _ = federation_of(a).deliveries.host(b_host)
        return failures >= 1 and rows_to(a, b_host).count("pending") >= 2

    await eventually(backing_off)
    return a, b, clock


async def test_a_peer_back_from_an_outage_gets_its_queue_when_it_talks(
    node_factory: NodeFactory,
) -> None:
    a, b, clock = await a_queue_for_b(node_factory)
    b_host = host_of(b.settings.base_url)
    _, available = federation_of(a).deliveries.host(b_host)
    assert available is not None and available > clock.now() + 20  # resting ≥ 20 s more
    await b.start()  # same port, same data
    bob = await b.user()
    assert (await bob.signin("bob"))[0] == 200
    carol = f"carol@{host_of(a.url)}"
    status, body = await bob.call("POST", f"/api/users/{carol}/follow")  # a signed Follow
    assert status == 200, body

    async def delivered() -> bool:
        return "pending" not in rows_to(a, b_host)

    await eventually(delivered, timeout=8)  # A's clock never moved
    assert federation_of(a).worker.wakes == 1
    _, hallway = await bob.call("GET", "/api/hallway")
    titles = {card["title"] for card in hallway["rooms"]}
    assert {"While you were out", "Still out"} <= titles


async def test_only_a_verified_request_from_that_host_clears_it(
    node_factory: NodeFactory, remote: FakeRemote
) -> None:
    a, b, _ = await a_queue_for_b(node_factory)
    b_host = host_of(b.settings.base_url)
    before = federation_of(a).deliveries.host(b_host)
    bob_id = f"{b.settings.base_url}/users/bob"
    inbox_url = f"{a.url}/inbox"
    follow = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Follow",
        "object": f"{a.url}/users/carol",
    }
    # 1. unsigned, in bob's name
    body = json.dumps({**follow, "id": f"{bob_id}#f1", "actor": bob_id}).encode()
    status, _ = await post(a, body, {"Content-Type": "application/activity+json"})
    assert status == 401
    # 2. in bob's name, signed by mallory's key (another host)
    body = json.dumps({**follow, "id": f"{bob_id}#f2", "actor": bob_id}).encode()
    status, _ = await post(a, body, remote.sign(inbox_url, body))
    assert status == 401
    # 3. verified, from mallory's host, about B (B named in the content only)
    mallory = remote.actor_id("mallory")
    body = json.dumps(
        {**follow, "id": f"{remote.base}/activities/f3", "actor": mallory, "cc": [bob_id]}
    ).encode()
    status, _ = await post(a, body, remote.sign(inbox_url, body))
    assert status == 202
    assert federation_of(a).deliveries.host(b_host) == before
    assert federation_of(a).worker.wakes == 0
    assert rows_to(a, b_host).count("pending") >= 2
