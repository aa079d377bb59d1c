"""Replays across two real nodes: when alice's recorded room on A ends with its replay
ready, A sends followers an ``Update`` whose ``Event`` has an ``Audio`` attachment; bob on
B sees a replay card and plays it through B (JSON and byte ranges proxied; the origin never
sees bob's client); deleting the replay sends an ``Update`` without it and the card goes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cli.app import NODE
from tests.support.network import FAST, eventually, follow_accepted
from tests.support.nodes import ApiUser, NodeFactory
from tests.support.replays import document_with_peaks, ended_room_with_replay

pytestmark = pytest.mark.timeout(90)
AS2 = "application/activity+json"


async def raw(user: ApiUser, path: str, headers: dict[str, str] | None = None) -> Any:
    async with user.http.get(user.base + path, headers=headers or {}) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


async def test_remote_user_sees_and_plays_a_replay(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice = await (await a.user()).signup("alice")
    bob = await (await b.user()).signup("bob")
    await follow_accepted(bob, alice, a)
    room = await ended_room_with_replay(node=a, host=alice)

    status, _, body = await raw(alice, f"/rooms/{room}", {"Accept": AS2})
    event = json.loads(body)
    assert event["status"] == "ended"
    assert event["attachment"] == [
        {
            "type": "Audio",
            "mediaType": "audio/ogg",
            "url": f"{a.url}/rooms/{room}/replay.ogg",
            "duration": "PT20S",
            "name": "Tones",
        }
    ]

    async def card() -> dict[str, Any] | None:
        _, hallway = await bob.call("GET", "/api/hallway")
        remote = [c for c in hallway["replays"] if c.get("remote")]
        return remote[0] if remote else None

    found = await eventually(card)
    assert found["title"] == "Tones" and found["replay"]["duration"] == 20.0
    doc = await document_with_peaks(
        bob, "/api/remote-replay?" + found["replay"]["url"].split("?")[1]
    )
    assert doc["duration"] == 20.0 and len(doc["peaks"]) == 1000
    assert [c["title"] for c in doc["chapters"]] == ["Opening", "Octave up"]
    assert doc["audio"] == found["replay"]["audio"] and doc["audio"].startswith("/api/")

    _, _, origin = await raw(alice, f"/rooms/{room}/replay.ogg")
    status, headers, first = await raw(bob, doc["audio"], {"Range": "bytes=0-99"})
    assert status == 206 and first == origin[:100]
    assert headers["Content-Range"] == f"bytes 0-99/{len(origin)}"
    status, _, tail = await raw(bob, doc["audio"], {"Range": "bytes=-300"})
    assert status == 206 and tail == origin[-300:]
    status, _, middle = await raw(bob, doc["audio"], {"Range": "bytes=30000-"})
    assert status == 206 and middle == origin[30000:]
    status, headers, _ = await raw(bob, doc["audio"], {"Range": f"bytes={len(origin)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(origin)}"

    # the host deletes it: an Update without the attachment; the card goes
    assert (await alice.call("DELETE", f"/api/rooms/{room}/replay"))[0] == 200

    async def card_gone() -> bool:
        return await card() is None

    await eventually(card_gone)
    status, _ = await bob.call("GET", "/api/remote-replay?url=" + f"{a.url}/rooms/{room}")
    assert status == 404


async def test_social_room_replay_follows_the_rule_across_nodes(node_factory: NodeFactory) -> None:
    """alice's social room: bob (whom alice follows back) plays its replay through B, his
    GETs signed with his own key; carol (not followed by alice) gets neither a card nor
    the audio — refused by B, and by A when B is made to ask anyway."""
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice = await (await a.user()).signup("alice")
    bob = await (await b.user()).signup("bob")
    carol = await (await b.user()).signup("carol")
    await follow_accepted(bob, alice, a)
    await follow_accepted(carol, alice, a)
    await follow_accepted(alice, bob, b)
    room = await ended_room_with_replay(a, alice, join_mode="social")
    uri = f"{a.url}/rooms/{room}"

    async def card() -> dict[str, Any] | None:
        _, hallway = await bob.call("GET", "/api/hallway")
        return hallway["replays"][0] if hallway["replays"] else None

    found = await eventually(card)
    doc = await document_with_peaks(
        bob, "/api/remote-replay?" + found["replay"]["url"].split("?")[1]
    )
    _, _, origin = await raw(alice, f"/rooms/{room}/replay.ogg")
    status, _, first = await raw(bob, doc["audio"], {"Range": "bytes=0-99"})
    assert status == 206 and first == origin[:100]
    # anonymous on A: refused; carol on B: no card, no audio
    assert (await raw(await a.user(), f"/rooms/{room}/replay.ogg"))[0] == 404
    _, hallway = await carol.call("GET", "/api/hallway")
    assert hallway["replays"] == []
    assert (await raw(carol, doc["audio"]))[0] == 404
    # B wrongly believing alice follows carol: A still refuses carol's signed GET
    fed = b.app[NODE].federation  # type: ignore[index]
    carol_user, alice_user = (
        fed.users.by_name("carol"),
        fed.users.by_actor_uri(f"{a.url}/users/alice"),
    )
    fed.follows.put(alice_user.id, carol_user.id, "accepted", 0.0)
    status, body = await carol.call("GET", f"/api/remote-replay?url={uri}")
    assert status == 404 and body == {"error": "no such replay"}
    status, _, _ = await raw(carol, doc["audio"], {"Range": "bytes=0-99"})
    assert status == 404
