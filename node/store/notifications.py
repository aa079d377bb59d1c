"""Notifications: one row per user and event, deduplicated per user, kept to a bound."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from node.store.db import Database


@dataclass(frozen=True)
class Notification:
    id: int
    user_id: int
    kind: str
    room_url: str
    title: str
    actor: str | None
    key: str
    created_at: float
    read: bool


_COLUMNS = "id, user_id, kind, room_url, title, actor, dedupe_key, created_at, read"


def _row(row: sqlite3.Row) -> Notification:
    return Notification(
        id=row["id"],
        user_id=row["user_id"],
        kind=row["kind"],
        room_url=row["room_url"],
        title=row["title"],
        actor=row["actor"],
        key=row["dedupe_key"],
        created_at=row["created_at"],
        read=bool(row["read"]),
    )


class NotificationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        user_id: int,
        kind: str,
        room_url: str,
        title: str,
        actor: str | None,
        key: str,
        now: float,
        keep: int,
    ) -> Notification | None:
        """Store one notification; None when USER_ID already has one with KEY. The user's
        oldest ones beyond KEEP are deleted in the same transaction."""
        with self.db.transaction():
            return self._add(user_id, kind, room_url, title, actor, key, now, keep)

    def add_many(
        self,
        user_ids: list[int],
        kind: str,
        room_url: str,
        title: str,
        actor: str | None,
        key: str,
        now: float,
        keep: int,
    ) -> list[Notification]:
        """The same notification for each of USER_IDS, in one transaction (a room's start
        for all of its host's followers); those that already had KEY are left out."""
        with self.db.transaction():
            added = [
                self._add(user_id, kind, room_url, title, actor, key, now, keep)
                for user_id in user_ids
            ]
        return [n for n in added if n is not None]

    def _add(
        self,
        user_id: int,
        kind: str,
        room_url: str,
        title: str,
        actor: str | None,
        key: str,
        now: float,
        keep: int,
    ) -> Notification | None:
        cur = self.db.execute(
            "INSERT INTO notifications (user_id, kind, room_url, title, actor, dedupe_key,"
            " created_at, read) VALUES (?, ?, ?, ?, ?, ?, ?, 0)"
            " ON CONFLICT (user_id, dedupe_key) DO NOTHING",
            (user_id, kind, room_url, title, actor, key, now),
        )
        if cur.rowcount == 0:
            return None
        new_id = cur.lastrowid
        self.db.execute(
            "DELETE FROM notifications WHERE user_id = ? AND id <= ("
            " SELECT id FROM notifications WHERE user_id = ?"
            " ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (user_id, user_id, keep),
        )
        row = self.db.one(f"SELECT {_COLUMNS} FROM notifications WHERE id = ?", (new_id,))
        return _row(row) if row is not None else None

    def page(self, user_id: int, before: int | None, limit: int) -> list[Notification]:
        """Newest first; BEFORE is an id to page backwards from."""
        if before is None:
            rows = self.db.all(
                f"SELECT {_COLUMNS} FROM notifications WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                (user_id, limit),
            )
        else:
            rows = self.db.all(
                f"SELECT {_COLUMNS} FROM notifications WHERE user_id = ? AND id < ?"
                " ORDER BY id DESC LIMIT ?",
                (user_id, before, limit),
            )
        return [_row(r) for r in rows]

    def unread(self, user_id: int) -> int:
        row = self.db.one(
            "SELECT count(*) FROM notifications WHERE user_id = ? AND read = 0", (user_id,)
        )
        return int(row[0]) if row else 0

    def mark_read(self, user_id: int, ids: list[int]) -> int:
        """Mark USER_ID's notifications among IDS read (others' ids are silently no-ops)."""
        if not ids:
            return 0
        marks = ",".join("?" for _ in ids)
        with self.db.transaction():
            cur = self.db.execute(
                f"UPDATE notifications SET read = 1 WHERE user_id = ? AND read = 0"
                f" AND id IN ({marks})",
                (user_id, *ids),
            )
        return cur.rowcount

    def mark_all_read(self, user_id: int) -> int:
        with self.db.transaction():
            cur = self.db.execute(
                "UPDATE notifications SET read = 1 WHERE user_id = ? AND read = 0", (user_id,)
            )
        return cur.rowcount
