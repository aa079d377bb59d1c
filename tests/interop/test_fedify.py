"""Interop with an independent implementation: ``@fedify/fedify`` 2.3.6 under Node.

A real Salon node runs in-process on 127.0.0.1; ``fedify/driver.mjs`` runs as a
subprocess (one JSON command in, one JSON result out) and talks to it over loopback:

* fedify **signs** a ``Follow`` (``signRequest``, draft-cavage and RFC 9421) as an actor
  whose document a tiny local server publishes, and POSTs it: our inbox answers 202,
  stores the follow and delivers an ``Accept``;
* fedify **verifies** (``verifyRequestDetailed``) that ``Accept`` POST and the signed GET
  our node made to fetch the actor, exactly as they arrived on the wire, fetching our
  keys from the node itself; a tampered copy must fail;
* fedify **resolves** ``acct:alice@HOST`` (``lookupObject``: WebFinger then the actor)
  and ``lookupWebFinger`` on the actor URL.

RFC 9421 against PyPI ``http-message-signatures`` is covered by
``tests/federation/test_federation_interop.py``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from cli.app import NODE
from federation import keys
from federation.as2 import host_of
from federation.service import FEDERATION
from tests.interop.conftest import Captured, FakeRemote, run_tool
from tests.support.nodes import Node

pytestmark = pytest.mark.timeout(90)


def follow_body(remote: FakeRemote, node: Node, name: str, n: str) -> str:
    return json.dumps(
        {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{remote.base}/activities/follow-{n}",
            "type": "Follow",
            "actor": remote.actor_id(name),
            "object": f"{node.url}/users/alice",
        }
    )


async def fedify_verify(fedify: list[str], captured: Captured) -> dict[str, Any]:
    result: dict[str, Any] = await run_tool(fedify, {"op": "verify", **captured.as_json()})
    return result


@pytest.mark.parametrize("spec", ["draft-cavage-http-signatures-12", "rfc9421"])
async def test_fedify_signs_we_accept_and_fedify_verifies_our_answer(
    fedify: list[str], salon: Node, remote: FakeRemote, spec: str
) -> None:
    actor_keys = remote.add("fedi")
    body = follow_body(remote, salon, "fedi", spec)
    sent = await run_tool(
        fedify,
        {
            "op": "sign-and-send",
            "url": f"{salon.url}/users/alice/inbox",
            "body": body,
            "keyId": keys.rsa_key_id(remote.actor_id("fedi")),
            "privateKeyPem": actor_keys.rsa_private_pem,
            "spec": spec,
        },
    )
    if spec == "rfc9421":
        assert "signature-input" in sent["headers"], sent["headers"]
    else:
        assert "signature-input" not in sent["headers"] and "digest" in sent["headers"]
    assert sent["status"] == 202, sent
    assert salon.app is not None
    store = salon.app[FEDERATION]
    assert store.count("follows") == 1 and store.count("seen_activities") == 1

    # Our answer: an Accept POSTed by the delivery worker, signed with alice's key.
    accept = await remote.wait_post("Accept")
    assert json.loads(accept.body)["object"]["id"] == json.loads(body)["id"]
    verified = await fedify_verify(fedify, accept)
    assert verified == {
        "verified": True,
        "keyId": f"{salon.url}/users/alice#main-key",
        "owner": f"{salon.url}/users/alice",
    }

    # The signed GET our node made to fetch fedi's actor document (node actor's key).
    fetches = [g for g in remote.gets() if g.url == remote.actor_id("fedi")]
    assert fetches, remote.requests
    verified = await fedify_verify(fedify, fetches[0])
    assert verified == {
        "verified": True,
        "keyId": f"{salon.url}/actor#main-key",
        "owner": f"{salon.url}/actor",
    }

    # Not vacuous: a body changed after signing fails fedify's check.
    tampered = Captured(accept.method, accept.url, accept.headers, accept.body + b" ")
    assert (await fedify_verify(fedify, tampered))["verified"] is False


async def test_fedify_signature_by_a_key_the_actor_does_not_list_is_refused(
    fedify: list[str], salon: Node, remote: FakeRemote
) -> None:
    remote.add("fedi")
    stranger = keys.ActorKeys.generate()
    sent = await run_tool(
        fedify,
        {
            "op": "sign-and-send",
            "url": f"{salon.url}/inbox",
            "body": follow_body(remote, salon, "fedi", "forged"),
            "keyId": keys.rsa_key_id(remote.actor_id("fedi")),
            "privateKeyPem": stranger.rsa_private_pem,
            "spec": "draft-cavage-http-signatures-12",
        },
    )
    assert sent["status"] == 401, sent
    assert salon.app is not None
    assert salon.app[FEDERATION].count("follows") == 0


async def test_fedify_resolves_webfinger_and_actor(fedify: list[str], salon: Node) -> None:
    host = host_of(salon.url)
    actor = f"{salon.url}/users/alice"
    found = await run_tool(
        fedify,
        {
            "op": "lookup",
            "identifier": f"@alice@{host}",
            "webfinger": actor,
            # fedify resolves acct: over https; the test node speaks plain http.
            "httpsToHttp": [host],
        },
    )
    assert found["webfinger"]["subject"] == f"acct:alice@{host}"
    assert {"rel": "self", "type": "application/activity+json", "href": actor} in found[
        "webfinger"
    ]["links"]
    assert found["found"] is True
    assert found["type"] == "Person"
    assert found["id"] == actor
    assert found["preferredUsername"] == "alice"
    assert found["inbox"] == f"{actor}/inbox"
    assert found["sharedInbox"] == f"{salon.url}/inbox"
    assert found["followers"] == f"{actor}/followers"
    assert found["publicKeyId"] == f"{actor}#main-key"
    assert found["publicKeyOwner"] == actor
    assert found["assertionMethods"] == [{"id": f"{actor}#ed25519-key", "controller": actor}]


def test_driver_payload_is_base64() -> None:
    """The driver decodes bodies as base64 (binary-safe); keep the contract visible."""
    captured = Captured("POST", "http://127.0.0.1/inbox", [], b"\x00{}")
    assert base64.b64decode(captured.as_json()["body"]) == b"\x00{}"


async def fedify_post(
    fedify: list[str], url: str, body: str, remote: FakeRemote, name: str
) -> dict[str, Any]:
    """BODY signed by fedify (draft-cavage) as the remote actor NAME and POSTed to URL."""
    sent: dict[str, Any] = await run_tool(
        fedify,
        {
            "op": "sign-and-send",
            "url": url,
            "body": body,
            "keyId": keys.rsa_key_id(remote.actor_id(name)),
            "privateKeyPem": remote.keys[name].rsa_private_pem,
            "spec": "draft-cavage-http-signatures-12",
        },
    )
    return sent


async def test_flags_both_ways_with_fedify(
    fedify: list[str], salon: Node, remote: FakeRemote
) -> None:
    """A Mastodon-shaped ``Flag`` signed by fedify lands on the desk; our forwarded ``Flag``
    verifies with fedify and parses as a ``Flag`` naming the reported actor."""
    remote.add("mod")
    flag = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.base}/0f1e2d3c",
        "type": "Flag",
        "actor": remote.actor_id("mod"),
        "content": "Spam in every room",
        "object": [f"{salon.url}/users/alice"],
    }
    sent = await fedify_post(fedify, f"{salon.url}/inbox", json.dumps(flag), remote, "mod")
    assert sent["status"] == 202, sent
    assert salon.app is not None
    desk = salon.app[NODE].desk
    [report] = desk.reports(None)
    assert report["remote"] is True and report["reporter"] is None
    assert report["target_user"] == "alice" and report["comment"] == "Spam in every room"

    # fedi becomes known here (a signed Follow), then alice reports and forwards
    remote.add("fedi")
    body = follow_body(remote, salon, "fedi", "flag")
    sent = await fedify_post(fedify, f"{salon.url}/inbox", body, remote, "fedi")
    assert sent["status"] == 202, sent
    alice = salon.users[0]
    status, body = await alice.call(
        "POST",
        "/api/reports",
        {
            "target": f"fedi@{host_of(remote.base)}",
            "category": "spam",
            "comment": "ads",
            "forward": True,
        },
    )
    assert status == 201 and body["report"]["forwarded"] is True, body
    posted = await remote.wait_post("Flag")
    assert await fedify_verify(fedify, posted) == {
        "verified": True,
        "keyId": f"{salon.url}/actor#main-key",
        "owner": f"{salon.url}/actor",
    }
    parsed = await run_tool(fedify, {"op": "parse", "body": posted.body.decode()})
    assert parsed["type"] == "Flag" and parsed["actor"] == f"{salon.url}/actor"
    assert parsed["objects"] == [remote.actor_id("fedi")] and parsed["content"] == "ads"
    assert "alice" not in posted.body.decode()
