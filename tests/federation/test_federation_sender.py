"""The delivery worker with a fake clock against a fake inbox: retries, host backoff,
blocked domains and restarts (a new worker on the same database delivers what is left)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from federation.fetch import SafeClient
from federation.identity import Signers, Urls, load_node_keys
from federation.outbox import Publisher
from federation.sender import DeliveryWorker
from federation.store.actors import KeyStore
from federation.store.deliveries import DeliveryStore
from federation.store.policies import DomainPolicies
from node.clock import FakeClock
from node.datadir import ensure_data_dir
from node.settings import Settings, load_settings
from node.store.db import Database, open_database
from node.store.users import UserStore


class Inbox:
    def __init__(self) -> None:
        self.status = 503
        self.hits = 0
        app = web.Application()
        app.router.add_post("/inbox", self.handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        assert "Signature" in request.headers and "Digest" in request.headers
        return web.Response(status=self.status)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/inbox"))


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    fake = Inbox()
    await fake.server.start_server()
    yield fake
    await fake.server.close()


@dataclasses.dataclass
class Sending:
    """The parts of a node that queue and send deliveries, built as the node builds them."""

    settings: Settings
    clock: FakeClock
    db: Database
    urls: Urls
    deliveries: DeliveryStore
    policies: DomainPolicies
    client: SafeClient
    signers: Signers
    publisher: Publisher

    def worker(self) -> DeliveryWorker:
        return DeliveryWorker(
            self.deliveries,
            self.policies,
            self.client,
            self.signers,
            self.clock,
            self.settings,
            self.publisher.wake,
            random_source=lambda: 0.0,
        )

    async def close(self) -> None:
        await self.client.close()
        self.db.close()


async def make_sending(data: Path, clock: FakeClock) -> Sending:
    ensure_data_dir(data)
    settings = dataclasses.replace(
        load_settings(data, environ={}),
        testnet=True,
        delivery_jitter_seconds=0.0,
        delivery_base_delay_seconds=15.0,
        host_backoff_seconds=30.0,
    )
    db = open_database(settings.db_path)
    urls = Urls(settings.base_url)
    deliveries = DeliveryStore(db)
    client = SafeClient(None, clock, testnet=True)
    await client.start()
    signers = Signers(urls, load_node_keys(data), KeyStore(db), UserStore(db), clock)
    return Sending(
        settings,
        clock,
        db,
        urls,
        deliveries,
        DomainPolicies(db, allowlist_mode=False),
        client,
        signers,
        Publisher(urls, deliveries, clock),
    )


async def test_retry_backoff_and_restart(tmp_path: Path, inbox: Inbox) -> None:
    clock = FakeClock()
    ctx = await make_sending(tmp_path / "n", clock)
    try:
        publisher = ctx.publisher
        for n in range(3):
            doc = {"id": f"{ctx.urls.base}/activities/{n}", "type": "Update", "actor": "x"}
            publisher.publish(doc, None, [inbox.url], public=False)
        worker = ctx.worker()
        assert await worker.run_once() == 3
        # one probe hit the dead host; the two others were deferred without an attempt
        assert inbox.hits == 1
        rows = {r.activity_id: r for r in ctx.deliveries.recent(10)}
        assert sorted(r.attempts for r in rows.values()) == [0, 0, 1]
        assert all(r.state == "pending" for r in rows.values())
        assert await worker.run_once() == 0  # nothing due yet
        clock.advance(31)  # host rest (30 s) and first retry (1 + 15 s) are over
        inbox.status = 202
        # "restart": a new worker on the same database after claims are released
        ctx.deliveries.release_claims()
        fresh = ctx.worker()
        assert await fresh.run_once() == 3
        assert ctx.deliveries.summary()["sent"] == 3
        assert inbox.hits == 4
    finally:
        await ctx.close()


async def test_permanent_failure_and_blocked_domain(tmp_path: Path, inbox: Inbox) -> None:
    clock = FakeClock()
    ctx = await make_sending(tmp_path / "n", clock)
    try:
        publisher = ctx.publisher
        inbox.status = 410
        publisher.publish(
            {"id": f"{ctx.urls.base}/a/1", "type": "Update"}, None, [inbox.url], False
        )
        worker = ctx.worker()
        await worker.run_once()
        assert ctx.deliveries.recent(1)[0].state == "failed"
        ctx.policies.set_policy("127.0.0.1", "suspend", clock.now())
        publisher.publish(
            {"id": f"{ctx.urls.base}/a/2", "type": "Update"}, None, [inbox.url], False
        )
        await worker.run_once()
        assert ctx.deliveries.summary()["skipped"] == 1
        assert inbox.hits == 1
    finally:
        await ctx.close()
