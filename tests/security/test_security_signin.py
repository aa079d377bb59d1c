"""Attack: 30 concurrent wrong passwords for one account were all checked (30 × 401)
although the limit is 10, because a failure was counted only after argon2 returned.
Now an attempt counts from the moment it starts."""

from __future__ import annotations

import asyncio

import aiohttp

from node.clock import FakeClock
from tests.support.attacks import local_usernames, parts, post_from
from tests.support.nodes import NodeFactory

ATTACKER = "203.0.113.66"
WRONG = {"username": "alice", "password": "not-her-password"}
RIGHT = {"username": "alice", "password": "password123"}


async def test_concurrent_wrong_signins_are_limited(node_factory: NodeFactory) -> None:
    clock = FakeClock()
    node = await node_factory(
        clock=clock, trust_proxy=True, signin_attempts=10, signin_window_seconds=5
    )
    await node.user("alice")
    await node.user("bob")
    async with aiohttp.ClientSession() as http:
        answers = await asyncio.gather(
            *(post_from(http, node, "/api/auth/signin", WRONG, ATTACKER) for _ in range(30))
        )
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [401] * 10 + [429] * 20
        for status, headers, body in answers:
            if status == 429:
                assert 1 <= int(headers["Retry-After"]) <= 6
                assert body == {"error": "too many failed sign-ins; try again later"}

        # the attacker's address and alice's account are both closed for the window...
        assert (await post_from(http, node, "/api/auth/signin", RIGHT, ATTACKER))[0] == 429
        assert (await post_from(http, node, "/api/auth/signin", RIGHT, "198.51.100.7"))[0] == 429
        # ...but another user from another address is unaffected
        bob = {"username": "bob", "password": "password123"}
        assert (await post_from(http, node, "/api/auth/signin", bob, "198.51.100.8"))[0] == 200

        # after the window the right password works, even from the attacker's address
        clock.advance(6)
        assert (await post_from(http, node, "/api/auth/signin", RIGHT, ATTACKER))[0] == 200

    assert local_usernames(node) == ["alice", "bob"]
    assert len(parts(node).accounts.limiter) <= 4  # two addresses, two accounts at most


async def test_successes_do_not_count_against_the_address(node_factory: NodeFactory) -> None:
    node = await node_factory(clock=FakeClock(), trust_proxy=True, signin_attempts=3)
    await node.user("alice")
    async with aiohttp.ClientSession() as http:
        for _ in range(8):
            assert (await post_from(http, node, "/api/auth/signin", RIGHT, ATTACKER))[0] == 200
        # two failures, then a success: the success clears the account, the address keeps 2
        for _ in range(2):
            assert (await post_from(http, node, "/api/auth/signin", WRONG, ATTACKER))[0] == 401
        assert (await post_from(http, node, "/api/auth/signin", RIGHT, ATTACKER))[0] == 200
        assert (await post_from(http, node, "/api/auth/signin", WRONG, ATTACKER))[0] == 401
        assert (await post_from(http, node, "/api/auth/signin", RIGHT, ATTACKER))[0] == 429


async def test_junk_usernames_are_counted_by_address_only(node_factory: NodeFactory) -> None:
    """Odd Unicode, control characters and huge names: refused, counted per address, and
    none of them becomes a key of its own in the limiter's table."""
    node = await node_factory(clock=FakeClock(), trust_proxy=True, signin_attempts=5)
    await node.user("alice")
    junk = ["ａlice", "alice\u0000", "Alice", "alice ", "ä" * 30, "x" * 60_000, "", "🙂"]
    async with aiohttp.ClientSession() as http:
        answers = await asyncio.gather(
            *(
                post_from(
                    http, node, "/api/auth/signin", {"username": n, "password": "pw"}, ATTACKER
                )
                for n in junk
            )
        )
        assert sorted(status for status, _, _ in answers) == [401] * 5 + [429] * 3
        # IPv6 clients are counted per /64: another address in it is refused too
        v6 = {"username": "ａlice", "password": "pw"}
        for host in range(1, 6):
            assert (await post_from(http, node, "/api/auth/signin", v6, f"2001:db8::{host}"))[
                0
            ] == 401
        assert (await post_from(http, node, "/api/auth/signin", v6, "2001:db8::ffff"))[0] == 429
        assert (await post_from(http, node, "/api/auth/signin", RIGHT, "198.51.100.9"))[0] == 200
    assert len(parts(node).accounts.limiter) <= 3
