"""Issue #14 end to end: both halves together. A real ``salon bot host --record-room``
process records its room (440 Hz, then 880 Hz); when the bot leaves, the room ends, the
recorder finishes the file and tells ``ReplayService.finished``: the replay is served with
byte ranges, its page document has duration, speakers and (once decoded) peaks, and the
room's ``Event`` carries the ``Audio`` attachment, so bob on a second node gets a card."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import two_tones
from tests.support.cli import bot_room_url, creds, salon
from tests.support.network import FAST, eventually, follow_accepted
from tests.support.nodes import ApiUser, NodeFactory
from tests.support.replays import document_with_peaks

pytestmark = pytest.mark.timeout(150)
AS2 = "application/activity+json"


async def raw(user: ApiUser, path: str, headers: dict[str, str] | None = None) -> Any:
    async with user.http.get(user.base + path, headers=headers or {}) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


async def test_recorded_room_becomes_a_federated_replay(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    a = await node_factory("a", ice_addresses=("127.0.0.1",), **FAST)
    b = await node_factory("b", **FAST)
    alice = await (await a.user()).signup("alice")
    bob = await (await b.user()).signup("bob")
    await follow_accepted(bob, alice, a)

    host = await salon(
        "bot", "host", *creds(a, "alice"), "--title", "Recorded", "--record-room",
        "--play", str(two_tones(tmp_path / "tones.wav", seconds=3.0)), "--seconds", "7",
    )  # fmt: skip
    room = (await bot_room_url(host)).rsplit("/", 1)[1]
    _out, err = await asyncio.wait_for(host.communicate(), 60)
    assert host.returncode == 0, err.decode()

    async def ready() -> dict[str, Any] | None:
        status, view = await alice.call("GET", f"/api/rooms/{room}")
        return view.get("replay") if status == 200 else None

    replay = await eventually(ready)
    assert replay["audio"].endswith(f"/rooms/{room}/replay.ogg") and replay["duration"] > 5

    status, headers, first = await raw(alice, f"/rooms/{room}/replay.ogg", {"Range": "bytes=0-99"})
    assert status == 206 and len(first) == 100 and first.startswith(b"OggS")
    assert headers["Content-Range"].startswith("bytes 0-99/")

    doc = await document_with_peaks(alice, f"/api/rooms/{room}/replay")
    assert doc["duration"] == replay["duration"] and doc["peaks"]
    assert [s["user"].split("@")[0] for s in doc["speakers"]] == ["alice"]

    _, _, body = await raw(alice, f"/rooms/{room}", {"Accept": AS2})
    (audio,) = json.loads(body)["attachment"]
    assert audio["type"] == "Audio" and audio["url"] == f"{a.url}/rooms/{room}/replay.ogg"

    async def card() -> dict[str, Any] | None:
        _, hallway = await bob.call("GET", "/api/hallway")
        remote = [c for c in hallway["replays"] if c.get("remote")]
        return remote[0] if remote else None

    found = await eventually(card)
    assert found["title"] == "Recorded" and found["replay"]["duration"] == replay["duration"]
