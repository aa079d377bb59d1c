"""Replays across two real nodes: when alice's recorded room on A ends with its replay
ready, A sends followers an ``Update`` whose ``Event`` has an ``Audio`` attachment; bob on
B sees a replay card and plays it through B (JSON and byte ranges proxied; the origin never
sees bob's client); deleting the replay sends an ``Update`` without it and the card goes."""

from __future__ import annotations

import json
from typing import Any

import pytest

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
