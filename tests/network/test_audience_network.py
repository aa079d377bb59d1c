"""Two real nodes: a large audience in alice@A's room reaches bob and carol on B coalesced by
B itself (B fans out to its own sockets with the same rules as A, using A's counts from
the trunk), with gap-free seq; stage events still arrive at once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.chat import RoomSocket
from tests.support.network import FAST, eventually
from tests.support.nodes import ApiUser, Node, NodeFactory

pytestmark = pytest.mark.timeout(120)

SMALL = {**FAST, "audience_coalesce_above": 3}


async def remote_socket(user: ApiUser, room_url: str) -> RoomSocket:
    status, joined = await user.call("POST", "/api/remote-rooms", {"url": room_url})
    assert status == 200, joined
    return await RoomSocket.open(user.http, f"{user.base}/api/remote-rooms/{joined['id']}/ws")


async def all_pages(user: ApiUser, path: str, limit: int) -> tuple[list[str], int]:
    """Every listener's handle, page by page; and how many pages it took."""
    seen: list[str] = []
    after, pages = "", 0
    while True:
        status, page = await user.call("GET", f"{path}?limit={limit}&after={after}")
        assert status == 200, page
        pages += 1
        assert len(page["listeners"]) <= limit
        seen += [p["user"] for p in page["listeners"]]
        if page["next"] is None:
            return seen, pages
        after = page["next"]


def check_seq(messages: list[dict[str, Any]]) -> None:
    seq = next(m["room"]["seq"] for m in messages if m.get("type") == "state")
    for m in messages:
        if m.get("type") == "event":
            assert m["seq"] == seq + 1, (seq, m)
            seq = m["seq"]
        elif m.get("type") == "audience":
            assert m["seq"] >= seq, (seq, m)
            seq = m["seq"]


async def test_a_remote_nodes_sockets_get_the_audience_coalesced(
    node_factory: NodeFactory,
) -> None:
    a: Node = await node_factory("a", **SMALL)
    b: Node = await node_factory("b", **SMALL)
    alice, bob, carol = await a.user("alice"), await b.user("bob"), await b.user("carol")
    status, room = await alice.call("POST", "/api/rooms", {"title": "Crowd"})
    assert status == 201, room
    sa = await RoomSocket.open(alice.http, f"{a.url}/api/rooms/{room['id']}/ws")
    sb = await remote_socket(bob, room["url"])
    sc = await remote_socket(carol, room["url"])
    locals_on_a = [await a.user(f"u{i}") for i in range(5)]
    for user in locals_on_a:
        status, body = await user.call("POST", f"/api/rooms/{room['id']}/join")
        assert status == 200, body

    def counted(sock: RoomSocket, listeners: int) -> Any:
        async def check() -> bool:
            return any(
                m.get("type") == "audience" and m["listener_count"] == listeners for m in sock.seen
            )

        return check

    # A's counts reach B's sockets as B's own coalesced `audience` messages
    await eventually(counted(sb, 7), timeout=30)
    await eventually(counted(sc, 7), timeout=30)
    for sock in (sb, sc):
        joined = [m["user"] for m in sock.seen if m.get("event") == "joined"]
        assert not [u for u in joined if u.startswith("u")], joined  # folded on B
        check_seq(sock.seen)
    # the host on A saw every arrival
    await eventually(counted(sa, 7), timeout=30)
    host_joined = {m["user"] for m in sa.seen if m.get("event") == "joined"}
    assert {f"u{i}" for i in range(5)} <= host_joined

    # a stage event is never folded: alice mutes herself, B's sockets hear it at once
    assert (await sa.request({"type": "command", "action": "mute"}))["type"] == "reply"
    for sock in (sb, sc):
        muted = await sock.wait_for(lambda m: m.get("event") == "muted")
        assert muted["user"].startswith("alice@")
        check_seq(sock.seen)

    # bob's own hand is his (at once); carol only sees the count move
    assert (await sb.request({"type": "command", "action": "raise_hand"}))["type"] == "reply"
    await sb.wait_for(lambda m: m.get("event") == "hand_raised" and m["user"] == "bob")
    await sa.wait_for(lambda m: m.get("event") == "hand_raised")
    await sc.wait_for(lambda m: m.get("type") == "audience" and m["hand_count"] == 1)
    assert not [m for m in sc.seen if m.get("event") == "hand_raised"]
    check_seq(sc.seen)

    # the full list, paged through B by the room's node, named as B names people
    alias = sb.state["id"]
    seen, pages = await all_pages(bob, f"/api/remote-rooms/{alias}/listeners", 3)
    host_a = a.url.split("//")[1]
    assert sorted(seen) == sorted(["bob", "carol", *(f"u{i}@{host_a}" for i in range(5))])
    assert pages == 3 and len(seen) == len(set(seen))
    status, body = await bob.call("GET", f"/api/remote-rooms/{alias}/listeners?limit=-1")
    assert status == 400, body
    outsider = await b.user("mallory")
    status, body = await outsider.call("GET", f"/api/remote-rooms/{alias}/listeners")
    assert status == 403, body
