"""Blocks with an independent implementation: ``@fedify/fedify`` signs a ``Block`` and its
``Undo`` in Mastodon's shape and our inbox honours them; our ``Block`` of a remote actor
verifies with fedify (driver and fake remote: tests/interop/conftest.py)."""

from __future__ import annotations

import json
from itertools import count
from typing import Any

import pytest

from cli.app import NODE
from federation import keys
from federation.as2 import host_of
from tests.interop.conftest import FakeRemote, run_tool
from tests.support.nodes import Node

pytestmark = pytest.mark.timeout(90)

_ids = count()


async def fedify_post(
    fedify: list[str], remote: FakeRemote, salon: Node, doc: dict[str, Any]
) -> int:
    sent = await run_tool(
        fedify,
        {
            "op": "sign-and-send",
            "url": f"{salon.url}/users/alice/inbox",
            "body": json.dumps(doc),
            "keyId": keys.rsa_key_id(remote.actor_id("fedi")),
            "privateKeyPem": remote.keys["fedi"].rsa_private_pem,
            "spec": "draft-cavage-http-signatures-12",
        },
    )
    return int(sent["status"])


def blocks(node: Node) -> int:
    assert node.app is not None
    row = node.app[NODE].db.one("SELECT count(*) FROM blocks")
    return int(row[0]) if row else 0


async def test_fedify_block_and_undo_are_honoured_and_ours_verifies(
    fedify: list[str], salon: Node, remote: FakeRemote
) -> None:
    remote.add("fedi")
    fedi = remote.actor_id("fedi")
    block = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.base}/blocks/{next(_ids)}",
        "type": "Block",
        "actor": fedi,
        "object": f"{salon.url}/users/alice",
    }
    assert await fedify_post(fedify, remote, salon, block) == 202
    assert blocks(salon) == 1
    undo = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.base}/undos/{next(_ids)}",
        "type": "Undo",
        "actor": fedi,
        "object": {k: v for k, v in block.items() if k != "@context"},
    }
    assert await fedify_post(fedify, remote, salon, undo) == 202
    assert blocks(salon) == 0

    # alice blocks fedi: a Block in Mastodon's shape, signed with alice's key
    alice = await salon.user()
    assert (await alice.signin("alice"))[0] == 200
    status, body = await alice.call("POST", f"/api/users/fedi@{host_of(remote.base)}/block")
    assert status == 200 and body["changed"] is True, body
    sent = await remote.wait_post("Block")
    document = json.loads(sent.body)
    assert document["type"] == "Block" and document["actor"] == f"{salon.url}/users/alice"
    assert document["object"] == fedi
    verified = await run_tool(fedify, {"op": "verify", **sent.as_json()})
    assert verified == {
        "verified": True,
        "keyId": f"{salon.url}/users/alice#main-key",
        "owner": f"{salon.url}/users/alice",
    }
    parsed = await run_tool(fedify, {"op": "parse", "body": sent.body.decode()})
    assert parsed["type"] == "Block" and parsed["id"] == document["id"]
    assert parsed["actor"] == f"{salon.url}/users/alice" and parsed["objects"] == [fedi]
    assert (await alice.call("DELETE", f"/api/users/fedi@{host_of(remote.base)}/block"))[0] == 200
    sent = await remote.wait_post("Undo")
    assert json.loads(sent.body)["object"]["id"] == document["id"]
    assert (await run_tool(fedify, {"op": "verify", **sent.as_json()}))["verified"] is True
    parsed = await run_tool(fedify, {"op": "parse", "body": sent.body.decode()})
    assert parsed["type"] == "Undo" and parsed["objects"] == [document["id"]]
