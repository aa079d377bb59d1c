"""Blocks across real nodes: bob@B blocks alice@A, A honours the ``Block``, ``Undo``
restores; a blocked user cannot join the blocker's room from another node; a mute stays
on its node. Real nodes on 127.0.0.1, real signed HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from cli.app import NODE
from node.accounts import AccountError
from node.rooms.gate import BLOCKED_JOIN, BLOCKED_STAGE
from tests.support.network import AUDIO, acct, eventually, follow_accepted
from tests.support.nodes import ApiUser, Node, NodeFactory

pytestmark = pytest.mark.timeout(90)


def store(node: Node) -> Any:
    assert node.app is not None
    return node.app[NODE].accounts


def blocked_on(node: Node, blocker: str, blocked: str) -> bool:
    """Does NODE hold a block of BLOCKED by BLOCKER (handles as NODE names them)?"""
    accounts = store(node)
    try:
        pair = accounts.by_name(blocker).id, accounts.by_name(blocked).id
    except AccountError:  # NODE has not met one of them yet
        return False
    return bool(accounts.blocks.blocks(*pair))


def block_rows(node: Node) -> int:
    row = store(node).users.db.one("SELECT count(*) FROM blocks")
    return int(row[0])


def outbox_rows(node: Node) -> int:
    row = store(node).users.db.one("SELECT count(*) FROM outbox_activities")
    return int(row[0])


async def live_room(host: ApiUser, title: str) -> dict[str, Any]:
    status, room = await host.call("POST", "/api/rooms", {"title": title})
    assert status == 201, room
    status, body = await host.call("POST", f"/api/rooms/{room['id']}/join")
    assert status == 200, body
    return dict(room)


async def titles(user: ApiUser) -> list[str]:
    _, body = await user.call("GET", "/api/hallway")
    return [card["title"] for card in body["rooms"]]


async def test_block_federates_and_undo_restores(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **{**AUDIO, "reconnect_grace_seconds": 60.0})
    b = await node_factory("b", **AUDIO)
    alice, bob = await a.user("alice"), await b.user("bob")
    await follow_accepted(bob, alice, a)
    await follow_accepted(alice, bob, b)
    room = await live_room(alice, "Alice on A")

    async def bob_sees_room() -> bool:
        return "Alice on A" in await titles(bob)

    await eventually(bob_sees_room)
    status, joined = await bob.call("POST", "/api/remote-rooms", {"url": room["url"]})
    assert status == 200, joined
    bob_on_a, alice_on_b = acct(bob, b), acct(alice, a)

    status, body = await bob.call("POST", f"/api/users/{alice_on_b}/block")
    assert status == 200 and body["changed"] is True, body

    async def a_has_block() -> bool:
        return blocked_on(a, bob_on_a, "alice")

    await eventually(a_has_block)
    # follows are gone on both nodes, both ways
    _, seen_by_alice = await alice.call("GET", f"/api/users/{bob_on_a}")
    assert seen_by_alice["followed_by_you"] is None and seen_by_alice["follows_you"] is False
    _, seen_by_bob = await bob.call("GET", f"/api/users/{alice_on_b}")
    assert seen_by_bob["followed_by_you"] is None and seen_by_bob["follows_you"] is False
    # alice cannot put bob on stage, nor follow him again
    status, body = await alice.call(
        "POST", f"/api/rooms/{room['id']}/invite_to_speak", {"user": bob_on_a}
    )
    assert status == 403 and body == {"error": BLOCKED_STAGE}
    status, body = await alice.call("POST", f"/api/users/{bob_on_a}/follow")
    assert status == 403
    # bob no longer sees alice's room
    assert "Alice on A" not in await titles(bob)

    status, body = await bob.call("DELETE", f"/api/users/{alice_on_b}/block")
    assert status == 200 and body["changed"] is True

    async def a_forgot_block() -> bool:
        return not blocked_on(a, bob_on_a, "alice")

    await eventually(a_forgot_block)
    status, body = await alice.call(
        "POST", f"/api/rooms/{room['id']}/invite_to_speak", {"user": bob_on_a}
    )
    assert status == 200, body
    await follow_accepted(bob, alice, a)
    await eventually(bob_sees_room)


async def test_blocked_user_cannot_join_blockers_room_local_or_remote(
    node_factory: NodeFactory,
) -> None:
    a = await node_factory("a", **AUDIO)
    b = await node_factory("b", **AUDIO)
    c = await node_factory("c", **AUDIO)
    alice, carol_a = await a.user("alice"), await a.user("carol")
    bob, dave = await b.user("bob"), await c.user("dave")
    room = await live_room(alice, "Alice on A")
    bob_on_a = acct(bob, b)
    assert (await alice.call("POST", "/api/users/carol/block"))[0] == 200
    status, body = await alice.call("POST", f"/api/users/{bob_on_a}/block")
    assert status == 200, body

    async def b_has_block() -> bool:
        return blocked_on(b, acct(alice, a), "bob")

    await eventually(b_has_block)
    status, body = await carol_a.call("POST", f"/api/rooms/{room['id']}/join")
    assert status == 403 and body == {"error": BLOCKED_JOIN}
    status, body = await bob.call("POST", "/api/remote-rooms", {"url": room["url"]})
    assert status == 403 and BLOCKED_JOIN in body["error"], body
    # dave on a third node, blocked by nobody, joins; C heard of no block
    status, body = await dave.call("POST", "/api/remote-rooms", {"url": room["url"]})
    assert status == 200, body
    assert block_rows(c) == 0
    status, body = await alice.call(
        "POST", f"/api/rooms/{room['id']}/invite_to_speak", {"user": acct(dave, c)}
    )
    assert status == 200, body


async def test_mute_hides_rooms_locally_and_sends_nothing(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **AUDIO)
    b = await node_factory("b", **AUDIO)
    alice, bob = await a.user("alice"), await b.user("bob")
    await follow_accepted(alice, bob, b)
    await live_room(bob, "Bob on B")

    async def alice_sees_room() -> bool:
        return "Bob on B" in await titles(alice)

    await eventually(alice_sees_room)
    before = outbox_rows(a)
    status, body = await alice.call("POST", f"/api/users/{acct(bob, b)}/mute")
    assert status == 200 and body["user"]["muted_by_you"] is True
    assert "Bob on B" not in await titles(alice)
    assert outbox_rows(a) == before
    assert block_rows(a) == 0 and block_rows(b) == 0
    # still following: a mute is not a block
    _, profile = await alice.call("GET", f"/api/users/{acct(bob, b)}")
    assert profile["followed_by_you"] == "accepted"
    assert (await alice.call("DELETE", f"/api/users/{acct(bob, b)}/mute"))[0] == 200
    assert "Bob on B" in await titles(alice)
    assert outbox_rows(a) == before


async def test_remote_card_names_blocked_speakers_before_joining(
    node_factory: NodeFactory,
) -> None:
    a = await node_factory("a", **AUDIO)
    b = await node_factory("b", **AUDIO)
    alice, bob, carol = await a.user("alice"), await b.user("bob"), await b.user("carol")
    await follow_accepted(alice, bob, b)
    room = await live_room(bob, "Bob on B")
    assert (await carol.call("POST", f"/api/rooms/{room['id']}/join"))[0] == 200
    invited = await bob.call("POST", f"/api/rooms/{room['id']}/invite_to_speak", {"user": "carol"})
    assert invited[0] == 200, invited
    assert (await carol.call("POST", f"/api/rooms/{room['id']}/accept_invite"))[0] == 200
    status, body = await alice.call("POST", f"/api/users/{acct(carol, b)}/block")
    assert status == 200, body
    carol_uri = f"{b.url}/users/carol"

    async def warned() -> bool:
        _, hallway = await alice.call("GET", "/api/hallway")
        cards = [c for c in hallway["rooms"] if c["title"] == "Bob on B"]
        return bool(cards) and cards[0]["blocked_on_stage"] == [carol_uri]

    await eventually(warned)
