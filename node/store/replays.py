"""Replays: one row per recorded room (status, size, duration, trim); files live on disk.

The table and method names are the contract between the recorder and the replay page
(issue #14): ``begin``/``finish`` at the room's start and end, the rest for serving,
quotas, trims, deletes and retention.
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
    status: str
    bytes: int
    duration: float
    started: float
    ended: float | None
    trim_start: float
    trim_end: float | None

    @property
    def ready(self) -> bool:
        return self.status == "ready"


class ReplayStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def begin(self, room_id: str, host_id: int, title: str, now: float) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO replays (room_id, host_id, title, status, started)"
                " VALUES (?, ?, ?, 'recording', ?) ON CONFLICT (room_id) DO UPDATE SET"
                " status = 'recording', title = excluded.title, started = excluded.started",
                (room_id, host_id, title, now),
            )

    def finish(self, room_id: str, *, status: str, size: int, duration: float, now: float) -> None:
        if status not in ("ready", "failed"):
            raise ValueError(f"a finished replay is ready or failed, not {status!r}")
        with self.db.transaction():
            self.db.execute(
                "UPDATE replays SET status = ?, bytes = ?, duration = ?, ended = ?"
                " WHERE room_id = ? AND status = 'recording'",
                (status, size, duration, now, room_id),
            )

    def get(self, room_id: str) -> Replay | None:
        row = self.db.one("SELECT * FROM replays WHERE room_id = ?", (room_id,))
        return _replay(row) if row else None

    def for_host(self, user_id: int) -> list[Replay]:
        rows = self.db.all(
            "SELECT * FROM replays WHERE host_id = ? AND status != 'deleted' ORDER BY started DESC",
            (user_id,),
        )
        return [_replay(r) for r in rows]

    def ready_of(self, host_ids: set[int], since: float, limit: int) -> list[Replay]:
        """Ready replays of HOST_IDS ended after SINCE, newest first (the hallway's cards)."""
        if not host_ids:
            return []
        marks = ",".join("?" for _ in host_ids)
        rows = self.db.all(
            f"SELECT * FROM replays WHERE status = 'ready' AND host_id IN ({marks})"
            " AND ended >= ? ORDER BY ended DESC LIMIT ?",
            (*sorted(host_ids), since, limit),
        )
        return [_replay(r) for r in rows]

    def used_bytes(self, user_id: int) -> int:
        row = self.db.one(
            "SELECT COALESCE(SUM(bytes), 0) AS used FROM replays"
            " WHERE host_id = ? AND status IN ('recording', 'ready')",
            (user_id,),
        )
        return int(row["used"]) if row else 0

    def mark_deleted(self, room_id: str) -> bool:
        """True if this call deleted it (a second, concurrent delete gets False)."""
        with self.db.transaction():
            cursor = self.db.execute(
                "UPDATE replays SET status = 'deleted', bytes = 0"
                " WHERE room_id = ? AND status != 'deleted'",
                (room_id,),
            )
        return cursor.rowcount == 1

    def set_trim(
        self, room_id: str, trim_start: float, trim_end: float, *, size: int, duration: float
    ) -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE replays SET trim_start = ?, trim_end = ?, bytes = ?, duration = ?"
                " WHERE room_id = ? AND status = 'ready'",
                (trim_start, trim_end, size, duration, room_id),
            )

    def expired(self, before: float) -> list[Replay]:
        rows = self.db.all(
            "SELECT * FROM replays WHERE status IN ('ready', 'failed') AND ended < ?",
            (before,),
        )
        return [_replay(r) for r in rows]


def _replay(row: sqlite3.Row) -> Replay:
    return Replay(
        room_id=row["room_id"],
        host_id=row["host_id"],
        title=row["title"],
        status=row["status"],
        bytes=row["bytes"],
        duration=row["duration"],
        started=row["started"],
        ended=row["ended"],
        trim_start=row["trim_start"],
        trim_end=row["trim_end"],
    )
