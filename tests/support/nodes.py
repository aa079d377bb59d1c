"""Real nodes built by the composition root, and real HTTP clients signed in to them."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from cli.app import build_app
from node.clock import Clock
from node.settings import Settings, load_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    # Every test client signs up from 127.0.0.1, so the per-address sign-up limit is off
    # unless a test sets it (tests/security/test_security_signup.py does).
    overrides.setdefault("signup_per_ip_per_hour", 0)
    # parallel nodes never share a media port: each binds free ones (engine.port tells which)
    overrides.setdefault("media_port", 0)
    overrides.setdefault("media_tcp_port", 0)
    base = load_settings(data_dir, environ={})
    return dataclasses.replace(base, **overrides)


class ApiUser:
    """A signed-in client with its own cookie jar, sending the CSRF token like a browser."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.username = ""

    async def signup(self, username: str, password: str = "password123") -> ApiUser:
        status, body = await self.call(
            "POST", "/api/auth/signup", {"username": username, "password": password}
        )
        assert status == 201, body
        self.csrf = body["csrf_token"]
        self.username = username
        return self

    async def signin(self, username: str, password: str = "password123") -> tuple[int, Any]:
        status, body = await self.call(
            "POST", "/api/auth/signin", {"username": username, "password": password}
        )
        if status == 200:
            self.csrf = body["csrf_token"]
            self.username = username
        return status, body

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if self.csrf else {}
        headers.update(kw.pop("headers", {}))
        async with self.http.request(
            method, self.base + path, json=body, headers=headers, **kw
        ) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()

    async def ws(self, room_id: str) -> aiohttp.ClientWebSocketResponse:
        return await self.http.ws_connect(f"{self.base}/api/rooms/{room_id}/ws")

    async def close(self) -> None:
        await self.http.close()


class Node:
    """One running node on `settings.host` (127.0.0.1 unless a test says otherwise), free port."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.server: TestServer | None = None
        self.app: web.Application | None = None
        self.users: list[ApiUser] = []

    async def start(self) -> Node:
        self.app = build_app(self.settings, self.clock)
        self.server = TestServer(self.app, host=self.settings.host, port=self.settings.port or None)
        await self.server.start_server()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def user(self, name: str | None = None) -> ApiUser:
        client = ApiUser(self.url)
        self.users.append(client)
        if name:
            await client.signup(name)
        return client

    async def stop(self) -> None:
        for u in self.users:
            await u.close()
        self.users.clear()
        if self.server is not None:
            await self.server.close()
            self.server = None


NodeFactory = Callable[..., Awaitable[Node]]
