"""Rooms other nodes announced to our users (the hallway's remote cards)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from node.store.db import Database


@dataclass(frozen=True)
class RemoteRoomRow:
    uri: str
    host_id: int
    status: str
    document: dict[str, Any]
    updated_at: float


class RemoteRoomStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put_room(
        self, uri: str, host_id: int, status: str, document: dict[str, Any], now: float
    ) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO remote_rooms (uri, host_id, status, document, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (uri) DO UPDATE SET"
                " host_id = excluded.host_id, status = excluded.status,"
                " document = excluded.document, updated_at = excluded.updated_at",
                (uri, host_id, status, json.dumps(document), now),
            )

    def room(self, uri: str) -> RemoteRoomRow | None:
        row = self.db.one("SELECT * FROM remote_rooms WHERE uri = ?", (uri,))
        return _room(row) if row else None

    def active_rooms_of(self, host_ids: set[int]) -> list[RemoteRoomRow]:
        if not host_ids:
            return []
        marks = ",".join("?" for _ in host_ids)
        rows = self.db.all(
            f"SELECT * FROM remote_rooms WHERE status IN ('live', 'scheduled')"
            f" AND host_id IN ({marks}) ORDER BY updated_at DESC",
            tuple(sorted(host_ids)),
        )
        return [_room(r) for r in rows]

    def ended_rooms_of(self, host_ids: set[int], since: float, limit: int) -> list[RemoteRoomRow]:
        """Ended rooms of HOST_IDS announced after SINCE, newest first (replay cards)."""
        if not host_ids:
            return []
        marks = ",".join("?" for _ in host_ids)
        rows = self.db.all(
            f"SELECT * FROM remote_rooms WHERE status = 'ended' AND host_id IN ({marks})"
            " AND updated_at >= ? ORDER BY updated_at DESC LIMIT ?",
            (*sorted(host_ids), since, limit),
        )
        return [_room(r) for r in rows]

    def delete_room(self, uri: str) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM remote_rooms WHERE uri = ?", (uri,))


def _room(row: sqlite3.Row) -> RemoteRoomRow:
    return RemoteRoomRow(
        uri=row["uri"],
        host_id=row["host_id"],
        status=row["status"],
        document=json.loads(row["document"]),
        updated_at=row["updated_at"],
    )
