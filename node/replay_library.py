"""Finished replays on disk and in the store: list, delete.

The one delete path: the node's replay service (node/replays.py: the host's Delete replay,
the retention sweep, which then also sends the federation ``Update``) and ``salon admin
replays delete`` (cli/admin_replays.py) all call ``delete`` here: the row is marked
``deleted`` first (a concurrent second delete is a no-op), then the files go (audio,
sidecar, peaks).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from node.rooms.model import RoomRuleError
from node.store.replays import Replay, ReplayStore

FILE_SUFFIXES = (".ogg", ".json", ".peaks.json")  # audio, sidecar, cached waveform


class ReplayLibrary:
    def __init__(self, store: ReplayStore, directory: Path) -> None:
        self.store = store
        self.dir = directory

    def audio(self, room_id: str) -> Path:
        return self.dir / f"{_checked(room_id)}.ogg"

    def sidecar(self, room_id: str) -> Path:
        return self.dir / f"{_checked(room_id)}.json"

    def list(self) -> list[Replay]:
        return self.store.all()

    def delete(self, room_id: str) -> None:
        """Delete a finished replay's files and mark its row (RoomRuleError when not)."""
        replay = self.store.get(room_id)
        if replay is None or replay.status == "deleted":
            raise RoomRuleError("not_found", f"no replay of room {room_id!r}")
        if replay.status == "recording":
            raise RoomRuleError("conflict", "the room is still being recorded")
        if not self.store.mark_deleted(room_id):
            raise RoomRuleError("not_found", f"no replay of room {room_id!r}")
        self.remove_files(room_id)

    def remove_files(self, room_id: str) -> None:
        for suffix in FILE_SUFFIXES:
            with contextlib.suppress(FileNotFoundError):
                (self.dir / f"{_checked(room_id)}{suffix}").unlink()


def _checked(room_id: str) -> str:
    """Room ids are URL-safe tokens; anything else never becomes a path (no traversal)."""
    if not room_id or len(room_id) > 64 or not all(c.isalnum() or c in "-_" for c in room_id):
        raise RoomRuleError("not_found", f"no replay of room {room_id!r}")
    return room_id
