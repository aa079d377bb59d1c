"""Attacks on GET /api/ice-servers: strangers asking for TURN credentials, an account
asking for thousands, and anything that could leak the TURN shared secret."""

from __future__ import annotations

from typing import Any

from node.clock import FakeClock
from node.turn import TurnServer
from tests.support.nodes import NodeFactory

START = 1_800_000_000.0
SECRET = "the-shared-secret"
TURN = TurnServer(("turn:turn.example:3478?transport=udp",), secret=SECRET)


async def test_signed_out_gets_401(node_factory: NodeFactory) -> None:
    node = await node_factory(turn_servers=(TURN,))
    anonymous = await node.user()
    status, body = await anonymous.call("GET", "/api/ice-servers")
    assert (status, body) == (401, {"error": "sign in first"})
    status, body = await anonymous.call(
        "GET", "/api/ice-servers", headers={"Authorization": "Bearer nope"}
    )
    assert (status, body) == (401, {"error": "invalid or expired token"})


async def test_the_shared_secret_is_in_no_answer(node_factory: NodeFactory) -> None:
    node = await node_factory(turn_servers=(TURN,), ice_servers_per_user_per_minute=1)
    alice = await node.user("alice")
    seen = []
    for path in ("/api/ice-servers", "/api/ice-servers", "/api/instance", "/api/me", "/"):
        async with alice.http.get(node.url + path) as resp:
            seen.append(f"{resp.status} {dict(resp.headers)} {await resp.text()}")
            if path == "/api/ice-servers" and resp.status == 200:
                # per-request credentials: no shared cache may keep them
                assert resp.headers["Cache-Control"] == "no-store"
    assert seen[0].startswith("200") and seen[1].startswith("429")  # the limit answered too
    assert not [answer for answer in seen if SECRET in answer]


async def test_rate_limited_per_account(node_factory: NodeFactory) -> None:
    clock = FakeClock(START)
    node = await node_factory(clock=clock, turn_servers=(TURN,), ice_servers_per_user_per_minute=3)
    alice, bob = await node.user("alice"), await node.user("bob")
    for _ in range(3):
        assert (await alice.call("GET", "/api/ice-servers"))[0] == 200
    async with alice.http.get(node.url + "/api/ice-servers") as resp:
        body: Any = await resp.json()
        assert resp.status == 429, body
        assert body == {"error": "too many ICE server requests"}
        assert int(resp.headers["Retry-After"]) >= 1
    assert (await bob.call("GET", "/api/ice-servers"))[0] == 200  # per account
    clock.advance(20)  # 3 a minute: one more after 20 s
    assert (await alice.call("GET", "/api/ice-servers"))[0] == 200
    assert (await alice.call("GET", "/api/ice-servers"))[0] == 429
