"""Pieces of the small ActivityPub servers tests run on loopback as "another node".

Each test folder's fake server records different things (what arrived, every request,
key rotations); what they share — the address, actor documents for keys the test holds,
and signed POST headers — is written once here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from federation import keys
from federation.activities import Actor, ActorPublicKey, Multikey, host_of
from federation.signatures import HttpRequest, sign_cavage

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
