"""Disk full (ENOSPC) while recording: the recording stops, the host is told, the room goes on.

A real size-limited file system: a tiny tmpfs mounted as root (skipped when not possible).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.audio import decode_ogg
from tests.support.chat import RoomSocket
from tests.support.nodes import NodeFactory

pytestmark = pytest.mark.timeout(60)


@contextlib.contextmanager
def tiny_fs(path: Path, size: str = "256k") -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'not root'}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def test_disk_full_stops_recording_room_continues(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    with tiny_fs(tmp_path / "small") as small:
        # fill it, then free two pages (tmpfs counts 4 KiB pages): ~8 KiB for the recording
        filler = small / "filler"
        with open(filler, "wb") as handle, contextlib.suppress(OSError):
            handle.write(b"\0" * (256 * 1024))
        with open(filler, "r+b") as handle:
            handle.truncate(filler.stat().st_size - 8192)
        node = await node_factory(replay_dir=str(small), replay_flush_seconds=0.1)
        alice = await node.user("alice")
        bob = await node.user("bob")
        _, room = await alice.call("POST", "/api/rooms", {"title": "Full", "record": True})
        rid = room["id"]
        host = await RoomSocket.open(alice.http, f"{node.url}/api/rooms/{rid}/ws")
        stopped = await host.wait_for(lambda m: m.get("event") == "recording", timeout=40)
        assert stopped["recording"] is False and stopped["reason"] == "disk_full"
        status, view = await alice.call("GET", f"/api/rooms/{rid}")
        assert status == 200 and view["status"] == "live" and view["recording"] is False
        guest = await RoomSocket.open(bob.http, f"{node.url}/api/rooms/{rid}/ws")
        assert guest.state["recording"] is False  # the room goes on, people still join
        assert decode_ogg(small / f"{rid}.ogg").size > 0  # what was written plays
        await guest.ws.close()
        await host.ws.close()
        await node.stop()
