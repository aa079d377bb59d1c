"""Signed requests between real test nodes, as a node's own code would make them."""

from __future__ import annotations

import secrets
import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from federation.service import FEDERATION
from tests.support.nodes import Node


async def signed_join(
    b: Node, room_url: str, token: str | None = None, username: str = "bob"
) -> int:
    """USERNAME of node B asks the room's inbox to admit them, as B's relay would (without
    opening a trunk); the inbox's HTTP status."""
    assert b.app is not None
    fed = b.app[FEDERATION]
    bob = fed.users.by_name(username)
    assert bob is not None
    join: dict[str, object] = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{b.url}/activities/join-{secrets.token_hex(8)}",
        "type": "Join",
        "actor": f"{b.url}/users/{username}",
        "object": room_url,
    }
    if token:
        join["inviteToken"] = token
    status, _ = await fed.client.post_json(
        f"{host_root(room_url)}/inbox", join, fed.signers.user(bob)
    )
    return status


def host_root(url: str) -> str:
    return url.split("/rooms/")[0]


class FixedResolver(AbstractResolver):
    """Resolves every name to one address (what a hostile DNS answer would do)."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host, host=self.address, port=port, family=family, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        return None
