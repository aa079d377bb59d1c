"""The inbox against a fake remote server on loopback: every rejection path answers the
expected status and stores nothing; the happy path stores and answers with an Accept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from federation import keys
from federation.fetch import FetchError, GuardedResolver, SafeClient, UnsafeAddress, make_session
from federation.service import FEDERATION
from federation.signatures import HttpRequest, sign_cavage
from node.clock import SystemClock
from tests.support.federation import FixedResolver
from tests.support.nodes import Node, NodeFactory
from tests.support.remote import FakeRemote, follow, post

TABLES = ("remote_actors", "follow_activities", "seen_activities", "remote_rooms", "follows")


def counts(node: Node) -> dict[str, int]:
    assert node.app is not None
    store = node.app[FEDERATION]
    return {table: store.count(table) for table in TABLES}


@pytest.fixture
async def node_a(node_factory: NodeFactory) -> Node:
    node = await node_factory("a", testnet=True, delivery_poll_seconds=0.05)
    await (await node.user()).signup("alice")
    return node


async def test_follow_is_stored_and_accepted(node_a: Node, remote: FakeRemote) -> None:
    import asyncio

    body = follow(remote, node_a)
    status, answer = await post(node_a, body, remote.sign(f"{node_a.url}/inbox", body))
    assert status == 202, answer
    after = counts(node_a)
    assert after["follows"] == 1 and after["seen_activities"] == 1
    for _ in range(100):
        if remote.received:
            break
        await asyncio.sleep(0.05)
    accept = remote.received[0]
    assert accept["type"] == "Accept" and accept["object"]["id"] == json.loads(body)["id"]
    assert accept["id"].startswith(node_a.url + "/")
    # replay: same activity id again is accepted and ignored
    status, answer = await post(node_a, body, remote.sign(f"{node_a.url}/inbox", body))
    assert status == 202 and "duplicate" in answer["status"]
    assert counts(node_a) == after


async def test_rejections_store_nothing(node_a: Node, remote: FakeRemote) -> None:
    url = f"{node_a.url}/inbox"
    empty = counts(node_a)
    body = follow(remote, node_a)

    # unsigned
    status, _ = await post(node_a, body, {"Content-Type": "application/activity+json"})
    assert status == 401
    # signature by a key that does not match (eve's key, claiming mallory's key id)
    bad = remote.sign(url, body, signer="eve")
    bad["Signature"] = bad["Signature"].replace("/users/eve#", "/users/mallory#")
    assert (await post(node_a, body, bad))[0] == 401
    # tampered body after signing
    signed = remote.sign(url, body)
    assert (await post(node_a, body.replace(b"alice", b"alicf"), signed))[0] == 401
    # wrong key owner: eve's activity signed with mallory's (valid) key
    eve_body = follow(remote, node_a, 2, actor="eve")
    assert (await post(node_a, eve_body, remote.sign(url, eve_body)))[0] == 401
    # stale Date
    old = remote.sign(url, body, now=datetime.now(UTC) - timedelta(hours=2))
    assert (await post(node_a, body, old))[0] == 401
    # malformed JSON and a malformed activity
    assert (await post(node_a, b"{not json", remote.sign(url, b"{not json")))[0] == 400
    broken = json.dumps({"type": "Follow", "actor": remote.actor_id("mallory")}).encode()
    assert (await post(node_a, broken, remote.sign(url, broken)))[0] == 400
    # unknown type: accepted and ignored
    like = json.dumps(
        {
            "id": f"{remote.base}/likes/1",
            "type": "Like",
            "actor": remote.actor_id("mallory"),
            "object": f"{node_a.url}/users/alice",
        }
    ).encode()
    assert (await post(node_a, like, remote.sign(url, like)))[0] == 202
    # over the 1 MB cap
    huge = b'{"pad": "' + b"x" * 1_100_000 + b'"}'
    assert (await post(node_a, huge, remote.sign(url, huge)))[0] == 413
    assert counts(node_a) == empty


async def test_object_must_live_on_actor_host(node_a: Node, remote: FakeRemote) -> None:
    url = f"{node_a.url}/inbox"
    body = follow(remote, node_a)
    await post(node_a, body, remote.sign(url, body))
    before = counts(node_a)
    event = {
        "id": "http://127.0.0.1:9/rooms/forged",  # another host, unreachable
        "type": "Event",
        "name": "Forged",
        "attributedTo": remote.actor_id("mallory"),
        "status": "live",
    }
    create = json.dumps(
        {
            "id": f"{remote.base}/activities/c1",
            "type": "Create",
            "actor": remote.actor_id("mallory"),
            "object": event,
        }
    ).encode()
    status, _ = await post(node_a, create, remote.sign(url, create))
    assert status == 400
    # attributed to someone else, on the right host
    event.update(id=f"{remote.base}/rooms/r1", attributedTo=remote.actor_id("eve"))
    create = json.dumps(
        {
            "id": f"{remote.base}/activities/c2",
            "type": "Create",
            "actor": remote.actor_id("mallory"),
            "object": event,
        }
    ).encode()
    assert (await post(node_a, create, remote.sign(url, create)))[0] == 400
    assert counts(node_a) == before


async def test_suspended_domain_is_refused(node_a: Node, remote: FakeRemote) -> None:
    assert node_a.app is not None
    node_a.app[FEDERATION].policies.set_policy("127.0.0.1", "suspend", 0.0)
    body = follow(remote, node_a)
    status, _ = await post(node_a, body, remote.sign(f"{node_a.url}/inbox", body))
    assert status == 403
    assert counts(node_a)["follows"] == 0


async def test_authorized_fetch(node_factory: NodeFactory, remote: FakeRemote) -> None:
    node = await node_factory("af", testnet=True, authorized_fetch=True)
    await (await node.user()).signup("alice")
    accept = {"Accept": "application/activity+json"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.url}/users/alice", headers=accept) as resp:
            assert resp.status == 401
        url = f"{node.url}/users/alice"
        request = HttpRequest("GET", url, accept)
        signed = sign_cavage(
            request,
            key_id=keys.rsa_key_id(remote.actor_id("mallory")),
            private_key=remote.keys["mallory"].rsa_private_key,
            now=datetime.now(UTC),
        )
        async with http.get(url, headers={**accept, **signed}) as resp:
            assert resp.status == 200
        async with http.get(f"{node.url}/actor", headers=accept) as resp:
            assert resp.status == 200  # the node actor stays public


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fd00::1"])
async def test_guarded_resolver_refuses_special_addresses(address: str) -> None:
    with pytest.raises(OSError, match="no public address"):
        await GuardedResolver(FixedResolver(address)).resolve("evil.example", 80)
    assert await GuardedResolver(FixedResolver("93.184.215.14")).resolve("ok.example", 80)


async def test_ssrf_guard_without_testnet(remote: FakeRemote) -> None:
    session = make_session(testnet=False)
    client = SafeClient(session, SystemClock(), testnet=False)
    try:
        with pytest.raises(UnsafeAddress):
            await client.get_json(remote.actor_id("mallory"))
        with pytest.raises(UnsafeAddress):
            await client.get_json("file:///etc/passwd")
        port = remote.base.rsplit(":", 1)[1]
        with pytest.raises(FetchError):  # a name resolving to loopback: refused at connect
            client.check_url(f"http://localhost:{port}/")
            await client.get_json(f"http://localhost:{port}/users/mallory")
    finally:
        await session.close()
    testnet = make_session(testnet=True)
    try:
        doc = await SafeClient(testnet, SystemClock(), testnet=True).get_json(
            remote.actor_id("mallory")
        )
        assert doc["id"] == remote.actor_id("mallory")
    finally:
        await testnet.close()
