"""Replays through real HTTP: ranges, the page's JSON, delete, trim, the hallway card."""

from __future__ import annotations

import io

import av
import pytest
from multidict import CIMultiDict

from cli.app import NODE
from media import ogg
from tests.support.nodes import ApiUser, Node
from tests.support.replays import document_with_peaks, ended_room_with_replay

pytestmark = pytest.mark.timeout(60)


async def get_bytes(
    user: ApiUser, path: str, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    async with user.http.get(user.base + path, headers=headers or {}) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


async def test_range_requests_on_the_replay(node: Node) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    path = f"/rooms/{room}/replay.ogg"
    status, headers, whole = await get_bytes(alice, path)
    assert status == 200 and headers["Content-Type"] == "audio/ogg"
    assert headers["Accept-Ranges"] == "bytes" and headers["ETag"] and headers["Last-Modified"]
    size = len(whole)
    assert ogg.read_opus(whole).duration == 20.0

    status, headers, first = await get_bytes(alice, path, {"Range": "bytes=0-99"})
    assert status == 206 and first == whole[:100]
    assert headers["Content-Range"] == f"bytes 0-99/{size}"
    status, headers, middle = await get_bytes(alice, path, {"Range": "bytes=40000-40999"})
    assert status == 206 and middle == whole[40000:41000]
    status, headers, tail = await get_bytes(alice, path, {"Range": "bytes=-500"})
    assert status == 206 and tail == whole[-500:]
    assert headers["Content-Range"] == f"bytes {size - 500}-{size - 1}/{size}"
    status, headers, rest = await get_bytes(alice, path, {"Range": f"bytes={size - 10}-"})
    assert status == 206 and rest == whole[-10:]
    status, headers, body = await get_bytes(alice, path, {"Range": f"bytes={size}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
    # If-Range with a stale validator: the whole file, not the range
    status, _, body = await get_bytes(alice, path, {"Range": "bytes=0-9", "If-Range": '"old"'})
    assert status == 200 and len(body) == size
    status, _, _ = await get_bytes(alice, path, {"If-None-Match": headers["ETag"]})
    assert status == 304
    async with alice.http.head(alice.base + path, headers={"Range": "bytes=0-9"}) as resp:
        assert resp.status == 206 and resp.headers["Content-Length"] == "10"
        assert await resp.read() == b""


async def test_download_has_a_safe_file_name(node: Node) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice, title='Ünïcode "talk"/../x\u202e')
    status, headers, _ = await get_bytes(alice, f"/rooms/{room}/replay.ogg?download=1")
    assert status == 200
    assert headers["Content-Disposition"] == 'attachment; filename="Unicode talk..x.ogg"'


async def test_replay_document_and_room_view(node: Node) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    doc = await document_with_peaks(alice, f"/api/rooms/{room}/replay")
    assert doc["duration"] == 20.0 and doc["can_edit"] is True
    assert [c["title"] for c in doc["chapters"]] == ["Opening", "Octave up"]
    assert doc["speakers"][0]["user"].startswith("alice@") and doc["chat"][0]["text"] == "hello"
    assert len(doc["peaks"]) == 1000 and max(doc["peaks"]) > 0.4
    assert doc["audio"].endswith(f"/rooms/{room}/replay.ogg")
    assert (node.settings.replay_path / f"{room}.peaks.json").exists()
    status, view = await alice.call("GET", f"/api/rooms/{room}")
    assert view["replay"] == {
        "url": f"{node.url}/rooms/{room}/replay",
        "audio": f"{node.url}/rooms/{room}/replay.ogg",
        "duration": 20.0,
    }
    status, page = await alice.call("GET", f"/rooms/{room}/replay")
    assert status == 200 and "Replay: Tones" in page


async def test_hallway_shows_replay_cards_of_followed_hosts(node: Node) -> None:
    alice, bob = await node.user("alice"), await node.user("bob")
    room = await ended_room_with_replay(node, alice)
    status, hallway = await bob.call("GET", "/api/hallway")
    assert status == 200 and hallway["replays"] == []
    await bob.call("POST", "/api/users/alice/follow")
    _status, hallway = await bob.call("GET", "/api/hallway")
    assert [c["id"] for c in hallway["replays"]] == [room]
    assert hallway["replays"][0]["replay"]["duration"] == 20.0


async def test_trim_then_ranges_serve_the_trimmed_file(node: Node) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    status, doc = await alice.call(
        "POST", f"/api/rooms/{room}/replay/trim", {"start": 5, "end": 15}
    )
    assert status == 200, doc
    assert doc["duration"] == 10.0 and doc["trim"] == {"start": 5.0, "end": 15.0}
    doc = await document_with_peaks(alice, f"/api/rooms/{room}/replay")  # decoded again
    assert len(doc["peaks"]) == 1000 and doc["duration"] == 10.0
    assert [c["title"] for c in doc["chapters"]] == ["Octave up"]
    assert doc["chapters"][0]["at"] == 5.0
    status, _, whole = await get_bytes(alice, f"/rooms/{room}/replay.ogg")
    with av.open(io.BytesIO(whole)) as container:
        seconds = sum(f.samples for f in container.decode(audio=0)) / 48_000
    assert seconds == pytest.approx(10.0, abs=0.01)
    status, _headers, tail = await get_bytes(
        alice, f"/rooms/{room}/replay.ogg", {"Range": "bytes=-100"}
    )
    assert status == 206 and tail == whole[-100:]
    parts = node.app[NODE]  # type: ignore[index]
    assert parts.replays.store.get(room).bytes == len(whole)  # type: ignore[union-attr]


async def test_delete_replay_removes_the_file(node: Node) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    status, body = await alice.call("DELETE", f"/api/rooms/{room}/replay")
    assert status == 200 and body == {"deleted": True}
    assert not (node.settings.replay_path / f"{room}.ogg").exists()
    assert not (node.settings.replay_path / f"{room}.json").exists()
    status, body = await alice.call("GET", f"/rooms/{room}/replay.ogg")
    assert status == 404 and body == {"error": "this room has no replay"}
    status, view = await alice.call("GET", f"/api/rooms/{room}")
    assert "replay" not in view
    status, body = await alice.call("DELETE", f"/api/rooms/{room}/replay")
    assert status == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"start": "0", "end": 5}, "start must be a number of seconds"),
        ({"start": 0, "end": None}, "end must be a number of seconds"),
        ({"start": 5, "end": 5}, "trim needs"),
        ({"start": 25, "end": 30}, "trim needs"),
        ({"start": -1, "end": 5}, "start must be between"),
        ({"start": True, "end": 5}, "start must be a number"),
    ],
)
async def test_trim_bad_input_changes_nothing(node: Node, body: dict, message: str) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    before = (node.settings.replay_path / f"{room}.ogg").read_bytes()
    status, err = await alice.call("POST", f"/api/rooms/{room}/replay/trim", body)
    assert status == 400 and message in err["error"]
    assert (node.settings.replay_path / f"{room}.ogg").read_bytes() == before


async def test_operator_removal_of_any_replay(node: Node) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    replays = node.app[NODE].replays  # type: ignore[index]
    assert await replays.remove(room, "retention") is True
    assert await replays.remove(room, "retention") is False
    assert await replays.remove("../etc", "retention") is False
    assert not (node.settings.replay_path / f"{room}.ogg").exists()
    assert replays.store.get(room).status == "deleted"


async def test_retention_sweep_removes_only_expired_replays(node: Node) -> None:
    alice = await node.user("alice")
    room = await ended_room_with_replay(node, alice)
    replays = node.app[NODE].replays  # type: ignore[index]
    assert await replays.sweep(0) == 0  # 0 = keep for ever
    assert await replays.sweep(365) == 0  # ended just now: kept
    assert (node.settings.replay_path / f"{room}.ogg").exists()
    assert await replays.sweep(1e-9) == 1  # ended before "now − 86 µs": swept
    assert not (node.settings.replay_path / f"{room}.ogg").exists()
    assert replays.store.get(room).status == "deleted"
    assert await replays.sweep(1e-9) == 0  # a deleted replay is not swept twice
    status, _ = await alice.call("GET", f"/rooms/{room}/replay.ogg")
    assert status == 404
