"""Notifications across real nodes: rooms starting, pings as ActivityPub ``Invite``s, and
stage invitations of a remote participant, each arriving through the user's own node."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from tests.support.network import AUDIO, acct, eventually, follow_accepted
from tests.support.nodes import ApiUser, Node, NodeFactory

pytestmark = pytest.mark.timeout(120)


async def items(user: ApiUser) -> list[dict[str, Any]]:
    status, body = await user.call("GET", "/api/notifications")
    assert status == 200, body
    return list(body["items"])


def waiting_for(user: ApiUser, kind: str) -> Any:
    async def check() -> dict[str, Any] | None:
        return next((n for n in await items(user) if n["kind"] == kind), None)

    return check


async def two_nodes(node_factory: NodeFactory) -> tuple[Node, Node, ApiUser, ApiUser]:
    a = await node_factory("a", **AUDIO)
    b = await node_factory("b", **AUDIO)
    alice, bob = await a.user("alice"), await b.user("bob")
    return a, b, alice, bob


async def live_room(host: ApiUser, title: str) -> dict[str, Any]:
    status, room = await host.call("POST", "/api/rooms", {"title": title})
    assert status == 201, room
    status, joined = await host.call("POST", f"/api/rooms/{room['id']}/join")
    assert status == 200, joined
    return dict(room)


async def open_link(user: ApiUser, note: dict[str, Any]) -> dict[str, Any]:
    """Follow a notification's link as the web client does: a remote room's page on the
    user's own node (``/remote?url=…``) joins it through that node's API."""
    assert note["link"].startswith("/remote?url=")
    url = unquote(note["link"].removeprefix("/remote?url="))
    assert url == note["room_url"]
    status, room = await user.call("POST", "/api/remote-rooms", {"url": url})
    assert status == 200, room
    return dict(room)


async def test_room_start_reaches_followers_on_both_nodes(node_factory: NodeFactory) -> None:
    a, _b, alice, bob = await two_nodes(node_factory)
    carol = await a.user("carol")
    status, _ = await carol.call("POST", "/api/users/alice/follow")
    assert status == 200
    await follow_accepted(bob, alice, a)
    room = await live_room(alice, "Über-early ☀️ show")
    note_b = await eventually(waiting_for(bob, "room_started"), timeout=20)
    note_a = await eventually(waiting_for(carol, "room_started"), timeout=20)
    assert note_a["link"] == f"/rooms/{room['id']}"
    assert note_b["room_url"] == room["url"] and note_b["title"] == "Über-early ☀️ show"
    assert note_b["actor"] == acct(alice, a)
    joined = await open_link(bob, note_b)
    assert joined["title"] == "Über-early ☀️ show" and joined["remote"] is True
    # announcements that follow (Updates as people join) do not repeat it
    await alice.call("PATCH", f"/api/rooms/{room['id']}", {"title": "Renamed"})
    status, _ = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert [n["kind"] for n in await items(bob)] == ["room_started"]


async def test_alice_pings_bob_on_another_node(node_factory: NodeFactory) -> None:
    a, b, alice, bob = await two_nodes(node_factory)
    await follow_accepted(bob, alice, a)  # bob follows alice: she may ping him
    room = await live_room(alice, "Come in")
    status, body = await alice.call("POST", f"/api/rooms/{room['id']}/ping", {"user": acct(bob, b)})
    assert status == 200 and body == {"pinged": acct(bob, b)}
    note = await eventually(waiting_for(bob, "ping"), timeout=20)
    assert note["actor"] == acct(alice, a) and note["title"] == "Come in"
    assert note["room_url"] == room["url"]
    joined = await open_link(bob, note)
    assert joined["title"] == "Come in"
    # stage invitation and moderator appointment of bob@B reach him through B
    status, body = await alice.call(
        "POST", f"/api/rooms/{room['id']}/invite_to_speak", {"user": acct(bob, b)}
    )
    assert status == 200, body
    invited = await eventually(waiting_for(bob, "invited_to_speak"), timeout=20)
    assert invited["room_url"] == room["url"] and invited["title"] == "Come in"
    assert invited["actor"] == acct(alice, a)
    status, body = await alice.call(
        "POST", f"/api/rooms/{room['id']}/make_moderator", {"user": acct(bob, b)}
    )
    assert status == 200, body
    made = await eventually(waiting_for(bob, "made_moderator"), timeout=20)
    assert made["link"] == note["link"]


async def test_pings_from_a_remote_room_and_into_a_closed_one(node_factory: NodeFactory) -> None:
    a, b, alice, bob = await two_nodes(node_factory)
    erin, dave = await a.user("erin"), await b.user("dave")
    await follow_accepted(bob, alice, a)
    await follow_accepted(bob, erin, a)  # bob follows erin@A: he may ping her
    assert (await dave.call("POST", "/api/users/bob/follow"))[0] == 200  # dave@B follows bob
    room = await live_room(alice, "Open one")
    status, joined = await bob.call("POST", "/api/remote-rooms", {"url": room["url"]})
    assert status == 200, joined
    alias = joined["id"]
    # bob, in A's room through B, pings dave (on B) and erin (on A)
    for who in ("dave", acct(erin, a)):
        status, body = await bob.call("POST", f"/api/remote-rooms/{alias}/ping", {"user": who})
        assert status == 200, body
    note = await eventually(waiting_for(dave, "ping"))
    assert note["room_url"] == room["url"] and note["title"] == "Open one"
    assert note["actor"] == "bob" and note["link"].startswith("/remote?url=")
    note = await eventually(waiting_for(erin, "ping"), timeout=20)
    assert note["link"] == f"/rooms/{room['id']}" and note["actor"] == acct(bob, b)
    # dave is not in the room: he cannot ping from it
    status, body = await dave.call("POST", f"/api/remote-rooms/{alias}/ping", {"user": "bob"})
    assert status == 403, body

    # a closed room on A: alice's ping puts bob@B on its invitation list, so he gets in
    status, closed = await alice.call(
        "POST", "/api/rooms", {"title": "Invite only", "join_mode": "closed"}
    )
    assert status == 201
    assert (await alice.call("POST", f"/api/rooms/{closed['id']}/join"))[0] == 200
    status, body = await bob.call("POST", "/api/remote-rooms", {"url": closed["url"]})
    assert status == 403, body  # not invited yet
    status, body = await alice.call(
        "POST", f"/api/rooms/{closed['id']}/ping", {"user": acct(bob, b)}
    )
    assert status == 200, body

    async def closed_ping() -> dict[str, Any] | None:
        return next((n for n in await items(bob) if n["room_url"] == closed["url"]), None)

    note = await eventually(closed_ping, timeout=20)
    joined = await open_link(bob, note)
    assert joined["title"] == "Invite only"
    # from inside a closed remote room, B does not ping on the origin's behalf
    status, body = await bob.call(
        "POST", f"/api/remote-rooms/{joined['id']}/ping", {"user": "dave"}
    )
    assert status == 403
    assert body == {"error": "only the room's own node can ping people into a closed room"}
