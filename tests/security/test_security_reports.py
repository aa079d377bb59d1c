"""Attacks on reports and the moderation desk: floods, odd comments, hostile ``Flag``s and
people who are not admins."""

from __future__ import annotations

import json
import secrets
from typing import Any

from cli.app import NODE
from federation.as2 import host_of
from federation.service import FEDERATION
from tests.security.fake_actor_server import FakeActorServer
from tests.support.attacks import parts
from tests.support.network import FAST
from tests.support.nodes import Node, NodeFactory


def report_count(node: Node) -> int:
    return parts(node).desk.store.count_reports()


def flag(remote: FakeActorServer, actor: str, objects: list[str], content: str = "") -> Any:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.url}/activities/{secrets.token_hex(6)}",
        "type": "Flag",
        "actor": actor,
        "object": objects,
        "content": content,
    }


async def alice_and_mallory(
    node_factory: NodeFactory, remote: FakeActorServer
) -> tuple[Node, str, str, str]:
    """Node A with alice; mallory on the hostile server: A, mallory's id, key id, alice's id."""
    a = await node_factory("a", **FAST)
    await a.user("alice")
    mallory = remote.actor("mallory")
    return a, mallory, f"{mallory}#main-key", f"{a.url}/users/alice"


async def test_report_flood_is_rate_limited(node_factory: NodeFactory) -> None:
    a = await node_factory("a", reports_per_user_per_hour=3)
    alice = await a.user("alice")
    await a.user("bob")
    answers = []
    for _ in range(6):
        answers.append(
            await alice.call("POST", "/api/reports", {"target": "bob", "category": "spam"})
        )
    assert [s for s, _ in answers] == [201, 201, 201, 429, 429, 429]
    assert "too many reports" in answers[3][1]["error"]
    assert report_count(a) == 3


async def test_huge_and_odd_comments_are_refused(node_factory: NodeFactory) -> None:
    a = await node_factory("a")
    alice = await a.user("alice")
    await a.user("bob")
    bad: list[dict[str, Any]] = [
        {"target": "bob", "category": "spam", "comment": "x" * 1001},
        {"target": "bob", "category": "spam", "comment": "nul\x00byte"},
        {"target": "bob", "category": "spam", "comment": "\u202e\x1b[31m"},
        {"target": "bob", "category": "spam", "comment": ["a list"]},
        {"target": "bob", "category": "rude"},
        {"target": "bob", "category": "spam", "forward": "yes"},
        {"target": "t" * 600, "category": "spam"},
        {"target": "alice", "category": "spam"},
    ]
    for body in bad:
        status, answer = await alice.call("POST", "/api/reports", body)
        assert status == 400, (body, answer)
    status, answer = await alice.call("POST", "/api/reports", {"target": "zed", "category": "spam"})
    assert status == 404, answer
    # a lone surrogate cannot be stored or sent as UTF-8
    raw = b'{"target": "bob", "category": "spam", "comment": "\\ud800"}'
    async with alice.http.post(
        f"{a.url}/api/reports",
        data=raw,
        headers={"Content-Type": "application/json", "X-CSRF-Token": alice.csrf},
    ) as resp:
        assert resp.status == 400, await resp.text()
    assert report_count(a) == 0
    # a note on the desk is capped the same way
    await parts(a).accounts.create_user("root", "password123", is_admin=True)
    admin = await a.user()
    await admin.signin("root")
    status, _ = await alice.call("POST", "/api/reports", {"target": "bob", "category": "spam"})
    assert status == 201
    status, answer = await admin.call("POST", "/api/admin/reports/1/resolve", {"note": "n" * 1001})
    assert status == 400, answer
    assert parts(a).desk.store.audit_log() == []


