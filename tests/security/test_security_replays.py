"""Hostile users and nodes against replays: each attack is refused and changes nothing
(docs/security.md, "Replays")."""

from __future__ import annotations

import asyncio
import io
import json

import av
import pytest

from cli.app import NODE
from federation.as2 import ActivityError
from federation.events import Event
from media import ogg
from tests.support.nodes import ApiUser, Node, NodeFactory
from tests.support.replays import ended_room_with_replay, tone_packets

pytestmark = pytest.mark.timeout(60)


async def status_of(user: ApiUser, path: str, headers: dict[str, str] | None = None) -> int:
    async with user.http.get(user.base + path, headers=headers or {}) as resp:
        await resp.read()
        return resp.status


@pytest.mark.parametrize(
    "path",
    [
        "/rooms/..%2F..%2Fsalon.db/replay.ogg",
        "/rooms/%2e%2e/replay.ogg",
        "/rooms/..%5Csalon.db/replay.ogg",
        "/rooms/%00/replay.ogg",
        "/api/rooms/..%2Fsalon/replay",
        "/rooms/" + "a" * 300 + "/replay.ogg",
    ],
)
async def test_path_traversal_finds_nothing(node: Node, path: str) -> None:
    alice = await node.user("alice")
    await ended_room_with_replay(node, alice)
    (node.settings.replay_path / "salon.ogg").write_bytes(b"secret")
    assert await status_of(alice, path) in (400, 404)


@pytest.mark.parametrize(
    ("header", "status", "length"),
    [
        ("bytes=-99999999999999999999999", 206, "all"),
        ("bytes=99999999999999999999-", 416, None),
        ("bytes=--5", 200, "all"),
        ("bytes=-5-", 200, "all"),
        ("bytes=0-1," * 500 + "0-1", 200, "all"),
        ("bytes=" + "9" * 4000 + "-", 200, "all"),
        ("bytes=5-2", 200, "all"),
        ("bytes=\u00b2-5", 200, "all"),
    ],
)
async def test_hostile_ranges(node: Node, header: str, status: int, length: str | None) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    size = (node.settings.replay_path / f"{room}.ogg").stat().st_size
    async with alice.http.get(
        f"{node.url}/rooms/{room}/replay.ogg", headers={"Range": header}
    ) as resp:
        body = await resp.read()
        assert resp.status == status
        if length == "all":
            assert len(body) == size


async def test_others_cannot_trim_or_delete(node: Node) -> None:
    alice, bob = await node.user("alice"), await node.user("bob")
    anon = await node.user()
    room = await ended_room_with_replay(node, alice)
    before = (node.settings.replay_path / f"{room}.ogg").read_bytes()
    status, body = await bob.call("DELETE", f"/api/rooms/{room}/replay")
    assert status == 403 and body == {"error": "only the room's host may change its replay"}
    status, _ = await bob.call("POST", f"/api/rooms/{room}/replay/trim", {"start": 0, "end": 1})
    assert status == 403
    status, body = await anon.call("DELETE", f"/api/rooms/{room}/replay")
    assert status == 401
    assert (node.settings.replay_path / f"{room}.ogg").read_bytes() == before
    status, doc = await bob.call("GET", f"/api/rooms/{room}/replay")
    assert status == 200 and doc["can_edit"] is False


async def test_deleted_replay_is_gone_everywhere(node: Node) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    assert (await alice.call("DELETE", f"/api/rooms/{room}/replay"))[0] == 200
    assert await status_of(alice, f"/rooms/{room}/replay.ogg") == 404
    assert await status_of(alice, f"/api/rooms/{room}/replay") == 404
    status, _ = await alice.call("POST", f"/api/rooms/{room}/replay/trim", {"start": 0, "end": 1})
    assert status == 404
    _, hallway = await alice.call("GET", "/api/hallway")
    assert hallway["replays"] == []


async def test_concurrent_deletes_succeed_once(node: Node) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    results = await asyncio.gather(
        *(alice.call("DELETE", f"/api/rooms/{room}/replay") for _ in range(6))
    )
    assert sorted(status for status, _ in results) == [200, 404, 404, 404, 404, 404]


