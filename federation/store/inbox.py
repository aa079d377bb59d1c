"""Replay protection: the ids of activities the inbox has accepted."""

from __future__ import annotations

from node.store.db import Database


class SeenActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    def mark_seen(self, activity_id: str, now: float) -> bool:
        """Record an incoming activity id; False when it was seen before (a replay)."""
        with self.db.transaction():
            cur = self.db.execute(
                "INSERT OR IGNORE INTO seen_activities (activity_id, received_at) VALUES (?, ?)",
                (activity_id, now),
            )
        return cur.rowcount > 0

    def unmark_seen(self, activity_id: str) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM seen_activities WHERE activity_id = ?", (activity_id,))

    def seen_count(self) -> int:
        row = self.db.one("SELECT count(*) FROM seen_activities")
        return int(row[0]) if row else 0
