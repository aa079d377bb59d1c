"""Interop with an independent Python implementation: ``bovine`` (in its own venv, because
it pins an older ``cryptography`` than Salon; see ``bovine_driver.py``).

bovine resolves ``acct:alice@HOST`` through our WebFinger to alice's actor, and its HTTP
signature checker verifies, fetching our keys over loopback, the ``Accept`` POST our
delivery worker sent and the signed GET our node made for a remote actor document.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiohttp
import pytest

from federation import keys
from federation.as2 import host_of
from federation.signatures import HttpRequest, sign_cavage
from tests.interop.conftest import Captured, FakeRemote, run_tool
from tests.support.nodes import Node

pytestmark = pytest.mark.timeout(90)


async def test_bovine_resolves_us_and_verifies_our_signatures(
    bovine: list[str], salon: Node, remote: FakeRemote
) -> None:
    actor_keys = remote.add("bov")
    inbox = f"{salon.url}/users/alice/inbox"
    body = json.dumps(
        {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{remote.base}/activities/follow-bovine",
            "type": "Follow",
            "actor": remote.actor_id("bov"),
            "object": f"{salon.url}/users/alice",
        }
    ).encode()
    request = HttpRequest("POST", inbox, {"Content-Type": "application/activity+json"}, body)
    headers = {"Content-Type": "application/activity+json"}
    headers.update(
        sign_cavage(
            request,
            key_id=keys.rsa_key_id(remote.actor_id("bov")),
            private_key=actor_keys.rsa_private_key,
            now=datetime.now(UTC),
        )
    )
    async with aiohttp.ClientSession() as http, http.post(inbox, data=body, headers=headers) as r:
        assert r.status == 202, await r.text()
    accept = await remote.wait_post("Accept")
    fetch = next(g for g in remote.gets() if g.url == remote.actor_id("bov"))
    tampered = Captured(accept.method, accept.url, accept.headers, accept.body + b" ")

    host = host_of(salon.url)
    result = await run_tool(
        bovine,
        {
            "acct": f"acct:alice@{host}",
            "base": salon.url,
            "requests": [accept.as_json(), fetch.as_json(), tampered.as_json()],
        },
    )
    actor = f"{salon.url}/users/alice"
    assert result["actor"] == actor
    assert result["document"]["id"] == actor
    assert result["document"]["publicKey"]["id"] == f"{actor}#main-key"
    assert result["owners"] == [actor, f"{salon.url}/actor", None], result["log"]
