"""Pieces of the small ActivityPub servers tests run on loopback as "another node".

Each test folder's fake server records different things (what arrived, every request,
key rotations); what they share — the address, actor documents for keys the test holds,
and signed POST headers — is written once here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from federation import keys
from federation.activities import Actor, ActorPublicKey, Multikey
from federation.as2 import host_of
from federation.signatures import HttpRequest, sign_cavage
from tests.support.nodes import Node

AS2 = "application/activity+json"


class LoopbackActors:
    """A server on 127.0.0.1 whose actors live at ``/users/{name}``."""

    def __init__(self, app: web.Application) -> None:
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def host(self) -> str:
        return host_of(self.base)

    def actor_id(self, name: str) -> str:
        return f"{self.base}/users/{name}"

    def document(
        self,
        name: str,
        actor_keys: keys.ActorKeys,
        *,
        display_name: str | None = None,
        multikey: bool = False,
    ) -> dict[str, Any]:
        """NAME's actor document listing ACTOR_KEYS (RSA, and Ed25519 with MULTIKEY)."""
        actor_id = self.actor_id(name)
        return Actor(
            id=actor_id,
            inbox=f"{actor_id}/inbox",
            shared_inbox=f"{self.base}/inbox",
            preferred_username=name,
            name=display_name,
            public_keys=(
                ActorPublicKey(keys.rsa_key_id(actor_id), actor_id, actor_keys.rsa_public_pem),
            ),
            assertion_methods=(
                Multikey(
                    keys.ed25519_key_id(actor_id), actor_id, actor_keys.ed25519_public_multibase
                ),
            )
            if multikey
            else (),
        ).serialize()

    def signed_post_headers(
        self,
        url: str,
        body: bytes,
        signer: str,
        actor_keys: keys.ActorKeys,
        now: datetime | None = None,
    ) -> dict[str, str]:
        """Headers of a POST of BODY to URL signed (draft-cavage) by SIGNER's RSA key."""
        request = HttpRequest("POST", url, {"Content-Type": AS2}, body)
        headers = {"Content-Type": AS2}
        headers.update(
            sign_cavage(
                request,
                key_id=keys.rsa_key_id(self.actor_id(signer)),
                private_key=actor_keys.rsa_private_key,
                now=now or datetime.now(UTC),
            )
        )
        return headers


def as2_response(document: dict[str, Any]) -> web.Response:
    return web.json_response(document, content_type=AS2)


class FakeRemote(LoopbackActors):
    """A tiny ActivityPub server: actors with keys, an inbox that records what it gets."""

    def __init__(self) -> None:
        self.keys = {name: keys.ActorKeys.generate() for name in ("mallory", "eve")}
        self.received: list[dict[str, Any]] = []
        self.documents: dict[str, dict[str, Any]] = {}
        app = web.Application()
        app.router.add_get("/users/{name}", self.actor)
        app.router.add_get("/objects/{name}", self.obj)
        app.router.add_post("/inbox", self.inbox)
        app.router.add_post("/users/{name}/inbox", self.inbox)
        super().__init__(app)

    async def actor(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return as2_response(self.document(name, self.keys[name]))

    async def obj(self, request: web.Request) -> web.Response:
        return web.json_response(self.documents[request.match_info["name"]])

    async def inbox(self, request: web.Request) -> web.Response:
        self.received.append(json.loads(await request.read()))
        return web.Response(status=202)

    def sign(
        self, url: str, body: bytes, signer: str = "mallory", now: datetime | None = None
    ) -> dict[str, str]:
        return self.signed_post_headers(url, body, signer, self.keys[signer], now)


async def post(node: Node, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{node.url}/inbox", data=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


def follow(remote: FakeRemote, node: Node, n: int = 1, actor: str = "mallory") -> bytes:
    return json.dumps(
        {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{remote.base}/activities/follow-{n}",
            "type": "Follow",
            "actor": remote.actor_id(actor),
            "object": f"{node.url}/users/alice",
        }
    ).encode()
