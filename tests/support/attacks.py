"""Raw HTTP for attack tests: statuses and headers as a hostile client sees them."""

from __future__ import annotations

from typing import Any

import aiohttp

from cli.app import NODE
from cli.app import Node as NodeParts
from tests.support.nodes import Node


async def post_from(
    http: aiohttp.ClientSession, node: Node, path: str, body: Any, ip: str
) -> tuple[int, dict[str, str], Any]:
    """POST BODY as JSON claiming client address IP (the node must trust_proxy)."""
    async with http.post(node.url + path, json=body, headers={"X-Forwarded-For": ip}) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


def parts(node: Node) -> NodeParts:
    assert node.app is not None
    return node.app[NODE]


def local_usernames(node: Node) -> list[str]:
    return sorted(u.username for u in parts(node).accounts.users.list_local())
