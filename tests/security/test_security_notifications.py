"""Attacks on notifications and pings: Invites from strangers, into rooms that are not
what they claim, to people who are not here, signed by someone else, in floods and with
odd text; reading or marking another user's notifications; socket limits; ping floods."""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp
import pytest

from federation.as2 import host_of
from tests.security.fake_actor_server import FakeActorServer
from tests.support.attacks import parts
from tests.support.network import FAST, eventually
from tests.support.nodes import ApiUser, Node, NodeFactory

pytestmark = pytest.mark.timeout(60)
_ids = itertools.count()


def room_doc(remote: FakeActorServer, host: str, name: str, **fields: Any) -> str:
    """Serve a live Salon room of HOST at the fake server; its id."""
    room_id = f"r{next(_ids)}"
    uri = f"{remote.url}/rooms/{room_id}"
    remote.rooms[room_id] = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": uri,
        "type": "Event",
        "name": name,
        "attributedTo": host,
        "status": "live",
        "joinMode": "open",
        **fields,
    }
    return uri


def invite(remote: FakeActorServer, actor: str, room: str, target: str) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.url}/activities/invite-{next(_ids)}",
        "type": "Invite",
        "actor": actor,
        "object": room,
        "target": target,
        "to": [target],
    }


def stored(node: Node) -> int:
    row = parts(node).db.one("SELECT count(*) FROM notifications")
    assert row is not None
    return int(row[0])


async def follower(node: Node, remote: FakeActorServer, name: str, target: str) -> str:
    """A remote actor that follows TARGET (accepted by TARGET's node): a known relation."""
    actor = remote.actor(name)
    follow = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.url}/activities/follow-{next(_ids)}",
        "type": "Follow",
        "actor": actor,
        "object": target,
    }
    status, text = await remote.post(f"{node.url}/inbox", follow, key_id=f"{actor}#main-key")
    assert status == 202, text
    return actor


async def send(node: Node, remote: FakeActorServer, activity: dict[str, Any], key: str) -> int:
    status, _ = await remote.post(f"{node.url}/inbox", activity, key_id=f"{key}#main-key")
    return status


