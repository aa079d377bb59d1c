"""Several real nodes together: fast federation settings and waiting for what they do."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from federation.as2 import host_of
from tests.support.nodes import ApiUser, Node

FAST = {
    "testnet": True,
    "delivery_poll_seconds": 0.05,
    "delivery_base_delay_seconds": 0.1,
    "delivery_jitter_seconds": 0.0,
    "host_backoff_seconds": 0.1,
    "announce_interval_seconds": 0.2,
}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 8.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


AUDIO = {**FAST, "ice_addresses": ("127.0.0.1",), "reconnect_grace_seconds": 3.0}


def acct(user: ApiUser, node: Node) -> str:
    return f"{user.username}@{host_of(node.url)}"


async def follow_accepted(follower: ApiUser, followee: ApiUser, node: Node) -> None:
    status, body = await follower.call("POST", f"/api/users/{acct(followee, node)}/follow")
    assert status == 200, body
    assert body["state"] == "pending"

    async def accepted() -> bool:
        _, profile = await follower.call("GET", f"/api/users/{acct(followee, node)}")
        return bool(profile.get("followed_by_you") == "accepted")

    await eventually(accepted)
