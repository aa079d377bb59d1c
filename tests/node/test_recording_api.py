"""Issue #14 through the real API: the room field, policy, quota, marks, toggle, sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.app import NODE
from media.ogg import EOS, parse_pages
from tests.support.audio import RATE, decode_ogg
from tests.support.chat import RoomSocket
from tests.support.network import eventually
from tests.support.nodes import Node, NodeFactory

pytestmark = pytest.mark.timeout(60)


def ws_url(node: Node, room_id: str) -> str:
    return f"{node.url}/api/rooms/{room_id}/ws"


async def sidecar_of(node: Node, room_id: str) -> dict:
    path = node.settings.replay_path / f"{room_id}.json"

    async def written() -> bool:
        return path.exists()

    await eventually(written, 10)
    data: dict = json.loads(path.read_text())
    return data


async def test_refused_when_the_operator_forbids(node_factory: NodeFactory) -> None:
    node = await node_factory(recording_allowed=False)
    alice = await node.user("alice")
    status, body = await alice.call("POST", "/api/rooms", {"title": "T", "record": True})
    assert (status, body) == (403, {"error": "recording is turned off on this node"})
    status, room = await alice.call("POST", "/api/rooms", {"title": "T"})
    assert status == 201 and room["recording"] is False
    status, body = await alice.call("PATCH", f"/api/rooms/{room['id']}", {"record": True})
    assert status == 403 and body["error"] == "recording is turned off on this node"


async def test_record_field_is_checked(node: Node) -> None:
    alice = await node.user("alice")
    status, body = await alice.call("POST", "/api/rooms", {"title": "T", "record": "yes"})
    assert (status, body) == (400, {"error": "record must be true or false"})
    status, room = await alice.call("POST", "/api/rooms", {"title": "T", "record": True})
    assert status == 201 and room["recording"] is True


async def test_quota_stops_recording_and_refuses_the_next(node_factory: NodeFactory) -> None:
    node = await node_factory(replay_quota_bytes_per_user=2000, replay_flush_seconds=0.1)
    alice = await node.user("alice")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Q", "record": True})
    sock = await RoomSocket.open(alice.http, ws_url(node, room["id"]))
    assert sock.state["recording"] is True
    stopped = await sock.wait_for(lambda m: m.get("event") == "recording", timeout=30)
    assert stopped["recording"] is False and stopped["reason"] == "quota"
    status, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert view["status"] == "live" and view["recording"] is False  # the room goes on
    status, body = await alice.call("POST", "/api/rooms", {"title": "Q2", "record": True})
    assert status == 409 and body["error"].startswith("replay quota reached: ")
    path = node.settings.replay_path / f"{room['id']}.ogg"
    assert path.stat().st_size <= 2000 + 64  # at most the EOS page past the limit
    assert decode_ogg(path).size > 0
    await sock.ws.close()


async def test_marks_chat_toggle_and_sidecar(node_factory: NodeFactory) -> None:
    node = await node_factory(replay_flush_seconds=0.1)
    alice = await node.user("alice")
    bob = await node.user("bob")
    _, room = await alice.call("POST", "/api/rooms", {"title": "M", "record": True})
    rid = room["id"]
    host = await RoomSocket.open(alice.http, ws_url(node, rid))
    guest = await RoomSocket.open(bob.http, ws_url(node, rid))
    assert guest.state["recording"] is True
    reply = await host.request({"type": "chat", "text": "hello ✨ رمضان"})
    assert reply["type"] == "reply"
    status, chapter = await alice.call("POST", f"/api/rooms/{rid}/mark", {"title": "Intro 🎙"})
    assert status == 201 and chapter["title"] == "Intro 🎙"
    status, body = await bob.call("POST", f"/api/rooms/{rid}/mark", {"title": "x"})
    assert status == 403
    status, _ = await alice.call("PATCH", f"/api/rooms/{rid}", {"record": False})
    assert status == 200
    await guest.wait_for(lambda m: m.get("event") == "recording" and not m["recording"])
    status, body = await alice.call("POST", f"/api/rooms/{rid}/mark", {"title": "off"})
    assert (status, body) == (409, {"error": "the room is not being recorded"})
    status, _ = await alice.call("PATCH", f"/api/rooms/{rid}", {"record": True})
    assert status == 200
    status, _ = await alice.call("POST", f"/api/rooms/{rid}/mark", {"title": "Second"})
    assert status == 201
    status, _ = await alice.call("POST", f"/api/rooms/{rid}/end")
    assert status == 200
    sidecar = await sidecar_of(node, rid)
    assert [c["title"] for c in sidecar["chapters"]] == ["Intro 🎙", "Second"]
    assert [m["text"] for m in sidecar["chat"]] == ["hello ✨ رمضان"]
    assert 0 <= sidecar["chat"][0]["at"] <= sidecar["duration"]
    ogg = node.settings.replay_path / f"{rid}.ogg"
    pages = list(parse_pages(ogg.read_bytes()))
    assert pages[-1].flags & EOS and sum(1 for p in pages if p.flags & EOS) == 1
    duration = len(decode_ogg(ogg)) / RATE
    assert abs(duration - sidecar["duration"]) <= 0.1
    row = node.app[NODE].recording.store.get(rid)
    assert row is not None and row.status == "ready"


async def test_admin_lists_and_deletes(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = await node_factory(replay_flush_seconds=0.1)
    alice = await node.user("alice")
    _, room = await alice.call("POST", "/api/rooms", {"title": "D", "record": True})
    await alice.call("POST", f"/api/rooms/{room['id']}/end")
    await sidecar_of(node, room["id"])
    library = node.app[NODE].recording.library
    assert [r.room_id for r in library.list()] == [room["id"]]
    library.delete(room["id"])
    assert not (node.settings.replay_path / f"{room['id']}.ogg").exists()
    assert library.list() == []


async def test_scheduled_room_over_quota_at_start_goes_on_unrecorded(
    node_factory: NodeFactory,
) -> None:
    node = await node_factory(replay_quota_bytes_per_user=200_000, replay_flush_seconds=0.1)
    alice = await node.user("alice")
    when = node.app[NODE].rooms.clock.now() + 3600
    status, room = await alice.call(
        "POST", "/api/rooms", {"title": "Later", "record": True, "start_time": when}
    )
    assert status == 201 and room["recording"] is True
    # meanwhile the host's other replays use the quota up
    store = node.app[NODE].recording.store
    store.begin("other", 1, "Other", 0.0)
    store.finish("other", 199_000, 10.0, 1.0)
    status, _ = await alice.call("POST", f"/api/rooms/{room['id']}/start")
    assert status == 200
    status, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert view["status"] == "live" and view["recording"] is False
