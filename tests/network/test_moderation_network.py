"""Three real nodes: a report forwarded as a ``Flag`` reaches the room's node without the
reporter's identity, and suspending the room's host there ends the room, locks the host
out, answers 410 for the actor and makes followers' nodes drop it (``Delete``)."""

from __future__ import annotations

import json
from typing import Any

from cli.app import NODE
from federation.as2 import host_of
from federation.service import FEDERATION
from tests.support.network import FAST, acct, eventually, follow_accepted
from tests.support.nodes import ApiUser, Node, NodeFactory


async def admin_of(node: Node) -> ApiUser:
    assert node.app is not None
    await node.app[NODE].accounts.create_user("root", "password123", is_admin=True)
    admin = await node.user()
    status, body = await admin.signin("root")
    assert status == 200, body
    return admin


async def remote_titles(user: ApiUser) -> list[str]:
    status, body = await user.call("GET", "/api/hallway")
    assert status == 200, body
    return [c["title"] for c in body["rooms"] if c.get("remote")]


async def test_forwarded_report_and_suspension_across_three_nodes(
    node_factory: NodeFactory,
) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    c = await node_factory("c", **FAST)
    alice = await a.user("alice")
    bob = await b.user("bob")
    carol = await c.user("carol")
    await follow_accepted(bob, alice, a)
    await follow_accepted(carol, alice, a)
    status, room = await alice.call("POST", "/api/rooms", {"title": "Trouble talk"})
    assert status == 201, room
    room_url = f"{a.url}/rooms/{room['id']}"

    async def seen_on_b_and_c() -> bool:
        return "Trouble talk" in await remote_titles(bob) and "Trouble talk" in (
            await remote_titles(carol)
        )

    await eventually(seen_on_b_and_c)

    # carol files the report on C and forwards it
    status, body = await carol.call(
        "POST",
        "/api/reports",
        {"target": room_url, "category": "harassment", "comment": "shouting", "forward": True},
    )
    assert status == 201, body
    mine = body["report"]
    assert mine["reporter"] == "carol" and mine["forwarded"] is True and not mine["remote"]
    assert mine["target_user"] == acct(alice, a)
    assert mine["context"]["room"]["title"] == "Trouble talk"

    # A's desk shows a Flag from C's node, without carol's identity
    admin = await admin_of(a)

    async def flagged() -> list[dict[str, Any]]:
        _, desk = await admin.call("GET", "/api/admin/reports?status=open")
        return list(desk["reports"])

    reports = await eventually(flagged)
    report = reports[0]
    assert report["remote"] is True and report["origin"] == host_of(c.url)
    assert report["reporter"] is None and report["target_user"] == "alice"
    assert report["room"] == room_url and report["comment"] == "shouting"
    assert report["context"]["room"]["title"] == "Trouble talk"
    assert "carol" not in json.dumps(report)

    # the admin suspends the host
    assert a.app is not None
    assert a.app[NODE].rooms.live(room["id"]) is not None
    status, done = await admin.call(
        "POST", "/api/admin/accounts/alice/suspend", {"note": "report " + str(report["id"])}
    )
    assert status == 200, done
    assert done["rooms_ended"] == [room["id"]] and done["delete_sent_to"] >= 1
    assert a.app[NODE].rooms.live(room["id"]) is None

    status, body = await alice.call("GET", "/api/me")
    assert status == 401, "the host's session is revoked at once"
    status, body = await alice.signin("alice")
    assert status == 403 and "suspended" in body["error"]
    async with alice.http.get(
        f"{a.url}/users/alice", headers={"Accept": "application/activity+json"}
    ) as resp:
        assert resp.status == 410

    async def room_gone_on_b_and_c() -> bool:
        return "Trouble talk" not in await remote_titles(bob) + await remote_titles(carol)

    await eventually(room_gone_on_b_and_c)

    alice_uri = f"{a.url}/users/alice"

    async def dropped() -> bool:
        return all(
            n.app is not None and n.app[FEDERATION].actors.actor_by_uri(alice_uri) is None
            for n in (b, c)
        )

    await eventually(dropped)
    _, following = await bob.call("GET", "/api/users/bob/following")
    assert following["items"] == []

    status, resolved = await admin.call(
        "POST", f"/api/admin/reports/{report['id']}/resolve", {"note": "host suspended"}
    )
    assert status == 200 and resolved["report"]["status"] == "resolved"
    _, audit = await admin.call("GET", "/api/admin/audit")
    assert [e["action"] for e in audit["audit"]] == ["resolve", "suspend"]
    assert audit["audit"][1]["target"] == "alice" and audit["audit"][1]["admin"] == "root"


async def test_limited_remote_account_and_domain_policies(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice = await a.user("alice")
    carol = await a.user("carol")
    bob = await b.user("bob")
    await follow_accepted(alice, bob, b)
    status, _ = await bob.call("POST", "/api/rooms", {"title": "Bob's show"})
    assert status == 201

    async def listed() -> bool:
        return "Bob's show" in await remote_titles(alice)

    await eventually(listed)
    admin = await admin_of(a)
    bob_handle = acct(bob, b)
    status, body = await admin.call("POST", f"/api/admin/accounts/{bob_handle}/limit", {})
    assert status == 200, body
    assert "Bob's show" not in await remote_titles(alice), "a limited account's rooms are hidden"

    # bob's new follow of carol waits for her approval
    status, body = await bob.call("POST", f"/api/users/{acct(carol, a)}/follow")
    assert status == 200, body

    async def held() -> list[Any]:
        _, requests = await carol.call("GET", "/api/me/follow-requests")
        return list(requests["items"])

    assert (await eventually(held))[0]["handle"] == bob_handle

    status, body = await admin.call("POST", "/api/admin/accounts/alice/limit", {})
    assert status == 400 and "other nodes" in body["error"]
    status, body = await admin.call("POST", f"/api/admin/accounts/{bob_handle}/unlimit", {})
    assert status == 200
    assert "Bob's show" in await remote_titles(alice)

    # domain policies, with the follows they affect
    domain = host_of(b.url)
    status, body = await admin.call(
        "POST", "/api/admin/domains", {"domain": domain, "policy": "limit"}
    )
    # alice → bob, and bob's request to carol
    assert status == 200 and body["follows"] == 2, body
    _, listing = await admin.call("GET", "/api/admin/domains")
    assert listing["domains"] == [
        {
            "domain": domain,
            "policy": "limit",
            "created_at": listing["domains"][0]["created_at"],
            "follows": 2,
        }
    ]
    status, body = await admin.call(
        "POST", "/api/admin/domains", {"domain": "a/b", "policy": "suspend"}
    )
    assert status == 400
    status, body = await admin.call("DELETE", f"/api/admin/domains/{domain}")
    assert status == 200
    assert (await admin.call("DELETE", f"/api/admin/domains/{domain}"))[0] == 404
    _, audit = await admin.call("GET", "/api/admin/audit")
    assert [e["action"] for e in audit["audit"]] == [
        "domain removed",
        "domain limit",
        "unlimit",
        "limit",
    ]
