"""A hostile node against the federation front door: memory it can make us hold (actor
documents, remote rooms), signatures made for other hosts, activity ids on other hosts."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from cli.app import NODE
from federation import keys
from federation.service import FEDERATION
from tests.security.fake_actor_server import FakeActorServer
from tests.support.network import FAST
from tests.support.nodes import Node, NodeFactory

_ids = itertools.count()


def like(remote: FakeActorServer, actor_id: str) -> dict[str, Any]:
    """An activity Salon ignores after checking its signature (202) and stores nothing for."""
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.url}/activities/like-{next(_ids)}",
        "type": "Like",
        "actor": actor_id,
        "object": "https://elsewhere.example/notes/1",
    }


def follow(remote: FakeActorServer, actor_id: str, node: Node, **fields: Any) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.url}/activities/follow-{next(_ids)}",
        "type": "Follow",
        "actor": actor_id,
        "object": f"{node.url}/users/alice",
        **fields,
    }


def usage(node: Node) -> tuple[int, int]:
    assert node.app is not None
    return node.app[FEDERATION].directory.cache_usage()


def rows(node: Node) -> tuple[int, int, int]:
    assert node.app is not None
    fed = node.app[FEDERATION]
    users = fed.db.one("SELECT count(*) FROM users")
    return fed.count("remote_actors"), fed.count("follow_activities"), int(users[0] if users else 0)


async def test_oversized_actor_documents_are_refused_and_not_kept(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a = await node_factory("a", **FAST)
    await a.user("alice")
    before, stored = usage(a), rows(a)
    padding = "p" * 900_000  # under max_body (1 MB), over actor_document_bytes (256 kB)
    actors = [remote.actor(f"big{i}", padding=padding) for i in range(40)]
    answers = await asyncio.gather(
        *(remote.post(f"{a.url}/inbox", like(remote, u), key_id=f"{u}#main-key") for u in actors)
    )
    assert {status for status, _ in answers} == {401}
    assert all("over" in text for _, text in answers)
    assert usage(a) == before
    assert rows(a) == stored


async def test_actor_cache_stays_within_entries_and_bytes(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a = await node_factory(
        "a", **FAST, actor_cache_entries=5, actor_cache_bytes=60_000, actor_document_bytes=20_000
    )
    await a.user("alice")
    padding = "p" * 14_000
    actors = [remote.actor(f"fine{i}", padding=padding) for i in range(20)]
    for actor_id in actors:
        status, text = await remote.post(
            f"{a.url}/inbox", like(remote, actor_id), key_id=f"{actor_id}#main-key"
        )
        assert status == 202, text
        entries, size = usage(a)
        assert entries <= 5 and size <= 60_000
    assert 2 <= usage(a)[0] < 5  # ~15 kB documents: the byte budget binds before the count
    assert a.app is not None
    directory = a.app[FEDERATION].directory
    assert directory.document(actors[-1]) is not None  # the most recent stay
    assert directory.document(actors[0]) is None  # the least recently used went
    # a document between the two caps is refused (401), the cache untouched
    too_big = remote.actor("toobig", padding="p" * 30_000)
    kept = usage(a)
    status, _ = await remote.post(
        f"{a.url}/inbox", like(remote, too_big), key_id=f"{too_big}#main-key"
    )
    assert status == 401 and usage(a) == kept


async def test_failed_signatures_keep_no_actor_document(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a = await node_factory("a", **FAST)
    await a.user("alice")
    honest = remote.actor("honest")
    status, _ = await remote.post(
        f"{a.url}/inbox", like(remote, honest), key_id=f"{honest}#main-key"
    )
    assert status == 202
    before, stored = usage(a), rows(a)
    wrong = keys.generate_rsa_private_key()  # signs with a key no actor lists
    strangers = [remote.actor(f"s{i}", padding="p" * 100_000) for i in range(30)]
    answers = await asyncio.gather(
        *(
            remote.post(
                f"{a.url}/inbox", like(remote, u), key_id=f"{u}#main-key", private_key=wrong
            )
            for u in strangers
        )
    )
    assert {status for status, _ in answers} == {401}
    assert usage(a) == before, "documents fetched for failed signatures are not kept"
    assert rows(a) == stored
    assert a.app is not None
    assert a.app[FEDERATION].directory.document(honest) is not None, "others unaffected"


async def alice_and_mallory(node_factory: NodeFactory, remote: FakeActorServer) -> tuple[Node, str]:
    """Node A with alice, and mallory on the hostile server."""
    a = await node_factory("a", **FAST)
    await a.user("alice")
    return a, remote.actor("mallory")


async def test_signature_made_for_another_host_is_refused(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a, mallory = await alice_and_mallory(node_factory, remote)
    before = rows(a)
    # a Follow signed for node `other.example` (say captured there), replayed to A
    for other in (
        "http://other.example/inbox",
        a.url.replace("127.0.0.1", "127.0.0.1.evil.example") + "/inbox",
    ):
        status, text = await remote.post(
            f"{a.url}/inbox",
            follow(remote, mallory, a),
            key_id=f"{mallory}#main-key",
            signed_url=other,
        )
        assert status == 401, text
        assert "made for" in text
    assert rows(a) == before
    assert usage(a) == (0, 0)
    # the same Follow signed for A is accepted: the refusal was about the host
    status, text = await remote.post(
        f"{a.url}/inbox", follow(remote, mallory, a), key_id=f"{mallory}#main-key"
    )
    assert status == 202, text
    assert rows(a)[1] == before[1] + 1


async def test_activity_id_on_another_host_is_refused(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a, mallory = await alice_and_mallory(node_factory, remote)
    before = rows(a)
    for forged_id in (
        f"{a.url}/activities/planted",  # an id on the receiving node itself
        "https://victim.example/activities/1",
        f"{remote.url.replace('127.0.0.1', 'localhost')}/activities/2",
    ):
        activity = follow(remote, mallory, a, id=forged_id)
        status, text = await remote.post(f"{a.url}/inbox", activity, key_id=f"{mallory}#main-key")
        assert status == 400, text
        assert "not on its actor's host" in text
    assert rows(a) == before
    assert a.app is not None
    # the forged id was not recorded: the real activity of that id is not shadowed as a replay
    assert a.app[FEDERATION].seen.mark_seen("https://victim.example/activities/1", 0) is True


async def test_refused_remote_joins_leave_no_room_in_memory(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice = await a.user("alice")
    bob = await b.user("bob")
    closed = []
    for i in range(5):
        _, room = await alice.call(
            "POST", "/api/rooms", {"title": f"Closed {i}", "join_mode": "closed"}
        )
        closed.append(room["url"])
    assert b.app is not None
    remote_rooms = b.app[NODE].remote_rooms

    async def attempt(url: str) -> int:
        status, _ = await bob.call("POST", "/api/remote-rooms", {"url": url})
        return status

    statuses = await asyncio.gather(*(attempt(closed[i % 5]) for i in range(50)))
    assert set(statuses) == {403}
    assert remote_rooms.open_rooms() == []
    # a room that does not exist, and a node that does not answer: nothing kept either
    gone = [f"{a.url}/rooms/nope", "http://127.0.0.1:9/rooms/x"]
    statuses = await asyncio.gather(*(attempt(url) for url in gone))
    assert all(status in (403, 409) for status in statuses)
    assert remote_rooms.open_rooms() == []
    # an open room still works for bob afterwards
    _, room = await alice.call("POST", "/api/rooms", {"title": "Open"})
    await alice.call("POST", f"/api/rooms/{room['id']}/join")
    status, body = await bob.call("POST", "/api/remote-rooms", {"url": room["url"]})
    assert status == 200, body
    assert len(remote_rooms.open_rooms()) == 1
