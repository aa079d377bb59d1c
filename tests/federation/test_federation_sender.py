"""The delivery worker with a fake clock against a fake inbox: retries, host backoff,
blocked domains and restarts (a new worker on the same database delivers what is left)."""

from __future__ import annotations

from pathlib import Path

from node.clock import FakeClock
from tests.support.delivery import Inbox, publish_updates, sending


async def test_retry_backoff_and_restart(tmp_path: Path, inbox: Inbox) -> None:
    clock = FakeClock()
    async with sending(tmp_path / "n", clock) as ctx:
        publish_updates(ctx, inbox.url, 3)
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


async def test_permanent_failure_and_blocked_domain(tmp_path: Path, inbox: Inbox) -> None:
    clock = FakeClock()
    async with sending(tmp_path / "n", clock) as ctx:
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
