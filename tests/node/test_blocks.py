"""Block and mute on one node: follows, joins, the stage, the hallway, the room view's
marks (moderators' shield, blocked people on stage) and the profile flags."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from node.rooms.gate import BLOCKED_ACCEPT, BLOCKED_JOIN, BLOCKED_STAGE
from tests.support.nodes import ApiUser, Node


async def live_room(host: ApiUser, title: str = "Talk") -> str:
    status, room = await host.call("POST", "/api/rooms", {"title": title})
    assert status == 201, room
    status, body = await host.call("POST", f"/api/rooms/{room['id']}/join")
    assert status == 200, body
    return str(room["id"])


def hallway_titles(body: dict[str, Any]) -> list[str]:
    return [card["title"] for card in body["rooms"]]


async def test_block_removes_follows_and_refuses_new_ones(node: Node) -> None:
    alice, bob = await node.user("alice"), await node.user("bob")
    assert (await alice.call("POST", "/api/users/bob/follow"))[0] == 200
    assert (await bob.call("POST", "/api/users/alice/follow"))[0] == 200
    status, body = await alice.call("POST", "/api/users/bob/block")
    assert status == 200 and body["changed"] is True
    assert body["user"]["blocked_by_you"] is True
    assert body["user"]["followed_by_you"] is None and body["user"]["follows_you"] is False
    status, body = await bob.call("POST", "/api/users/alice/follow")
    assert status == 403 and "blocked" in body["error"]
    status, body = await alice.call("POST", "/api/users/bob/follow")
    assert status == 403
    # blocking twice changes nothing; the list shows bob once
    assert (await alice.call("POST", "/api/users/bob/block"))[1]["changed"] is False
    status, listed = await alice.call("GET", "/api/me/blocks")
    assert status == 200 and [u["handle"] for u in listed["items"]] == ["bob"]
    status, body = await alice.call("DELETE", "/api/users/bob/block")
    assert status == 200 and body["changed"] is True and body["user"]["blocked_by_you"] is False
    assert (await bob.call("POST", "/api/users/alice/follow"))[0] == 200
    assert (await alice.call("GET", "/api/me/blocks"))[1]["items"] == []


async def test_blocked_user_cannot_join_and_is_not_put_on_stage(node: Node) -> None:
    alice, bob, carol = await node.user("alice"), await node.user("bob"), await node.user("carol")
    room = await live_room(alice)
    assert (await carol.call("POST", f"/api/rooms/{room}/join"))[0] == 200
    assert (await alice.call("POST", "/api/users/bob/block"))[0] == 200
    status, body = await bob.call("POST", f"/api/rooms/{room}/join")
    assert status == 403 and body == {"error": BLOCKED_JOIN}
    # the socket path asks the same gate
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await bob.ws(room)
    assert refused.value.status == 403
    # carol, already in the room, blocks the host: the host cannot invite her to speak
    assert (await carol.call("POST", "/api/users/alice/block"))[0] == 200
    status, body = await alice.call("POST", f"/api/rooms/{room}/invite_to_speak", {"user": "carol"})
    assert status == 403 and body == {"error": BLOCKED_STAGE}
    assert (await carol.call("DELETE", "/api/users/alice/block"))[0] == 200
    status, body = await alice.call("POST", f"/api/rooms/{room}/invite_to_speak", {"user": "carol"})
    assert status == 200, body
    # invited, then blocked by the host: the invitation can no longer be accepted
    assert (await alice.call("POST", "/api/users/carol/block"))[0] == 200
    status, body = await carol.call("POST", f"/api/rooms/{room}/accept_invite")
    assert status == 403 and body == {"error": BLOCKED_ACCEPT}


async def test_moderators_see_a_shield_and_viewers_see_blocked_speakers(node: Node) -> None:
    alice, bob, carol = await node.user("alice"), await node.user("bob"), await node.user("carol")
    room = await live_room(alice)
    for user in (bob, carol):
        assert (await user.call("POST", f"/api/rooms/{room}/join"))[0] == 200
    assert (await alice.call("POST", "/api/users/bob/block"))[0] == 200
    _, view = await alice.call("GET", f"/api/rooms/{room}")
    shields = {p["user"]: p["blocked_by_moderator"] for p in view["listeners"]}
    assert shields == {"bob": True, "carol": False}
    # listeners do not learn who a moderator blocked
    _, seen_by_carol = await carol.call("GET", f"/api/rooms/{room}")
    assert all("blocked_by_moderator" not in p for p in seen_by_carol["listeners"])
    # someone who blocked a speaker is told before joining
    dave = await node.user("dave")
    assert (await dave.call("POST", "/api/users/alice/block"))[0] == 200
    _, seen_by_dave = await dave.call("GET", f"/api/rooms/{room}")
    assert seen_by_dave["blocked_on_stage"] == ["alice"]
    assert seen_by_carol["blocked_on_stage"] == []


async def test_block_and_mute_hide_rooms_from_the_hallway(node: Node) -> None:
    alice, bob, carol = await node.user("alice"), await node.user("bob"), await node.user("carol")
    await live_room(alice, "Alice's room")
    assert "Alice's room" in hallway_titles((await bob.call("GET", "/api/hallway"))[1])
    status, body = await bob.call("POST", "/api/users/alice/mute")
    assert status == 200 and body["user"]["muted_by_you"] is True
    assert hallway_titles((await bob.call("GET", "/api/hallway"))[1]) == []
    assert [u["handle"] for u in (await bob.call("GET", "/api/me/mutes"))[1]["items"]] == ["alice"]
    # a mute changes nothing for alice: she can still follow bob, invite him, see his profile
    assert (await alice.call("POST", "/api/users/bob/follow"))[0] == 200
    assert (await alice.call("GET", "/api/users/bob"))[1].get("blocked_by_you") is False
    assert (await bob.call("DELETE", "/api/users/alice/mute"))[0] == 200
    assert "Alice's room" in hallway_titles((await bob.call("GET", "/api/hallway"))[1])
    # a block hides the blocker's rooms from the blocked, and the blocked's from the blocker
    assert (await alice.call("POST", "/api/users/carol/block"))[0] == 200
    assert hallway_titles((await carol.call("GET", "/api/hallway"))[1]) == []
    await live_room(carol, "Carol's room")
    assert "Carol's room" not in hallway_titles((await alice.call("GET", "/api/hallway"))[1])


@pytest.mark.parametrize(
    ("name", "status"),
    [("alice", 400), ("nobody", 404), ("ALICE\u0301", 404), ("bob\u202e", 404), ("%00", 404)],
)
async def test_block_bad_targets(node: Node, name: str, status: int) -> None:
    alice = await node.user("alice")
    got, body = await alice.call("POST", f"/api/users/{name}/block")
    assert got == status, body
    assert (await alice.call("GET", "/api/me/blocks"))[1]["items"] == []
    got, _ = await alice.call("POST", f"/api/users/{name}/mute")
    assert got == status