async def test_hostile_flags_are_dropped_and_store_nothing(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a, mallory, key, alice_uri = await alice_and_mallory(node_factory, remote)
    assert a.app is not None
    seen = a.app[FEDERATION].count("seen_activities")
    # naming objects that are not ours (another node's actor, a room we do not have)
    for objects in (
        [alice_uri, "https://elsewhere.example/users/x"],
        [f"{a.url}/rooms/nope"],
        [f"{a.url}/users/nobody"],
    ):
        status, text = await remote.post(
            f"{a.url}/inbox", flag(remote, mallory, objects), key_id=key
        )
        assert status == 202, text
        assert "not ours" in text
    assert report_count(a) == 0
    assert a.app[FEDERATION].count("seen_activities") == seen, "not even the activity id"
    # the same Flag naming only alice lands on the desk, with no reporter
    status, text = await remote.post(
        f"{a.url}/inbox", flag(remote, mallory, [alice_uri], "spam\x00bot"), key_id=key
    )
    assert status == 202, text
    reports = parts(a).desk.reports(None)
    assert len(reports) == 1 and reports[0]["remote"] is True
    assert reports[0]["reporter"] is None and reports[0]["comment"] == "spambot"
    assert reports[0]["origin"] == host_of(remote.url)
    # from a suspended domain: 202 and nothing stored (not even the activity id)
    parts(a).federation.policies.set_policy(host_of(remote.url), "suspend", 0.0)
    before = a.app[FEDERATION].count("seen_activities")
    status, text = await remote.post(
        f"{a.url}/inbox", flag(remote, mallory, [alice_uri]), key_id=key
    )
    assert status == 202, text
    assert report_count(a) == 1
    assert a.app[FEDERATION].count("seen_activities") == before


async def test_suspended_remote_actor_is_refused(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a, mallory, key, alice_uri = await alice_and_mallory(node_factory, remote)

    def follow() -> dict[str, str]:
        return {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{remote.url}/activities/{secrets.token_hex(6)}",
            "type": "Follow",
            "actor": mallory,
            "object": alice_uri,
        }

    status, text = await remote.post(f"{a.url}/inbox", follow(), key_id=key)
    assert status == 202, text
    handle = f"mallory@{host_of(remote.url)}"
    await parts(a).desk.suspend(None, handle, "abuse")
    status, text = await remote.post(f"{a.url}/inbox", follow(), key_id=key)
    assert status == 403 and "suspended" in text
    status, text = await remote.post(
        f"{a.url}/inbox", flag(remote, mallory, [alice_uri]), key_id=key
    )
    assert status == 403 and report_count(a) == 0
    alice = parts(a).accounts.users.by_name("alice")
    assert alice is not None and parts(a).accounts.follows.counts(alice.id) == (0, 0)
    assert [e.action for e in parts(a).desk.store.audit_log()] == ["suspend"]


async def test_desk_is_for_admins_only(node_factory: NodeFactory) -> None:
    a = await node_factory("a")
    alice = await a.user("alice")
    await a.user("bob")
    nobody = await a.user()
    calls = [
        ("GET", "/api/admin/reports", None),
        ("GET", "/api/admin/reports/1", None),
        ("POST", "/api/admin/reports/1/resolve", {"note": "x"}),
        ("POST", "/api/admin/accounts/bob/suspend", {}),
        ("POST", "/api/admin/accounts/bob/unsuspend", {}),
        ("POST", "/api/admin/accounts/bob/warn", {"note": "x"}),
        ("GET", "/api/admin/domains", None),
        ("POST", "/api/admin/domains", {"domain": "evil.example", "policy": "suspend"}),
        ("DELETE", "/api/admin/domains/evil.example", None),
        ("GET", "/api/admin/audit", None),
    ]
    for method, path, body in calls:
        status, answer = await alice.call(method, path, body)
        assert status == 403, (path, answer)
        status, answer = await nobody.call(method, path, body)
        assert status == 401, (path, answer)
    async with alice.http.get(f"{a.url}/admin", allow_redirects=False) as resp:
        assert resp.status == 403
    async with nobody.http.get(f"{a.url}/admin", allow_redirects=False) as resp:
        assert resp.status == 302
    assert a.app is not None
    bob = a.app[NODE].accounts.users.by_name("bob")
    assert bob is not None and not bob.suspended
    assert parts(a).federation.policies.policies() == []


async def test_suspended_local_account_is_locked_out_and_unsuspended(
    node_factory: NodeFactory,
) -> None:
    a = await node_factory("a")
    bob = await a.user("bob")
    token_status, token = await bob.call(
        "POST", "/api/auth/token", {"username": "bob", "password": "password123"}
    )
    assert token_status in (200, 201), token
    await parts(a).accounts.create_user("root", "password123", is_admin=True)
    admin = await a.user()
    await admin.signin("root")
    status, body = await admin.call("POST", "/api/admin/accounts/bob/warn", {"note": "calm down"})
    assert status == 200, body
    _, warnings = await bob.call("GET", "/api/me/warnings")
    assert warnings["warnings"][0]["note"] == "calm down"
    status, body = await admin.call("POST", "/api/admin/accounts/bob/suspend", {})
    assert status == 200, body
    assert (await bob.call("GET", "/api/me"))[0] == 401
    async with bob.http.get(
        f"{a.url}/api/me", headers={"Authorization": f"Bearer {token['token']}"}
    ) as resp:
        assert resp.status == 401, "API tokens are revoked too"
    status, body = await bob.signin("bob")
    assert status == 403 and body["error"] == "this account is suspended by the node's operator"
    status, body = await admin.call("POST", "/api/admin/accounts/root/suspend", {})
    assert status == 403
    status, body = await admin.call("POST", "/api/admin/accounts/bob/unsuspend", {})
    assert status == 200, body
    assert (await bob.signin("bob"))[0] == 200
    _, audit = await admin.call("GET", "/api/admin/audit")
    assert [e["action"] for e in audit["audit"]] == ["unsuspend", "suspend", "warn"]
    assert json.dumps(audit).count("bob") == 3
