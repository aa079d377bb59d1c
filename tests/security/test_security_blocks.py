"""A hostile node against blocks: Blocks from suspended domains or naming what is not
ours store nothing, a Block signed by someone else is refused, an Undo cannot lift
another's block, odd names, and blocks and unblocks racing each other."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from federation.as2 import host_of
from tests.security.fake_actor_server import FakeActorServer
from tests.support.attacks import parts
from tests.support.network import FAST, acct
from tests.support.nodes import Node, NodeFactory

_ids = itertools.count()


def activity(remote: FakeActorServer, kind: str, actor_id: str, target: str) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.url}/activities/{kind.lower()}-{next(_ids)}",
        "type": kind,
        "actor": actor_id,
        "object": target,
    }


def block(remote: FakeActorServer, actor_id: str, target: str) -> dict[str, Any]:
    return activity(remote, "Block", actor_id, target)


def undo(remote: FakeActorServer, actor_id: str, inner: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.url}/activities/undo-{next(_ids)}",
        "type": "Undo",
        "actor": actor_id,
        "object": {k: v for k, v in inner.items() if k != "@context"},
    }


def count(node: Node, table: str) -> int:
    row = parts(node).db.one(f"SELECT count(*) FROM {table}")
    assert row is not None
    return int(row[0])


async def test_blocks_from_suspended_domains_or_of_others_store_nothing(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a = await node_factory("a", **FAST)
    await a.user("alice")
    mallory = remote.actor("mallory")
    key = f"{mallory}#main-key"
    users = count(a, "users")
    not_ours = [
        f"{remote.url}/users/someone",  # another host's actor
        f"{a.url}/users/nobody",  # no such user here
        f"{a.url}/rooms/abc",  # not a user at all
        f"{a.url}/users/alice/followers",
    ]
    for target in not_ours:
        status, text = await remote.post(
            f"{a.url}/inbox", block(remote, mallory, target), key_id=key
        )
        assert status == 202, text
    assert count(a, "blocks") == 0 and count(a, "users") == users
    parts(a).federation.policies.set_policy(host_of(remote.url), "suspend", 0.0)
    status, text = await remote.post(
        f"{a.url}/inbox", block(remote, mallory, f"{a.url}/users/alice"), key_id=key
    )
    assert status == 202, text
    assert count(a, "blocks") == 0 and count(a, "users") == users


async def test_a_block_signed_by_someone_else_is_refused(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a = await node_factory("a", **FAST)
    await a.user("alice")
    mallory, eve = remote.actor("mallory"), remote.actor("eve")
    forged = block(remote, eve, f"{a.url}/users/alice")
    status, _ = await remote.post(f"{a.url}/inbox", forged, key_id=f"{mallory}#main-key")
    assert status == 401
    assert count(a, "blocks") == 0
    # eve's real block, then mallory's Undo of it: refused, the block stays
    real = block(remote, eve, f"{a.url}/users/alice")
    status, _ = await remote.post(f"{a.url}/inbox", real, key_id=f"{eve}#main-key")
    assert status == 202 and count(a, "blocks") == 1
    own = block(remote, mallory, f"{a.url}/users/alice")
    status, _ = await remote.post(f"{a.url}/inbox", own, key_id=f"{mallory}#main-key")
    assert status == 202 and count(a, "blocks") == 2
    lifted = undo(remote, mallory, real)
    status, _ = await remote.post(f"{a.url}/inbox", lifted, key_id=f"{mallory}#main-key")
    assert status == 400
    by_id = undo(remote, mallory, {"id": real["id"]})
    by_id["object"] = real["id"]
    status, _ = await remote.post(f"{a.url}/inbox", by_id, key_id=f"{mallory}#main-key")
    assert status == 400
    assert count(a, "blocks") == 2
    status, _ = await remote.post(
        f"{a.url}/inbox", undo(remote, eve, real), key_id=f"{eve}#main-key"
    )
    assert status == 202 and count(a, "blocks") == 1


async def test_blocks_from_oddly_named_actors(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a = await node_factory("a", **FAST)
    alice = await a.user("alice")
    for name in ("ma\u202ellory", "e\u0301ve", "\u0000x", "z" * 300):
        actor = remote.actor(f"odd{next(_ids)}", preferredUsername=name)
        status, text = await remote.post(
            f"{a.url}/inbox",
            block(remote, actor, f"{a.url}/users/alice"),
            key_id=f"{actor}#main-key",
        )
        assert status in (202, 400), text
    # alice's node still answers her, and the names she may block stay the same ones
    status, body = await alice.call("GET", "/api/me/blocks")
    assert status == 200 and body["items"] == []
    for odd in ("ma\u202ellory@" + host_of(remote.url), "alice\u0301", "\ufeffalice"):
        status, _ = await alice.call("POST", f"/api/users/{odd}/block")
        assert status in (400, 404, 502)
    assert (await alice.call("GET", "/api/me/blocks"))[1]["items"] == []


async def test_concurrent_blocks_and_unblocks_stay_consistent(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice, bob = await a.user("alice"), await b.user("bob")
    target = acct(bob, b)
    assert (await alice.call("POST", f"/api/users/{target}/block"))[0] == 200
    assert (await alice.call("DELETE", f"/api/users/{target}/block"))[0] == 200
    calls = [("POST" if i % 2 else "DELETE", f"/api/users/{target}/block") for i in range(40)]
    answers = await asyncio.gather(*(alice.call(method, path) for method, path in calls))
    assert {status for status, _ in answers} == {200}
    blocked = sum(
        1
        for (m, _), (_, body) in zip(calls, answers, strict=True)
        if m == "POST" and body["changed"]
    )
    unblocked = sum(
        1
        for (m, _), (_, body) in zip(calls, answers, strict=True)
        if m == "DELETE" and body["changed"]
    )
    assert blocked - unblocked in (0, 1)
    _, profile = await alice.call("GET", f"/api/users/{target}")
    assert profile["blocked_by_you"] is (blocked - unblocked == 1)
    assert count(a, "blocks") == blocked - unblocked
    sent = parts(a).db.all("SELECT document FROM outbox_activities")
    kinds = [doc["document"] for doc in sent]
    assert sum('"type": "Block"' in k and '"Undo"' not in k for k in kinds) == blocked + 1
    assert sum('"type": "Undo"' in k and '"Block"' in k for k in kinds) == unblocked + 1


async def test_a_remote_follow_of_a_blocker_is_refused(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a = await node_factory("a", **FAST)
    alice = await a.user("alice")
    mallory = remote.actor("mallory")
    first = activity(remote, "Follow", mallory, f"{a.url}/users/alice")
    status, _ = await remote.post(f"{a.url}/inbox", first, key_id=f"{mallory}#main-key")
    assert status == 202 and count(a, "follows") == 1
    status, body = await alice.call("POST", f"/api/users/mallory@{host_of(remote.url)}/block")
    assert status == 200 and body["changed"] is True, body
    assert count(a, "follows") == 0
    again = {**first, "id": f"{remote.url}/activities/follow-{next(_ids)}"}
    status, text = await remote.post(f"{a.url}/inbox", again, key_id=f"{mallory}#main-key")
    assert status == 202 and "refused" in text
    assert count(a, "follows") == 0