async def test_concurrent_trims_and_a_delete_leave_a_consistent_state(node: Node) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    calls = [
        alice.call("POST", f"/api/rooms/{room}/replay/trim", {"start": 1, "end": 19}),
        alice.call("POST", f"/api/rooms/{room}/replay/trim", {"start": 2, "end": 12}),
        alice.call("POST", f"/api/rooms/{room}/replay/trim", {"start": 0, "end": 5}),
    ]
    results = await asyncio.gather(*calls)
    assert all(status in (200, 400) for status, _ in results), results
    path = node.settings.replay_path / f"{room}.ogg"
    data = path.read_bytes()
    stored = node.app[NODE].replays.store.get(room)  # type: ignore[index]
    assert stored is not None and stored.bytes == len(data)
    assert ogg.read_opus(data).duration == stored.duration
    with av.open(io.BytesIO(data)) as container:
        seconds = sum(f.samples for f in container.decode(audio=0)) / 48_000
    assert seconds == pytest.approx(stored.duration, abs=0.01)
    trims = [alice.call("POST", f"/api/rooms/{room}/replay/trim", {"start": 0, "end": 1})]
    outcome = await asyncio.gather(alice.call("DELETE", f"/api/rooms/{room}/replay"), *trims)
    assert outcome[0][0] == 200 and outcome[1][0] in (200, 404)
    assert not path.exists() and not list(node.settings.replay_path.glob(".*tmp"))


async def test_odd_unicode_and_hostile_sidecar_entries(node: Node) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    side = node.settings.replay_path / f"{room}.json"
    data = json.loads(side.read_text())
    data["chapters"] = [
        {"at": 1, "title": "\u202eevil\u200b <script>alert(1)</script> 🎙️"},
        {"at": 2, "title": "x" * 10_000},
        {"at": "NaN", "title": "bad time"},
        {"at": -5, "title": "negative"},
        {"at": 3, "title": None},
        "not an object",
    ]
    data["speakers"] = [{"user": "a", "start": 5, "end": 1}, {"user": 7, "start": 0, "end": 1}]
    side.write_text(json.dumps(data))
    status, doc = await alice.call("GET", f"/api/rooms/{room}/replay")
    assert status == 200
    assert [c["at"] for c in doc["chapters"]] == [1.0, 2.0]
    assert doc["chapters"][0]["title"].startswith("\u202eevil")
    assert len(doc["chapters"][1]["title"]) == 200
    assert doc["speakers"] == []


async def test_private_rooms_replays_are_refused(node: Node) -> None:
    alice, bob, carol = await node.user("alice"), await node.user("bob"), await node.user("carol")
    anon = await node.user()
    social = await ended_room_with_replay(node, alice, join_mode="social")
    closed = await ended_room_with_replay(node, alice, join_mode="closed")
    opened = await ended_room_with_replay(node, alice)
    await alice.call("POST", "/api/users/bob/follow")  # alice follows bob: bob may hear
    for path in (f"/rooms/{social}/replay.ogg", f"/api/rooms/{social}/replay"):
        assert await status_of(anon, path) == 404
        assert await status_of(carol, path) == 404
        assert await status_of(bob, path) == 200
        assert await status_of(alice, path) == 200
    for who in (anon, bob, carol):
        assert await status_of(who, f"/rooms/{closed}/replay.ogg") == 404
    status, view = await carol.call("GET", f"/api/rooms/{social}")
    assert status == 200 and "replay" not in view
    # blocked by the host: even the open room's replay is refused
    assert await status_of(carol, f"/rooms/{opened}/replay.ogg") == 200
    assert (await alice.call("POST", "/api/users/carol/block"))[0] == 200
    assert await status_of(carol, f"/rooms/{opened}/replay.ogg") == 404
    assert await status_of(carol, f"/api/rooms/{opened}/replay") == 404


async def test_live_room_has_no_replay_yet(node: Node) -> None:
    alice = await node.user("alice")
    status, room = await alice.call("POST", "/api/rooms", {"title": "Live"})
    assert status == 201
    node.app[NODE].replays.store.begin(room["id"], 1, "Live", 0.0)  # type: ignore[index]
    assert await status_of(alice, f"/rooms/{room['id']}/replay.ogg") == 404


