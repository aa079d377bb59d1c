"""node/replay_library.py over a real SQLite store: delete, quota sums, listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.errors import DomainError
from node.replay_library import ReplayLibrary
from node.store.db import open_database
from node.store.replays import ReplayStore

pytestmark = pytest.mark.timeout(30)


def library(tmp_path: Path) -> tuple[ReplayLibrary, ReplayStore]:
    store = ReplayStore(open_database(tmp_path / "salon.db"))
    return ReplayLibrary(store, tmp_path / "replays"), store


def finished(store: ReplayStore, lib: ReplayLibrary, room: str, ended: float, size: int) -> None:
    store.begin(room, 7, room, ended - 10)
    store.finish(room, size, 10.0, ended)
    lib.dir.mkdir(exist_ok=True)
    lib.audio(room).write_bytes(b"x" * size)
    lib.sidecar(room).write_text("{}")


def test_delete_frees_quota_and_files(tmp_path: Path) -> None:
    day = 86400.0
    lib, store = library(tmp_path)
    finished(store, lib, "old", 80 * day, 100)
    finished(store, lib, "new", 99 * day, 50)
    store.begin("live", 7, "live", 50 * day)  # still recording: cannot be deleted
    assert store.used_bytes(7) == 150
    assert [r.room_id for r in store.expired(90 * day)] == ["old"]
    lib.delete("old")
    with pytest.raises(DomainError, match="still being recorded"):
        lib.delete("live")
    assert not lib.audio("old").exists() and not lib.sidecar("old").exists()
    assert lib.audio("new").exists()
    assert store.used_bytes(7) == 50
    assert [r.room_id for r in lib.list()] == ["new", "live"]  # newest first
    assert store.get("live").status == "recording"  # type: ignore[union-attr]


def test_delete_twice_and_missing_files(tmp_path: Path) -> None:
    lib, store = library(tmp_path)
    finished(store, lib, "r1", 900.0, 10)
    lib.audio("r1").unlink()  # an operator removed the file by hand: delete still works
    lib.delete("r1")
    with pytest.raises(DomainError, match="no replay of room 'r1'"):
        lib.delete("r1")
    with pytest.raises(DomainError):
        lib.delete("never")
