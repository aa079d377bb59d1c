"""Who blocked whom, and who muted whom.

A block row is written for a local user's block and for a remote person's ``Block`` of one
of our users, so every rule (gate, follows, hallway) reads one table in both directions.
Mutes are local only.
"""

from __future__ import annotations

from node.store.db import Database


class BlockStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- blocks --------------------------------------------------------------------
    def block(self, blocker_id: int, blocked_id: int, activity_id: str | None, now: float) -> bool:
        """Record a block; False if it was already there (its activity id is kept)."""
        with self.db.transaction():
            cur = self.db.execute(
                "INSERT INTO blocks (blocker_id, blocked_id, activity_id, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (blocker_id, blocked_id) DO NOTHING",
                (blocker_id, blocked_id, activity_id, now),
            )
        return cur.rowcount > 0

    def set_activity(self, blocker_id: int, blocked_id: int, activity_id: str) -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE blocks SET activity_id = ? WHERE blocker_id = ? AND blocked_id = ?",
                (activity_id, blocker_id, blocked_id),
            )

    def unblock(self, blocker_id: int, blocked_id: int) -> bool:
        with self.db.transaction():
            cur = self.db.execute(
                "DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?",
                (blocker_id, blocked_id),
            )
        return cur.rowcount > 0

    def activity_of(self, blocker_id: int, blocked_id: int) -> str | None:
        row = self.db.one(
            "SELECT activity_id FROM blocks WHERE blocker_id = ? AND blocked_id = ?",
            (blocker_id, blocked_id),
        )
        return row["activity_id"] if row else None

    def by_activity(self, activity_id: str) -> tuple[int, int] | None:
        row = self.db.one(
            "SELECT blocker_id, blocked_id FROM blocks WHERE activity_id = ?", (activity_id,)
        )
        return (row[0], row[1]) if row else None

    def blocks(self, blocker_id: int, blocked_id: int) -> bool:
        row = self.db.one(
            "SELECT 1 FROM blocks WHERE blocker_id = ? AND blocked_id = ?",
            (blocker_id, blocked_id),
        )
        return row is not None

    def between(self, a: int, b: int) -> bool:
        """Has either of A and B blocked the other?"""
        return self.blocks(a, b) or self.blocks(b, a)

    def blocked_by_any(self, user_id: int, blocker_ids: set[int]) -> bool:
        """Has any of BLOCKER_IDS blocked USER_ID? (admission to a room)"""
        return bool(self.blocked_among(blocker_ids, {user_id}))

    def blocked_among(self, blocker_ids: set[int], user_ids: set[int]) -> set[int]:
        """Those of USER_IDS blocked by at least one of BLOCKER_IDS, in one query."""
        if not blocker_ids or not user_ids:
            return set()
        a = ",".join("?" for _ in blocker_ids)
        b = ",".join("?" for _ in user_ids)
        rows = self.db.all(
            f"SELECT DISTINCT blocked_id FROM blocks WHERE blocker_id IN ({a})"
            f" AND blocked_id IN ({b})",
            (*sorted(blocker_ids), *sorted(user_ids)),
        )
        return {r[0] for r in rows}

    def blocked_ids(self, blocker_id: int) -> list[int]:
        rows = self.db.all(
            "SELECT blocked_id FROM blocks WHERE blocker_id = ? ORDER BY created_at DESC",
            (blocker_id,),
        )
        return [r[0] for r in rows]

    def blocked_actor_uris(self, blocker_id: int) -> set[str]:
        """Actor URIs of the remote people BLOCKER_ID blocked (remote cards name speakers so)."""
        rows = self.db.all(
            "SELECT u.actor_uri FROM blocks b JOIN users u ON u.id = b.blocked_id"
            " WHERE b.blocker_id = ? AND u.actor_uri IS NOT NULL",
            (blocker_id,),
        )
        return {r[0] for r in rows}

    def blocker_ids(self, blocked_id: int) -> list[int]:
        rows = self.db.all("SELECT blocker_id FROM blocks WHERE blocked_id = ?", (blocked_id,))
        return [r[0] for r in rows]

    def count(self, blocker_id: int) -> int:
        row = self.db.one("SELECT count(*) FROM blocks WHERE blocker_id = ?", (blocker_id,))
        return int(row[0]) if row else 0

    # ---- mutes ---------------------------------------------------------------------
    def mute(self, muter_id: int, muted_id: int, now: float) -> bool:
        with self.db.transaction():
            cur = self.db.execute(
                "INSERT INTO mutes (muter_id, muted_id, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (muter_id, muted_id) DO NOTHING",
                (muter_id, muted_id, now),
            )
        return cur.rowcount > 0

    def unmute(self, muter_id: int, muted_id: int) -> bool:
        with self.db.transaction():
            cur = self.db.execute(
                "DELETE FROM mutes WHERE muter_id = ? AND muted_id = ?", (muter_id, muted_id)
            )
        return cur.rowcount > 0

    def mutes(self, muter_id: int, muted_id: int) -> bool:
        row = self.db.one(
            "SELECT 1 FROM mutes WHERE muter_id = ? AND muted_id = ?", (muter_id, muted_id)
        )
        return row is not None

    def muted_ids(self, muter_id: int) -> list[int]:
        rows = self.db.all(
            "SELECT muted_id FROM mutes WHERE muter_id = ? ORDER BY created_at DESC", (muter_id,)
        )
        return [r[0] for r in rows]

    def mute_count(self, muter_id: int) -> int:
        row = self.db.one("SELECT count(*) FROM mutes WHERE muter_id = ?", (muter_id,))
        return int(row[0]) if row else 0

    def hidden_from(self, viewer_id: int) -> set[int]:
        """Whose rooms VIEWER_ID's hallway leaves out: people they blocked or muted, and
        people who blocked them."""
        return {
            *self.blocked_ids(viewer_id),
            *self.blocker_ids(viewer_id),
            *self.muted_ids(viewer_id),
        }