async def test_remote_replay_proxy_is_not_an_open_proxy(node_factory: NodeFactory) -> None:
    node = await node_factory("a", testnet=True)
    bob = await node.user("bob")
    anon = await node.user()
    target = "http://169.254.169.254/latest/meta-data"
    assert await status_of(anon, f"/api/remote-replay/audio?url={target}") == 401
    assert await status_of(bob, f"/api/remote-replay/audio?url={target}") == 404
    assert await status_of(bob, f"/api/remote-replay?url={target}") == 404
    # a stored room whose attachment points at another host is not played
    parts = node.app[NODE]  # type: ignore[index]
    fed = parts.federation
    host_id = fed.actors.upsert_actor(
        actor_uri="https://evil.example/u/m", username="mallory", domain="evil.example",
        display_name="", bio="", locked=False, inbox="https://evil.example/inbox",
        shared_inbox=None, document={}, now=0.0,
    )  # fmt: skip
    bob_user = fed.users.by_name("bob")
    assert bob_user is not None
    fed.follows.put(bob_user.id, host_id, "accepted", 0.0)
    uri = "https://evil.example/rooms/r1"
    document = {
        "id": uri, "type": "Event", "name": "x", "joinMode": "open", "status": "ended",
        "attachment": [{"type": "Audio", "mediaType": "audio/ogg", "url": target}],
    }  # fmt: skip
    fed.remote_rooms.put_room(uri, host_id, "ended", document, parts.replays.clock.now())
    _, hallway = await bob.call("GET", "/api/hallway")
    assert hallway["replays"] == []
    assert await status_of(bob, f"/api/remote-replay/audio?url={uri}") == 404
    # not vacuous: the same room with its audio on its own host does get a card
    document["attachment"][0]["url"] = "https://evil.example/rooms/r1/replay.ogg"
    fed.remote_rooms.put_room(uri, host_id, "ended", document, parts.replays.clock.now())
    _, hallway = await bob.call("GET", "/api/hallway")
    assert [card["id"] for card in hallway["replays"]] == [uri]


@pytest.mark.parametrize(
    ("attachment", "message"),
    [
        ({"type": "Audio", "url": "https://a.example/r.ogg", "duration": "PT-5S"}, "xsd:duration"),
        ({"type": "Audio", "url": "https://a.example/r.ogg", "duration": "P"}, "xsd:duration"),
        ({"type": "Audio", "url": "https://a.example/r.ogg", "duration": 5}, "xsd:duration"),
        ({"type": "Audio", "url": "javascript:alert(1)"}, "Audio.url"),
        ({"type": "Audio"}, "Audio.url is required"),
    ],
)
def test_hostile_audio_attachments_are_refused(attachment: object, message: str) -> None:
    event = {
        "id": "https://a.example/rooms/1", "type": "Event", "name": "x",
        "attributedTo": "https://a.example/users/a", "attachment": [attachment],
    }  # fmt: skip
    with pytest.raises(ActivityError, match=message):
        Event.parse(event)


def test_many_attachments_are_capped() -> None:
    audio = {"type": "Audio", "url": "https://a.example/r.ogg", "duration": "PT1H2M3.5S"}
    event = Event.parse(
        {
            "id": "https://a.example/rooms/1",
            "type": "Event",
            "name": "x",
            "attributedTo": "https://a.example/users/a",
            "attachment": [audio] * 10_000,
        }
    )
    assert len(event.attachments) == 10 and event.attachments[0].duration == 3723.5


async def test_a_client_dropping_mid_answer_is_not_an_error(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice, seconds_each=1.0)
    hour = ogg.write_opus(tone_packets(1.0, 440) * 3600)  # 14 MB: more than socket buffers
    (node.settings.replay_path / f"{room}.ogg").write_bytes(hour)
    for _ in range(3):
        async with alice.http.get(f"{node.url}/rooms/{room}/replay.ogg") as resp:
            await resp.content.read(1000)  # then close: the player seeked elsewhere
    await asyncio.sleep(0.2)
    assert await status_of(alice, f"/rooms/{room}/replay.ogg") == 200
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
