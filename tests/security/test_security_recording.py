"""Attacks on recording (issue #14): who may record and mark, odd input, paths, quotas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.app import NODE
from node.errors import DomainError
from tests.support.chat import RoomSocket
from tests.support.cli import run_cli
from tests.support.nodes import Node, NodeFactory

pytestmark = pytest.mark.timeout(60)


async def test_only_the_host_turns_recording_on(node: Node) -> None:
    alice = await node.user("alice")
    mallory = await node.user("mallory")
    _, room = await alice.call("POST", "/api/rooms", {"title": "R"})
    await mallory.call("POST", f"/api/rooms/{room['id']}/join")
    status, body = await mallory.call("PATCH", f"/api/rooms/{room['id']}", {"record": True})
    assert status == 403
    status, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert view["recording"] is False
    # a moderator may edit the title but not the recording
    await alice.call("POST", f"/api/rooms/{room['id']}/make_moderator", {"user": "mallory"})
    status, body = await mallory.call("PATCH", f"/api/rooms/{room['id']}", {"record": True})
    assert status == 403 and body["error"] == "only the host can turn recording on or off"


@pytest.mark.parametrize(
    "title,error",
    [
        ("", "title is required"),
        ("   ", "title is required"),
        ("a\x00b", "title must not contain control characters"),
        ("\x1b[31mred", "title must not contain control characters"),
        ("x" * 201, "title must be a string of at most 200 characters"),
        (42, "title must be a string of at most 200 characters"),
        (None, "title must be a string of at most 200 characters"),
    ],
)
async def test_bad_chapter_titles(node: Node, title: object, error: str) -> None:
    alice = await node.user("alice")
    _, room = await alice.call("POST", "/api/rooms", {"title": "R", "record": True})
    status, body = await alice.call("POST", f"/api/rooms/{room['id']}/mark", {"title": title})
    assert (status, body) == (400, {"error": error})


async def test_outsiders_cannot_mark_and_marks_are_bounded(node: Node) -> None:
    alice = await node.user("alice")
    eve = await node.user("eve")
    _, room = await alice.call("POST", "/api/rooms", {"title": "R", "record": True})
    status, _ = await eve.call("POST", f"/api/rooms/{room['id']}/mark", {"title": "x"})
    assert status == 403  # not in the room at all
    status, _ = await eve.call("POST", "/api/rooms/nope/mark", {"title": "x"})
    assert status == 404
    # bidi overrides and zero-width characters are text, kept as given (clients escape)
    status, chapter = await alice.call(
        "POST", f"/api/rooms/{room['id']}/mark", {"title": "\u202egnp.exe \u200b<b>"}
    )
    assert status == 201 and chapter["title"] == "\u202egnp.exe \u200b<b>"


async def test_path_traversal_room_ids_never_touch_files(node: Node, tmp_path: Path) -> None:
    library = node.app[NODE].recording.library
    victim = node.settings.data_dir / "salon.db"
    for room_id in ("../salon", "..", "a/b", "/etc/passwd", "x" * 100, "", "%2e%2e"):
        with pytest.raises(DomainError):
            library.delete(room_id)
        with pytest.raises(DomainError):
            library.audio(room_id)
    assert victim.exists()


async def test_admin_cli_refuses_unknown_and_traversal(node_factory: NodeFactory) -> None:
    node = await node_factory(replay_flush_seconds=0.1)
    alice = await node.user("alice")
    _, room = await alice.call("POST", "/api/rooms", {"title": "R", "record": True})
    data = str(node.settings.data_dir)
    cwd = node.settings.data_dir
    result = run_cli("admin", "replays", "delete", "../salon", "--data", data, cwd=cwd)
    assert result.returncode == 1 and "no replay of room '../salon'" in result.stderr
    result = run_cli("admin", "replays", "delete", room["id"], "--data", data, cwd=cwd)
    assert result.returncode == 1 and "still being recorded" in result.stderr
    await alice.call("POST", f"/api/rooms/{room['id']}/end")
    listed = run_cli("admin", "replays", "list", "--data", data, cwd=cwd)
    assert listed.returncode == 0
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["room_id"] for r in rows] == [room["id"]] and rows[0]["status"] == "ready"
    result = run_cli("admin", "replays", "delete", room["id"], "--data", data, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert not (node.settings.replay_path / f"{room['id']}.ogg").exists()
    again = run_cli("admin", "replays", "delete", room["id"], "--data", data, cwd=cwd)
    assert again.returncode == 1  # a second (or concurrent) delete is refused, not an error


async def test_quota_is_per_host(node_factory: NodeFactory) -> None:
    node = await node_factory(replay_quota_bytes_per_user=1500, replay_flush_seconds=0.1)
    alice = await node.user("alice")
    bob = await node.user("bob")
    _, room = await alice.call("POST", "/api/rooms", {"title": "A", "record": True})
    sock = await RoomSocket.open(alice.http, f"{node.url}/api/rooms/{room['id']}/ws")
    await sock.wait_for(lambda m: m.get("event") == "recording", timeout=30)
    status, _ = await alice.call("POST", "/api/rooms", {"title": "A2", "record": True})
    assert status == 409
    status, other = await bob.call("POST", "/api/rooms", {"title": "B", "record": True})
    assert status == 201 and other["recording"] is True
    await sock.ws.close()


async def test_bad_title_with_record_changes_nothing(node: Node) -> None:
    alice = await node.user("alice")
    _, room = await alice.call("POST", "/api/rooms", {"title": "R"})
    status, _ = await alice.call(
        "PATCH", f"/api/rooms/{room['id']}", {"record": True, "title": "x" * 10_000}
    )
    assert status == 400
    status, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert view["recording"] is False and view["title"] == "R"
