"""A hostile fediverse server for attack tests: a small aiohttp app on 127.0.0.1 that serves
whatever actor documents the test puts in it and signs inbox POSTs with its own keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from federation import keys
from federation.activities import Actor, ActorPublicKey
from federation.signatures import HttpRequest, sign_cavage


class FakeActorServer:
    """Serves ``/users/{name}`` from ``documents``; counts the GETs it answers."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.hits = 0
        self.key = keys.generate_rsa_private_key()
        self.app = web.Application()
        self.app.router.add_get("/users/{name}", self._actor)
        self.rooms: dict[str, dict[str, Any]] = {}  # documents served at /rooms/{id}
        self.app.router.add_get("/rooms/{id}", self._room)
        self.server = TestServer(self.app, host="127.0.0.1")
        self.http = aiohttp.ClientSession()

    async def start(self) -> FakeActorServer:
        await self.server.start_server()
        return self

    async def close(self) -> None:
        await self.http.close()
        await self.server.close()

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def _actor(self, request: web.Request) -> web.Response:
        self.hits += 1
        document = self.documents.get(request.match_info["name"])
        if document is None:
            raise web.HTTPNotFound()
        return web.json_response(document, content_type="application/activity+json")

    async def _room(self, request: web.Request) -> web.Response:
        document = self.rooms.get(request.match_info["id"])
        if document is None:
            raise web.HTTPNotFound()
        return web.json_response(document, content_type="application/activity+json")

    def actor(self, path_name: str, /, **fields: Any) -> str:
        """Publish an actor at /users/PATH_NAME signing with this server's key; FIELDS
        replace document fields (``preferredUsername``, ``name``, or padding). Its id."""
        actor_id = f"{self.url}/users/{path_name}"
        pem = keys.public_key_to_pem(self.key.public_key())
        document = Actor(
            id=actor_id,
            inbox=f"{actor_id}/inbox",
            preferred_username=path_name,
            public_keys=(ActorPublicKey(keys.rsa_key_id(actor_id), actor_id, pem),),
        ).serialize()
        document.update(fields)
        self.documents[path_name] = document
        return actor_id

    async def post(
        self,
        url: str,
        activity: dict[str, Any],
        *,
        key_id: str,
        signed_url: str | None = None,
        private_key: keys.PrivateKey | None = None,
    ) -> tuple[int, str]:
        """POST ACTIVITY to URL signed as KEY_ID; SIGNED_URL signs for another address
        (its Host is sent as it was signed: a signature captured elsewhere, replayed)."""
        body = json.dumps(activity).encode()
        request = HttpRequest(
            "POST", signed_url or url, {"Content-Type": "application/activity+json"}, body
        )
        headers = dict(request.headers)
        headers.update(
            sign_cavage(
                request,
                key_id=key_id,
                private_key=private_key or self.key,
                now=datetime.now(UTC),
            )
        )
        async with self.http.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.text()
