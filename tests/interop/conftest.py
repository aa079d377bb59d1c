"""Shared pieces of the interop tests: a tiny remote ActivityPub server on loopback (actor
documents for keys the independent implementation signs with, an inbox and a log of every
request our node makes to it), and the external tools' locations.

The tools are installed by ``scripts/test.sh`` (``npm ci`` in ``tests/interop/fedify``, a
separate venv ``tests/interop/.bovine-venv`` with bovine). Without them the tests skip with
the reason, except under ``CI=true``, where a missing tool is a failure.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from federation import keys
from tests.support.nodes import Node, NodeFactory
from tests.support.remote import LoopbackActors, as2_response

HERE = Path(__file__).resolve().parent
FEDIFY_DIR = HERE / "fedify"
BOVINE_PYTHON = HERE / ".bovine-venv" / "bin" / "python"
FAST = {"testnet": True, "delivery_poll_seconds": 0.05}


def missing_tool(reason: str) -> None:
    """Skip, or fail under CI (where scripts/test.sh must have installed the tool)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI must install it: ./scripts/test.sh)")
    pytest.skip(f"{reason}; ./scripts/test.sh installs it")


@dataclass(frozen=True)
class Captured:
    """One request as it arrived on the wire at the fake server."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "headers": self.headers,
            "body": base64.b64encode(self.body).decode("ascii"),
        }


class FakeRemote(LoopbackActors):
    """Serves ``/users/{name}`` for actors whose private keys the tests hand to the other
    implementation, and records every request (our node's signed GETs and POSTs)."""

    def __init__(self) -> None:
        self.keys: dict[str, keys.ActorKeys] = {}
        self.requests: list[Captured] = []
        app = web.Application()
        app.router.add_get("/users/{name}", self.actor)
        app.router.add_post("/inbox", self.inbox)
        app.router.add_post("/users/{name}/inbox", self.inbox)
        super().__init__(app)

    def add(self, name: str) -> keys.ActorKeys:
        self.keys[name] = keys.ActorKeys.generate()
        return self.keys[name]

    async def _capture(self, request: web.Request) -> bytes:
        body = await request.read()
        url = self.base + request.raw_path
        self.requests.append(Captured(request.method, url, list(request.headers.items()), body))
        return body

    async def actor(self, request: web.Request) -> web.Response:
        await self._capture(request)
        name = request.match_info["name"]
        if name not in self.keys:
            raise web.HTTPNotFound()
        return as2_response(self.document(name, self.keys[name], multikey=True))

    async def inbox(self, request: web.Request) -> web.Response:
        await self._capture(request)
        return web.Response(status=202)

    def posts(self, activity_type: str) -> list[Captured]:
        return [
            r
            for r in self.requests
            if r.method == "POST" and json.loads(r.body).get("type") == activity_type
        ]

    def gets(self) -> list[Captured]:
        return [r for r in self.requests if r.method == "GET"]

    async def wait_post(self, activity_type: str, timeout: float = 10.0) -> Captured:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.posts(activity_type):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no {activity_type} arrived in {timeout} s")
            await asyncio.sleep(0.05)
        return self.posts(activity_type)[0]


@pytest.fixture
async def remote() -> AsyncIterator[FakeRemote]:
    fake = FakeRemote()
    await fake.server.start_server()
    yield fake
    await fake.server.close()


@pytest.fixture
async def salon(node_factory: NodeFactory) -> Node:
    """A real node on 127.0.0.1 (testnet: it may fetch loopback actors) with user alice."""
    node = await node_factory("salon", **FAST)
    await (await node.user()).signup("alice")
    return node


async def run_tool(argv: list[str], payload: dict[str, Any], timeout: float = 60.0) -> Any:
    """Run an external driver without blocking the loop (the node under test runs on it)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(json.dumps(payload).encode("utf-8")), timeout
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    lines = out.decode("utf-8", "replace").strip().splitlines()
    assert lines, f"{argv[0]} printed nothing; stderr:\n{err.decode('utf-8', 'replace')}"
    result = json.loads(lines[-1])
    assert "error" not in result, f"{result['error']}\nstderr:\n{err.decode()}"
    return result


@pytest.fixture(scope="session")
def fedify() -> list[str]:
    """argv prefix running tests/interop/fedify/driver.mjs with Node."""
    node = shutil.which("node")
    if node is None:
        missing_tool("Node.js is not installed")
    if not (FEDIFY_DIR / "node_modules" / "@fedify" / "fedify" / "package.json").exists():
        missing_tool("@fedify/fedify is not installed in tests/interop/fedify/node_modules")
    assert node is not None
    return [node, str(FEDIFY_DIR / "driver.mjs")]


@pytest.fixture(scope="session")
def bovine() -> list[str]:
    """argv prefix running tests/interop/bovine_driver.py in bovine's own venv."""
    if not BOVINE_PYTHON.exists():
        missing_tool("the bovine venv tests/interop/.bovine-venv does not exist")
    return [str(BOVINE_PYTHON), str(HERE / "bovine_driver.py")]
