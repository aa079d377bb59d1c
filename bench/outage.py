"""Catch-up after an outage: how soon a peer back online gets what was queued for it.

Two real federating nodes in this process (``tests.support.nodes.Node``: the composition
root on 127.0.0.1, real signed HTTP). A runs the production delivery schedule (host
backoff from 30 s, doubling; retries n⁴ + 15 s). bob on B follows alice on A; B stops;
alice opens rooms (one ``Create`` each for B) while B is down, so A's backoff for B grows
(a probe at once, another 30 s later, then a 60 s rest). B comes back after the outage and
bob follows carol on A: one signed request. Reported:

- ``catch_up_s``: from that request until A has delivered B's whole queue (goal ≤ 5 s);
- ``backoff_wait_s``: how long A's backoff still had to run at that moment — what a node
  that does not clear the backoff when it hears from a host (Salon before issue 18) waits
  at least, in the same run.

    .venv/bin/python bench/outage.py [--outage 45]     # ≈ outage + 10 s

Called by bench/storm.py for its catch-up figure; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROOMS = 5


def queued_for(node: Any, host: str) -> dict[str, int]:
    from federation.service import FEDERATION

    rows = node.app[FEDERATION].db.all(
        "SELECT state, count(*) FROM deliveries WHERE host = ? GROUP BY state", (host,)
    )
    return {r[0]: int(r[1]) for r in rows}


async def run_outage(outage: float = 45.0) -> dict[str, Any]:
    from federation.activities import host_of
    from federation.service import FEDERATION
    from tests.support.network import FAST, follow_accepted
    from tests.support.nodes import Node, free_port, make_settings

    with tempfile.TemporaryDirectory(prefix="salon-outage-") as tmp:
        a = await Node(
            make_settings(
                Path(tmp) / "a", port=free_port(), testnet=True, delivery_poll_seconds=0.05
            )
        ).start()
        b = await Node(make_settings(Path(tmp) / "b", port=free_port(), **FAST)).start()
        try:
            alice = await (await a.user()).signup("alice")
            await (await a.user()).signup("carol")
            bob = await (await b.user()).signup("bob")
            await follow_accepted(bob, alice, a)
            b_host = host_of(b.settings.base_url)
            await b.stop()
            down = time.monotonic()
            for n in range(ROOMS):
                status, _ = await alice.call("POST", "/api/rooms", {"title": f"while out {n}"})
                assert status == 201
            await asyncio.sleep(max(0.0, outage - (time.monotonic() - down)))
            deliveries = a.app[FEDERATION].deliveries  # type: ignore[index]
            failures, available = deliveries.host(b_host)
            queued = queued_for(a, b_host).get("pending", 0)
            await b.start()
            bob = await b.user()
            await bob.signin("bob")
            asked = time.monotonic()
            backoff_wait = max(0.0, (available or time.time()) - time.time())
            status, body = await bob.call(
                "POST", f"/api/users/carol@{host_of(a.url)}/follow"
            )  # B's first signed request to A after the outage
            assert status == 200, body
            while queued_for(a, b_host).get("pending", 0):
                if time.monotonic() - asked > 120:
                    raise SystemExit("B's queue was not delivered within 120 s")
                await asyncio.sleep(0.02)
            catch_up = time.monotonic() - asked
        finally:
            await b.stop()
            await a.stop()
    print(
        f"outage {outage:.0f} s, {queued} deliveries queued, {failures} failed probes: "
        f"delivered {catch_up:.2f} s after B's first request "
        f"(the backoff had {backoff_wait:.0f} s left)"
    )
    return {
        "catch_up_s": round(catch_up, 2),
        "backoff_wait_s": round(backoff_wait, 1),
        "outage_s": outage,
        "outage_failed_probes": failures,
        "outage_queued": queued,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage", type=float, default=45.0, help="seconds B is down")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run_outage(args.outage))))


if __name__ == "__main__":
    main()
