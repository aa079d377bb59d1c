"""Follow relations between users (local now; remote actors share the users table later)."""

from __future__ import annotations

from node.store.db import Database


class FollowStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, follower_id: int, followee_id: int, state: str, now: float) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO follows (follower_id, followee_id, state, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (follower_id, followee_id)"
                " DO UPDATE SET state = excluded.state",
                (follower_id, followee_id, state, now),
            )

    def state(self, follower_id: int, followee_id: int) -> str | None:
        row = self.db.one(
            "SELECT state FROM follows WHERE follower_id = ? AND followee_id = ?",
            (follower_id, followee_id),
        )
        return row["state"] if row else None

    def remove(self, follower_id: int, followee_id: int) -> bool:
        with self.db.transaction():
            cur = self.db.execute(
                "DELETE FROM follows WHERE follower_id = ? AND followee_id = ?",
                (follower_id, followee_id),
            )
        return cur.rowcount > 0

    def following_ids(self, follower_id: int) -> set[int]:
        rows = self.db.all(
            "SELECT followee_id FROM follows WHERE follower_id = ? AND state = 'accepted'",
            (follower_id,),
        )
        return {r[0] for r in rows}

    def followed_by(self, follower_ids: list[int]) -> set[int]:
        """Everyone at least one of FOLLOWER_IDS follows (accepted), in one query."""
        if not follower_ids:
            return set()
        marks = ",".join("?" for _ in follower_ids)
        rows = self.db.all(
            "SELECT DISTINCT followee_id FROM follows WHERE state = 'accepted'"
            f" AND follower_id IN ({marks})",
            tuple(follower_ids),
        )
        return {r[0] for r in rows}

    def followed_by_any(self, user_id: int, follower_ids: set[int]) -> bool:
        """Does any of FOLLOWER_IDS follow USER_ID? (admission to social rooms)"""
        if not follower_ids:
            return False
        marks = ",".join("?" for _ in follower_ids)
        row = self.db.one(
            f"SELECT 1 FROM follows WHERE followee_id = ? AND state = 'accepted'"
            f" AND follower_id IN ({marks}) LIMIT 1",
            (user_id, *sorted(follower_ids)),
        )
        return row is not None

    def local_follower_ids(self, user_id: int) -> list[int]:
        """This node's own accounts that follow USER_ID (accepted): who hears of its rooms."""
        rows = self.db.all(
            "SELECT f.follower_id FROM follows f JOIN users u ON u.id = f.follower_id"
            " WHERE f.followee_id = ? AND f.state = 'accepted' AND u.domain IS NULL"
            " ORDER BY f.follower_id",
            (user_id,),
        )
        return [r[0] for r in rows]

    def page(
        self, user_id: int, direction: str, state: str, limit: int, offset: int
    ) -> list[tuple[int, float]]:
        """(user id, since) of followers or followees, newest first."""
        mine, other = (
            ("followee_id", "follower_id")
            if direction == "followers"
            else ("follower_id", "followee_id")
        )
        rows = self.db.all(
            f"SELECT {other}, created_at FROM follows WHERE {mine} = ? AND state = ?"
            f" ORDER BY created_at DESC, {other} LIMIT ? OFFSET ?",
            (user_id, state, limit, offset),
        )
        return [(r[0], r[1]) for r in rows]

    def counts(self, user_id: int) -> tuple[int, int]:
        followers = self.db.one(
            "SELECT count(*) FROM follows WHERE followee_id = ? AND state = 'accepted'", (user_id,)
        )
        following = self.db.one(
            "SELECT count(*) FROM follows WHERE follower_id = ? AND state = 'accepted'", (user_id,)
        )
        return (int(followers[0]) if followers else 0, int(following[0]) if following else 0)
