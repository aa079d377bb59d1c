"""Many signed-in room clients, cheaply: accounts written into a node's data directory
before it starts (a minimal password hash, one bearer token each), and bare WebSocket
clients that count what they receive. Used by the large-audience and flood tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import nacl.pwhash

PASSWORD = "crowd-password-123"


def prepare_accounts(
    data_dir: Path, names: list[str], first_is_admin: bool = False
) -> dict[str, str]:
    """Create NAMES in the node's database (before the node starts); name -> bearer token.
    The benches (bench/events.py, bench/storm.py) seed their crowds with this too."""
    from node.auth import new_token, token_hash
    from node.datadir import ensure_data_dir
    from node.store.db import open_database
    from node.store.users import SessionStore, UserStore

    ensure_data_dir(data_dir)
    db = open_database(data_dir / "salon.db")
    argon = nacl.pwhash.argon2id
    hashed = argon.str(
        PASSWORD.encode(), opslimit=argon.OPSLIMIT_MIN, memlimit=argon.MEMLIMIT_MIN
    ).decode("ascii")
    users, sessions = UserStore(db), SessionStore(db)
    tokens: dict[str, str] = {}
    now = time.time()
    for i, name in enumerate(names):
        user = users.create(name, hashed, now, is_admin=first_is_admin and i == 0)
        token = new_token()
        sessions.create(token_hash(token), user.id, "bearer", new_token(), now, None)
        tokens[name] = token
    db.close()
    return tokens


class Bot:
    """One room socket with a bearer token; records every message it receives."""

    def __init__(self, http: aiohttp.ClientSession, base: str, name: str, token: str) -> None:
        self.http, self.base, self.name = http, base.rstrip("/"), name
        self.headers = {"Authorization": f"Bearer {token}"}
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.got: list[dict[str, Any]] = []
        self.state: asyncio.Future[dict[str, Any]] | None = None
        self.closed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._next_id = 0

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(
            method, self.base + path, json=body, headers=self.headers
        ) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, data

    async def connect(self, room_id: str) -> dict[str, Any]:
        """Open the room socket; returns the first (state) message."""
        self.state = asyncio.get_running_loop().create_future()
        self.ws = await self.http.ws_connect(
            f"{self.base}/api/rooms/{room_id}/ws", headers=self.headers, heartbeat=None
        )
        self._reader = asyncio.create_task(self._read())
        return await asyncio.wait_for(self.state, 30)

    async def _read(self) -> None:
        assert self.ws is not None and self.state is not None
        try:
            async for msg in self.ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if not self.state.done():
                    self.state.set_result(data)
                    continue
                self.got.append(data)
        finally:
            self.closed.set()

    async def send(self, **message: Any) -> int:
        assert self.ws is not None
        self._next_id += 1
        await self.ws.send_json({**message, "id": self._next_id})
        return self._next_id

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [str(m.get("event") or m.get("type")) for m in messages]
