"""Two and three real nodes on 127.0.0.1 talking real HTTP: follows, room discovery,
end propagation, unfollow, outage recovery and domain blocks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from federation.as2 import host_of
from tests.support.network import FAST, acct, eventually, follow_accepted
from tests.support.nodes import ApiUser, NodeFactory

AS2 = "application/activity+json"


async def fetch(user: ApiUser, path: str, accept: str = AS2) -> tuple[int, Any]:
    """GET with any JSON media type decoded (the API helper decodes only application/json)."""
    async with user.http.get(user.base + path, headers={"Accept": accept}) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if "json" in resp.content_type else text)


async def hallway_titles(user: ApiUser) -> list[str]:
    status, body = await user.call("GET", "/api/hallway")
    assert status == 200, body
    return [card["title"] for card in body["rooms"]]


async def test_discovery_endpoints(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    alice = await (await a.user()).signup("alice")
    host = host_of(a.url)
    status, jrd = await fetch(alice, f"/.well-known/webfinger?resource=acct:alice@{host}")
    assert status == 200 and jrd["links"][0]["href"] == f"{a.url}/users/alice", jrd
    assert jrd["subject"] == f"acct:alice@{host}"
    assert (await fetch(alice, f"/.well-known/webfinger?resource=acct:zed@{host}"))[0] == 404
    assert (await fetch(alice, "/.well-known/webfinger?resource=acct:alice@other.example"))[
        0
    ] == 404
    assert (await fetch(alice, "/.well-known/webfinger?resource=nonsense"))[0] == 400
    assert (await fetch(alice, "/.well-known/webfinger"))[0] == 400
    status, links = await fetch(alice, "/.well-known/nodeinfo")
    assert status == 200 and links["links"][0]["href"] == f"{a.url}/nodeinfo/2.1"
    status, info = await fetch(alice, "/nodeinfo/2.1")
    assert info["software"]["name"] == "salon" and info["usage"]["users"]["total"] == 1
    status, doc = await fetch(alice, "/users/alice")
    assert status == 200
    assert doc["type"] == "Person" and doc["publicKey"]["id"] == f"{a.url}/users/alice#main-key"
    assert doc["assertionMethod"][0]["type"] == "Multikey"
    assert doc["endpoints"]["sharedInbox"] == f"{a.url}/inbox"
    ld = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
    assert (await fetch(alice, "/users/alice", ld))[1]["id"] == f"{a.url}/users/alice"
    async with alice.http.get(
        f"{a.url}/users/alice", headers={"Accept": "text/html"}, allow_redirects=False
    ) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/@alice"
    assert (await fetch(alice, "/users/nobody"))[0] == 404
    status, node_doc = await fetch(alice, "/actor")
    assert node_doc["type"] == "Application"
    status, coll = await fetch(alice, "/users/alice/followers")
    assert coll["type"] == "OrderedCollection" and coll["totalItems"] == 0
    status, page = await fetch(alice, "/users/alice/followers?page=1")
    assert page["type"] == "OrderedCollectionPage" and page["orderedItems"] == []
    status, outbox = await fetch(alice, "/users/alice/outbox")
    assert outbox["type"] == "OrderedCollection"


async def test_follow_room_discovery_end_and_unfollow(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice = await (await a.user()).signup("alice")
    bob = await (await b.user()).signup("bob")

    status, found = await bob.call("GET", f"/api/lookup?acct=@{acct(alice, a)}")
    assert status == 200 and found["handle"] == acct(alice, a) and found["local"] is False
    await follow_accepted(bob, alice, a)
    _, profile = await alice.call("GET", "/api/users/alice")
    assert profile["followers_count"] == 1
    status, followers = await alice.call("GET", "/api/users/alice/followers")
    assert followers["items"][0]["handle"] == acct(bob, b)

    status, room = await alice.call("POST", "/api/rooms", {"title": "Fediverse talk"})
    assert status == 201, room

    async def listed() -> list[dict[str, Any]]:
        _, body = await bob.call("GET", "/api/hallway")
        return [c for c in body["rooms"] if c.get("remote")]

    cards = await eventually(listed)
    card = cards[0]
    assert card["title"] == "Fediverse talk" and card["status"] == "live"
    assert card["url"] == f"{a.url}/rooms/{room['id']}" and card["node"] == host_of(a.url)
    assert card["host"] == acct(alice, a)

    status, event = await fetch(alice, f"/rooms/{room['id']}")
    assert status == 200 and event["type"] == "Event" and event["status"] == "live"
    assert event["attributedTo"] == f"{a.url}/users/alice"

    await alice.call("PATCH", f"/api/rooms/{room['id']}", {"title": "Renamed talk"})

    async def renamed() -> bool:
        return "Renamed talk" in await hallway_titles(bob)

    await eventually(renamed)

    status, _ = await alice.call("POST", f"/api/rooms/{room['id']}/join")
    assert status == 200
    status, body = await alice.call("POST", f"/api/rooms/{room['id']}/end")
    assert status == 200, body

    async def gone() -> bool:
        return "Renamed talk" not in await hallway_titles(bob)

    await eventually(gone)

    status, _ = await bob.call("DELETE", f"/api/users/{acct(alice, a)}/follow")
    assert status == 200

    async def unfollowed() -> bool:
        _, body = await alice.call("GET", "/api/users/alice")
        return bool(body["followers_count"] == 0)

    await eventually(unfollowed)
    await alice.call("POST", "/api/rooms", {"title": "After unfollow"})
    await asyncio.sleep(0.5)
    assert "After unfollow" not in await hallway_titles(bob)


async def test_locked_account_and_three_nodes(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    c = await node_factory("c", **FAST)
    alice = await (await a.user()).signup("alice")
    bob = await (await b.user()).signup("bob")
    carol = await (await c.user()).signup("carol")
    await alice.call("PATCH", "/api/me", {"locked": True})

    status, body = await bob.call("POST", f"/api/users/{acct(alice, a)}/follow")
    assert body["state"] == "pending"

    async def requested() -> list[Any]:
        _, reqs = await alice.call("GET", "/api/me/follow-requests")
        return list(reqs["items"])

    items = await eventually(requested)
    assert items[0]["handle"] == acct(bob, b)
    status, _ = await alice.call("POST", f"/api/me/follow-requests/{acct(bob, b)}/approve")
    assert status == 200

    async def accepted() -> bool:
        _, p = await bob.call("GET", f"/api/users/{acct(alice, a)}")
        return bool(p["followed_by_you"] == "accepted")

    await eventually(accepted)
    await alice.call("PATCH", "/api/me", {"locked": False})
    await follow_accepted(carol, alice, a)

    await alice.call("POST", "/api/rooms", {"title": "Three nodes"})
    for user in (bob, carol):

        async def seen(u: ApiUser = user) -> bool:
            return "Three nodes" in await hallway_titles(u)

        await eventually(seen)


async def test_outage_then_delivery(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice = await (await a.user()).signup("alice")
    bob = await (await b.user()).signup("bob")
    await follow_accepted(bob, alice, a)

    await b.stop()
    await alice.call("POST", "/api/rooms", {"title": "While you were out"})
    await asyncio.sleep(0.6)  # at least one failed attempt
    await b.start()
    bob = await b.user()
    status, _ = await bob.signin("bob")
    assert status == 200

    async def arrived() -> bool:
        return "While you were out" in await hallway_titles(bob)

    await eventually(arrived, timeout=15)


async def test_domain_block_stops_deliveries_both_ways(node_factory: NodeFactory) -> None:
    from federation.service import FEDERATION

    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice = await (await a.user()).signup("alice")
    bob = await (await b.user()).signup("bob")
    await follow_accepted(bob, alice, a)

    assert a.app is not None
    fed_a = a.app[FEDERATION]
    fed_a.policies.set_policy(host_of(b.url), "suspend", 0.0)
    # The suspension severed the follow; B still believes it follows and would accept rooms.
    await alice.call("POST", "/api/rooms", {"title": "Blocked room"})
    await asyncio.sleep(0.5)
    assert "Blocked room" not in await hallway_titles(bob)

    # B -> A: the inbox refuses B (403), so B's delivery fails permanently.
    await bob.call("DELETE", f"/api/users/{acct(alice, a)}/follow")
    assert b.app is not None
    fed_b = b.app[FEDERATION]

    async def failed() -> bool:
        return fed_b.deliveries.summary()["failed"] >= 1

    await eventually(failed)
    rows = fed_b.deliveries.recent(5, "failed")
    assert rows[0].last_status == 403

    # A -> B: anything still queued for the suspended domain is skipped, not sent.
    fed_a.publisher.publish(
        {"id": f"{a.url}/activities/probe", "type": "Update", "actor": f"{a.url}/users/alice"},
        None,
        [f"{b.url}/inbox"],
        public=False,
    )

    async def skipped() -> bool:
        return fed_a.deliveries.summary()["skipped"] >= 1

    await eventually(skipped)
