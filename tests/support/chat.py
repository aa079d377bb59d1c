"""A room WebSocket that keeps everything it receives, for chat and reaction tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

import aiohttp
from nacl.public import PrivateKey

from federation.service import FEDERATION
from tests.support.network import eventually
from tests.support.nodes import Node

Check = Callable[[dict[str, Any]], bool]
_ids = itertools.count(1)


class RoomSocket:
    """Reads the socket in the background; ``seen`` holds every message in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, url: str) -> RoomSocket:
        sock = cls(await http.ws_connect(url))
        await sock.wait_for(lambda m: m.get("type") == "state")
        return sock

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.seen.append(msg.json())

    @property
    def state(self) -> dict[str, Any]:
        return next(m["room"] for m in self.seen if m.get("type") == "state")

    async def wait_for(self, check: Check, timeout: float = 20.0) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            return next((m for m in self.seen if check(m)), None)

        result: dict[str, Any] = await eventually(found, timeout)
        return result

    async def request(self, message: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
        """Send MESSAGE with a fresh id; its ``reply`` or ``error``."""
        msg_id = next(_ids)
        await self.ws.send_json({**message, "id": msg_id})
        return await self.wait_for(
            lambda m: m.get("type") in ("reply", "error") and m.get("id") == msg_id, timeout
        )

    def chats(self) -> list[dict[str, Any]]:
        """Chat messages received and not deleted since, in order."""
        deleted = {i for m in self.seen if m.get("type") == "chat_deleted" for i in m["ids"]}
        return [
            m["message"]
            for m in self.seen
            if m.get("type") == "chat" and m["message"]["id"] not in deleted
        ]

    def texts(self) -> list[str]:
        return [m["text"] for m in self.chats()]

    def reactions(self) -> dict[str, set[str]]:
        """Who reacted with what, over every ``reactions`` message received."""
        out: dict[str, set[str]] = {}
        for m in self.seen:
            if m.get("type") == "reactions":
                for who, kinds in m["reactions"].items():
                    out.setdefault(who, set()).update(kinds)
        return out

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class HostileTrunk:
    """Node B's actor on A's trunk endpoint, saying whatever a hostile node would."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, b: Node, room_url: str) -> HostileTrunk:
        assert b.app is not None
        fed = b.app[FEDERATION]
        url = f"{room_url}/trunk"
        ws = await fed.client.session.ws_connect(
            url, headers=fed.client.signed_get_headers(url, fed.signers.node)
        )
        key = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
        await ws.send_json({"type": "hello", "key": key})
        media = await ws.receive_json(timeout=10)
        assert media["type"] == "media", media
        return cls(ws)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send MESSAGE with a fresh id; the answer with that id (events are skipped)."""
        msg_id = next(_ids)
        await self.ws.send_json({**message, "id": msg_id})
        while True:
            answer: dict[str, Any] = await self.ws.receive_json(timeout=10)
            if answer.get("id") == msg_id:
                return answer

    async def seat(self, streams: dict[str, int]) -> list[str]:
        """Announce B's users; the ones A refused (``seats.missing``)."""
        await self.ws.send_json({"type": "users", "streams": streams})
        while True:
            answer = await self.ws.receive_json(timeout=10)
            if answer.get("type") == "seats":
                return list(answer["missing"])

    async def close(self) -> None:
        await self.ws.close()
