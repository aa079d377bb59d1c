"""The parts of a node that queue and send deliveries, and a fake inbox to send them to."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

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


@contextlib.asynccontextmanager
async def sending(data: Path, clock: FakeClock) -> AsyncIterator[Sending]:
    """The sending parts of a node with its data directory at DATA; closed on exit."""
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
    ctx = Sending(
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
    try:
        yield ctx
    finally:
        await ctx.close()


def publish_updates(ctx: Sending, inbox_url: str, count: int) -> None:
    """Queue COUNT ``Update`` activities (ids ``…/activities/0``, ``/1``, …) to INBOX_URL."""
    for n in range(count):
        doc = {"id": f"{ctx.urls.base}/activities/{n}", "type": "Update", "actor": "x"}
        ctx.publisher.publish(doc, None, [inbox_url], public=False)
