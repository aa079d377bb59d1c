"""Attack: one address could create accounts without end (each costs an argon2 hash,
two key pairs and a database row). Now `signup_per_ip_per_hour` attempts per address."""

from __future__ import annotations

import asyncio

import aiohttp

from node.clock import FakeClock
from tests.support.attacks import local_usernames, parts, post_from
from tests.support.nodes import NodeFactory

ATTACKER = "203.0.113.66"


def _signup(name: str) -> dict[str, str]:
    return {"username": name, "password": "password123"}


async def test_signups_per_address_are_limited(node_factory: NodeFactory) -> None:
    clock = FakeClock()
    node = await node_factory(clock=clock, trust_proxy=True, signup_per_ip_per_hour=3)
    async with aiohttp.ClientSession() as http:
        answers = await asyncio.gather(
            *(
                post_from(http, node, "/api/auth/signup", _signup(f"bot{i}"), ATTACKER)
                for i in range(10)
            )
        )
        assert sorted(status for status, _, _ in answers) == [201] * 3 + [429] * 7
        for status, headers, body in answers:
            if status == 429:
                assert 1 <= int(headers["Retry-After"]) <= 3601
                assert body == {"error": "too many sign-ups from your address; try again later"}
        made = local_usernames(node)
        assert len(made) == 3  # no row for any refused sign-up

        # a name that is taken is refused without a row
        taken = await post_from(http, node, "/api/auth/signup", _signup(made[0]), "198.51.100.1")
        assert taken[0] == 409
        # another address is unaffected
        assert (await post_from(http, node, "/api/auth/signup", _signup("carol"), "198.51.100.2"))[
            0
        ] == 201
        # an hour later the first address may sign up again
        clock.advance(3601)
        assert (await post_from(http, node, "/api/auth/signup", _signup("dave"), ATTACKER))[
            0
        ] == 201

    assert len(local_usernames(node)) == 5
    assert len(parts(node).accounts.signups) <= 3


async def test_ipv6_neighbours_share_one_limit(node_factory: NodeFactory) -> None:
    node = await node_factory(clock=FakeClock(), trust_proxy=True, signup_per_ip_per_hour=2)
    async with aiohttp.ClientSession() as http:
        statuses = [
            (await post_from(http, node, "/api/auth/signup", _signup(f"v6u{i}"), f"2001:db8::{i}"))[
                0
            ]
            for i in range(1, 5)
        ]
    assert statuses == [201, 201, 429, 429]
    assert len(local_usernames(node)) == 2