async def test_invites_that_must_not_notify(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    b = await node_factory("b", **FAST)
    bob = await b.user("bob")
    await b.user("carol")
    bob_uri = f"{b.url}/users/bob"
    stranger = remote.actor("stranger")
    room = room_doc(remote, stranger, "Free money")
    # a stranger (no follow either way) is dropped quietly: 202, nothing stored
    assert await send(b, remote, invite(remote, stranger, room, bob_uri), stranger) == 202
    mallory = await follower(b, remote, "mallory", bob_uri)
    mine = room_doc(remote, mallory, "Mallory's room")
    # to someone who is not on this node, or not a user at all
    for target in (f"{remote.url}/users/bob", f"{b.url}/users/nobody", f"{b.url}/rooms/x"):
        assert await send(b, remote, invite(remote, mallory, mine, target), mallory) == 202
    # carol has no relation with mallory (mallory follows bob, not carol)
    carol = f"{b.url}/users/carol"
    assert await send(b, remote, invite(remote, mallory, mine, carol), mallory) == 202
    # an object that its host does not serve, or serves under another id
    missing = f"{remote.url}/rooms/none"
    assert await send(b, remote, invite(remote, mallory, missing, bob_uri), mallory) == 400
    liar = room_doc(remote, mallory, "Lies")
    remote.rooms[liar.rsplit("/", 1)[1]]["id"] = "https://elsewhere.example/rooms/1"
    assert await send(b, remote, invite(remote, mallory, liar, bob_uri), mallory) == 400
    # an ended room, and a non-Salon Event
    ended = room_doc(remote, mallory, "Over", status="ended")
    assert await send(b, remote, invite(remote, mallory, ended, bob_uri), mallory) == 202
    plain = room_doc(remote, mallory, "Meetup")
    del remote.rooms[plain.rsplit("/", 1)[1]]["status"]
    assert await send(b, remote, invite(remote, mallory, plain, bob_uri), mallory) == 202
    # an Invite claiming to be eve, signed by mallory's key
    eve = remote.actor("eve")
    assert await send(b, remote, invite(remote, eve, mine, bob_uri), mallory) == 401
    # an Invite into one of B's own rooms is not taken from another node
    own = f"{b.url}/rooms/abc"
    assert await send(b, remote, invite(remote, mallory, own, bob_uri), mallory) == 202
    assert stored(b) == 0
    # the real thing works: mallory follows bob, the room is served by its host
    good = invite(remote, mallory, mine, bob_uri)
    assert await send(b, remote, good, mallory) == 202
    status, body = await bob.call("GET", "/api/notifications")
    assert [(n["kind"], n["title"]) for n in body["items"]] == [("ping", "Mallory's room")]
    # a replay of the same Invite is not a second notification
    assert await send(b, remote, good, mallory) == 202
    assert stored(b) == 1
    # once bob blocks mallory, her Invites are dropped
    status, _ = await bob.call("POST", f"/api/users/mallory@{host_of(remote.url)}/block")
    assert status == 200
    other = room_doc(remote, mallory, "Again")
    assert await send(b, remote, invite(remote, mallory, other, bob_uri), mallory) == 202
    assert stored(b) == 1


async def test_invite_flood_and_odd_titles(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    b = await node_factory("b", pings_per_minute=3, **FAST)
    bob = await b.user("bob")
    bob_uri = f"{b.url}/users/bob"
    mallory = await follower(b, remote, "mallory", bob_uri)
    titles = ["a\u202eb\u0000c\ud800\n" + "z" * 5000, "e\u0301\ufeff", "x", "y", "w"]
    statuses = []
    for title in titles:
        room = room_doc(remote, mallory, title)
        statuses.append(await send(b, remote, invite(remote, mallory, room, bob_uri), mallory))
    assert statuses == [202] * 5
    assert stored(b) == 3  # the rest were over the per-sender ping limit
    status, body = await bob.call("GET", "/api/notifications")
    assert status == 200
    shown = [n["title"] for n in body["items"]]
    assert len(shown[-1]) == 200 and "\u0000" not in shown[-1] and "\n" not in shown[-1]
    assert shown[-2] == "e\u0301\ufeff"


async def test_another_users_notifications_stay_theirs(node: Node) -> None:
    alice, bob = await node.user("alice"), await node.user("bob")
    status, _ = await bob.call("POST", "/api/users/alice/follow")
    assert status == 200
    status, _room = await alice.call("POST", "/api/rooms", {"title": "Mine"})
    assert status == 201
    _, bobs = await bob.call("GET", "/api/notifications")
    ids = [n["id"] for n in bobs["items"]]
    assert len(ids) == 1
    _, alices = await alice.call("GET", "/api/notifications")
    assert alices["items"] == []
    status, body = await alice.call("POST", "/api/notifications/read", {"ids": ids})
    assert status == 200 and body == {"marked": 0, "unread": 0}
    _, again = await bob.call("GET", "/api/notifications")
    assert again["unread"] == 1 and again["items"][0]["read"] is False
    anon = await node.user()
    status, body = await anon.call("GET", "/api/notifications")
    assert status == 401
    # a signed-in request without the CSRF token cannot mark anything read
    status, body = await bob.call(
        "POST", "/api/notifications/read", {"all": True}, headers={"X-CSRF-Token": "nope"}
    )
    assert status == 403
    assert (await bob.call("GET", "/api/notifications"))[1]["unread"] == 1


async def test_notification_socket_limits_and_origin(node_factory: NodeFactory) -> None:
    node = await node_factory(notification_sockets_per_user=2)
    bob = await node.user("bob")
    url = f"{node.url}/api/notifications/ws"
    first, second = await bob.http.ws_connect(url), await bob.http.ws_connect(url)
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await bob.http.ws_connect(url)
    assert exc.value.status == 429
    await first.close()

    async def third_fits() -> bool:
        try:
            ws = await bob.http.ws_connect(url)
        except aiohttp.WSServerHandshakeError:
            return False
        await ws.close()
        return True

    await eventually(third_fits)
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await bob.http.ws_connect(url, headers={"Origin": "https://evil.example"})
    assert exc.value.status == 403
    # binary and junk frames are ignored; the socket stays up and answers pings
    await second.send_bytes(b"\x00" * 10)
    await second.send_str("{nope")
    await second.send_json({"type": "ping"})
    seen = [await second.receive_json(timeout=5) for _ in range(2)]
    assert seen == [{"type": "unread", "count": 0}, {"type": "pong"}]
    await second.close()


async def test_local_ping_flood_and_blocks(node_factory: NodeFactory) -> None:
    node = await node_factory(pings_per_minute=3)
    alice = await node.user("alice")
    friends: list[ApiUser] = []
    for i in range(5):
        friend = await node.user(f"f{i}")
        assert (await friend.call("POST", "/api/users/alice/follow"))[0] == 200
        friends.append(friend)
    status, room = await alice.call("POST", "/api/rooms", {"title": "Flood"})
    await alice.call("POST", f"/api/rooms/{room['id']}/join")
    answers = [
        (await alice.call("POST", f"/api/rooms/{room['id']}/ping", {"user": f"f{i}"}))[0]
        for i in range(5)
    ]
    assert answers == [200, 200, 200, 429, 429]
    assert stored(node) == 3 + 5  # three pings, five room_started
    for bad in ({"user": 5}, {"user": ""}, {"user": "x" * 5000}, {"who": "f1"}):
        status, body = await alice.call("POST", f"/api/rooms/{room['id']}/ping", bad)
        assert 400 <= status < 500 and "error" in body


async def test_no_ping_across_a_block_or_to_a_removed_user(node: Node) -> None:
    alice, bob, carol = await node.user("alice"), await node.user("bob"), await node.user("carol")
    for friend in (bob, carol):
        assert (await friend.call("POST", "/api/users/alice/follow"))[0] == 200
    status, room = await alice.call("POST", "/api/rooms", {"title": "Blocks"})
    await alice.call("POST", f"/api/rooms/{room['id']}/join")
    assert (await bob.call("POST", "/api/users/alice/block"))[0] == 200
    status, body = await alice.call("POST", f"/api/rooms/{room['id']}/ping", {"user": "bob"})
    assert status == 403 and body == {"error": "you can ping people you follow or who follow you"}
    assert (await carol.call("POST", f"/api/rooms/{room['id']}/join"))[0] == 200
    status, _ = await alice.call("POST", f"/api/rooms/{room['id']}/remove", {"user": "carol"})
    assert status == 200
    status, body = await alice.call("POST", f"/api/rooms/{room['id']}/ping", {"user": "carol"})
    assert status == 403 and body == {"error": "that user was removed from this room"}
    _, notes = await bob.call("GET", "/api/notifications")
    assert [n["kind"] for n in notes["items"]] == ["room_started"]
    _, notes = await carol.call("GET", "/api/notifications")
    assert [n["kind"] for n in notes["items"]] == ["room_started"]


async def test_an_embedded_room_of_another_host_is_read_from_that_host(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice, bob = await a.user("alice"), await b.user("bob")
    status, room = await alice.call("POST", "/api/rooms", {"title": "Real title"})
    assert status == 201
    mallory = await follower(b, remote, "mallory", f"{b.url}/users/bob")
    lying = invite(remote, mallory, room["url"], f"{b.url}/users/bob")
    lying["object"] = {
        "id": room["url"],
        "type": "Event",
        "name": "Click here for free money",
        "attributedTo": mallory,
        "status": "live",
    }
    assert await send(b, remote, lying, mallory) == 202
    _, body = await bob.call("GET", "/api/notifications")
    assert [n["title"] for n in body["items"]] == ["Real title"]
    # embedded and on the sender's own host, it is taken as sent (the signature covers it)
    own = invite(remote, mallory, f"{remote.url}/rooms/embedded", f"{b.url}/users/bob")
    own["object"] = {
        "id": f"{remote.url}/rooms/embedded",
        "type": "Event",
        "name": "Mallory's closed room",
        "attributedTo": mallory,
        "status": "live",
        "joinMode": "closed",
    }
    assert await send(b, remote, own, mallory) == 202
    _, body = await bob.call("GET", "/api/notifications")
    assert [n["title"] for n in body["items"]] == ["Mallory's closed room", "Real title"]
