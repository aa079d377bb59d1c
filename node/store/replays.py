"""Replays: one row per recorded room (status, size, duration, trim); the file is
``<replay_dir>/<room_id>.ogg``.

The table and method names are the contract between the recorder (``begin``, ``progress``,
``finish``, ``recording``) and the replay page (``get``, ``ready_of``, ``set_trim``); quotas,
deletes and retention use ``used_bytes``, ``mark_deleted`` and ``expired`` (issue #14).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from node.store.db import Database

STATUSES = ("recording", "ready", "failed", "deleted")


@dataclass(frozen=True)
class Replay:
    room_id: str
    host_id: int
    title: str
    status: str  # recording | ready | failed | deleted
    bytes: int
    duration: float
    started: float
    ended: float | None
    trim_start: float  # seconds of the original recording cut from the start (0: none)
    trim_end: float | None

    @property
    def ready(self) -> bool:
        return self.status == "ready"


_COLUMNS = "room_id, host_id, title, status, bytes, duration, started, ended, trim_start, trim_end"


def _row(row: sqlite3.Row) -> Replay:
    return Replay(**{key: row[key] for key in _COLUMNS.split(", ")})


class ReplayStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def begin(self, room_id: str, host_id: int, title: str, started: float) -> Replay:
        """A recording starts, or goes on after a pause or a restart (same file, same start);
        over a deleted or failed replay of the room it starts afresh."""
        with self.db.transaction():
            self.db.execute(
                f"INSERT INTO replays ({_COLUMNS}) VALUES (?,?,?,'recording',0,0,?,NULL,0,NULL)"
                " ON CONFLICT(room_id) DO UPDATE SET status='recording', title=excluded.title,"
                " started=CASE WHEN replays.status IN ('deleted','failed')"
                " THEN excluded.started ELSE replays.started END",
                (room_id, host_id, title, started),
            )
        replay = self.get(room_id)
        assert replay is not None
        return replay

    def progress(self, room_id: str, size: int, duration: float) -> None:
        """The file grew (bytes and seconds so far; quota counts these)."""
        self.db.execute(
            "UPDATE replays SET bytes=?, duration=? WHERE room_id=? AND status='recording'",
            (size, duration, room_id),
        )

    def finish(
        self, room_id: str, size: int, duration: float, ended: float, status: str = "ready"
    ) -> None:
        if status not in ("ready", "failed"):
            raise ValueError(f"a finished replay is ready or failed, not {status!r}")
        with self.db.transaction():
            self.db.execute(
                "UPDATE replays SET status=?, bytes=?, duration=?, ended=?"
                " WHERE room_id=? AND status='recording'",
                (status, size, duration, ended, room_id),
            )

    def get(self, room_id: str) -> Replay | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM replays WHERE room_id=?", (room_id,))
        return _row(row) if row else None

    def for_host(self, user_id: int) -> list[Replay]:
        rows = self.db.all(
            f"SELECT {_COLUMNS} FROM replays WHERE host_id=? AND status != 'deleted'"
            " ORDER BY started DESC",
            (user_id,),
        )
        return [_row(r) for r in rows]

    def all(self) -> list[Replay]:
        rows = self.db.all(
            f"SELECT {_COLUMNS} FROM replays WHERE status != 'deleted' ORDER BY started DESC"
        )
        return [_row(r) for r in rows]

    def recording(self) -> list[Replay]:
        """Rows a crash left in ``recording`` (the node finishes them at start)."""
        rows = self.db.all(f"SELECT {_COLUMNS} FROM replays WHERE status='recording'")
        return [_row(r) for r in rows]

    def used_bytes(self, user_id: int) -> int:
        row = self.db.one(
            "SELECT COALESCE(SUM(bytes), 0) FROM replays WHERE host_id=? AND status != 'deleted'",
            (user_id,),
        )
        return int(row[0]) if row else 0

    def mark_deleted(self, room_id: str) -> bool:
        """True when the row was not deleted before (a second delete is a no-op)."""
        cur = self.db.execute(
            "UPDATE replays SET status='deleted', bytes=0 WHERE room_id=? AND status != 'deleted'",
            (room_id,),
        )
        return cur.rowcount > 0

    def set_trim(
        self, room_id: str, trim_start: float, trim_end: float, *, size: int, duration: float
    ) -> None:
        """The file was cut to [TRIM_START, TRIM_END) of the original recording."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE replays SET trim_start=?, trim_end=?, bytes=?, duration=?"
                " WHERE room_id=? AND status='ready'",
                (trim_start, trim_end, size, duration, room_id),
            )

    def ready_of(self, host_ids: set[int], since: float, limit: int) -> list[Replay]:
        """Ready replays of HOST_IDS ended after SINCE, newest first (the hallway's cards)."""
        if not host_ids:
            return []
        marks = ",".join("?" for _ in host_ids)
        rows = self.db.all(
            f"SELECT {_COLUMNS} FROM replays WHERE status='ready' AND host_id IN ({marks})"
            " AND ended >= ? ORDER BY ended DESC LIMIT ?",
            (*sorted(host_ids), since, limit),
        )
        return [_row(r) for r in rows]

    def expired(self, before: float) -> list[Replay]:
        """Finished replays that ended before BEFORE (the retention sweep deletes them)."""
        rows = self.db.all(
            f"SELECT {_COLUMNS} FROM replays WHERE status IN ('ready','failed') AND ended < ?",
            (before,),
        )
        return [_row(r) for r in rows]
