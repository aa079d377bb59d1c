"""RSVPs ("Notify me") to rooms here and elsewhere, and the calendar feed tokens.

A row is (user, room): ``room`` is a local room id or a remote room's Event URI. Local
users RSVP to either; remote actors (users rows with a domain) RSVP to our rooms with a
``Follow`` of the room, whose id is kept so an ``Undo`` by id finds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.store.db import Database

#: Reminder marks, the column each one sets.
_MARKS = {"soon": "soon_sent", "start": "start_sent"}


@dataclass(frozen=True)
class Rsvp:
    user_id: int
    room: str
    activity_id: str | None
    created_at: float


class RsvpLimitReached(Exception):
    """The user already holds the most RSVPs allowed."""


class RsvpStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- RSVPs -------------------------------------------------------------------
    def add(
        self, user_id: int, room: str, now: float, *, limit: int, activity_id: str | None = None
    ) -> bool:
        """Record USER_ID's RSVP to ROOM; False if it was already there. Raises
        RsvpLimitReached (nothing written) when the user holds LIMIT RSVPs already; the
        count and the insert are one transaction, so concurrent requests cannot pass it."""
        with self.db.transaction():
            row = self.db.one(
                "SELECT activity_id FROM rsvps WHERE user_id = ? AND room = ?", (user_id, room)
            )
            if row is not None:
                if activity_id is not None:
                    self.db.execute(
                        "UPDATE rsvps SET activity_id = ? WHERE user_id = ? AND room = ?",
                        (activity_id, user_id, room),
                    )
                return False
            count = self.db.one("SELECT COUNT(*) FROM rsvps WHERE user_id = ?", (user_id,))
            if count is not None and count[0] >= limit:
                raise RsvpLimitReached()
            self.db.execute(
                "INSERT INTO rsvps (user_id, room, activity_id, created_at) VALUES (?, ?, ?, ?)",
                (user_id, room, activity_id, now),
            )
        return True

    def remove(self, user_id: int, room: str) -> Rsvp | None:
        """Forget USER_ID's RSVP to ROOM; the removed row (None if there was none)."""
        with self.db.transaction():
            found = self.get(user_id, room)
            if found is not None:
                self.db.execute("DELETE FROM rsvps WHERE user_id = ? AND room = ?", (user_id, room))
        return found

    def get(self, user_id: int, room: str) -> Rsvp | None:
        row = self.db.one(
            "SELECT user_id, room, activity_id, created_at FROM rsvps"
            " WHERE user_id = ? AND room = ?",
            (user_id, room),
        )
        return Rsvp(*row) if row else None

    def by_activity(self, activity_id: str) -> Rsvp | None:
        row = self.db.one(
            "SELECT user_id, room, activity_id, created_at FROM rsvps WHERE activity_id = ?",
            (activity_id,),
        )
        return Rsvp(*row) if row else None

    def has(self, user_id: int, room: str) -> bool:
        return self.get(user_id, room) is not None

    def count(self, room: str) -> int:
        """Everyone who asked to be told about ROOM: local users and remote actors."""
        row = self.db.one("SELECT COUNT(*) FROM rsvps WHERE room = ?", (room,))
        return int(row[0]) if row else 0

    def rooms_of(self, user_id: int) -> list[str]:
        rows = self.db.all(
            "SELECT room FROM rsvps WHERE user_id = ? ORDER BY created_at, room", (user_id,)
        )
        return [r[0] for r in rows]

    def remote_users(self, room: str) -> list[int]:
        """The remote actors (users rows with a domain) who RSVPed to ROOM."""
        rows = self.db.all(
            "SELECT r.user_id FROM rsvps r JOIN users u ON u.id = r.user_id"
            " WHERE r.room = ? AND u.domain IS NOT NULL ORDER BY r.user_id",
            (room,),
        )
        return [r[0] for r in rows]

    def local_users(self, room: str) -> list[int]:
        rows = self.db.all(
            "SELECT r.user_id FROM rsvps r JOIN users u ON u.id = r.user_id"
            " WHERE r.room = ? AND u.domain IS NULL ORDER BY r.user_id",
            (room,),
        )
        return [r[0] for r in rows]

    def has_local(self, room: str) -> bool:
        """Whether any local user RSVPed to ROOM (a remote room's news is then wanted)."""
        row = self.db.one(
            "SELECT 1 FROM rsvps r JOIN users u ON u.id = r.user_id"
            " WHERE r.room = ? AND u.domain IS NULL LIMIT 1",
            (room,),
        )
        return row is not None

    # ---- reminders ---------------------------------------------------------------
    def watched_rooms(self) -> list[str]:
        """Rooms some local user RSVPed to (bounded by ``rsvps_per_user`` per user)."""
        rows = self.db.all(
            "SELECT DISTINCT r.room FROM rsvps r JOIN users u ON u.id = r.user_id"
            " WHERE u.domain IS NULL ORDER BY r.room"
        )
        return [r[0] for r in rows]

    def claim(self, room: str, mark: str) -> list[int]:
        """Local users of ROOM not yet sent reminder MARK (``soon`` or ``start``), marked
        sent in the same transaction, so each reminder is claimed once."""
        column = _MARKS[mark]
        with self.db.transaction():
            rows = self.db.all(
                f"UPDATE rsvps SET {column} = 1 WHERE room = ? AND {column} = 0"
                " AND user_id IN (SELECT id FROM users WHERE domain IS NULL)"
                " RETURNING user_id",
                (room,),
            )
        return sorted(r[0] for r in rows)

    def reminded(self, user_id: int, room: str) -> set[str]:
        """Which reminders (``soon``, ``start``) went out to USER_ID about ROOM."""
        row = self.db.one(
            "SELECT soon_sent, start_sent FROM rsvps WHERE user_id = ? AND room = ?",
            (user_id, room),
        )
        if row is None:
            return set()
        return {mark for mark, column in _MARKS.items() if row[column]}

    def forget_room(self, room: str) -> int:
        """Every RSVP to ROOM (it ended or is gone); how many were removed."""
        with self.db.transaction():
            cur = self.db.execute("DELETE FROM rsvps WHERE room = ?", (room,))
        return cur.rowcount

    # ---- calendar feed tokens ----------------------------------------------------
    def set_calendar_token(self, user_id: int, token_hash: str, now: float) -> None:
        """The user's one feed token (a new one replaces the old, which stops working)."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO calendar_tokens (user_id, token_hash, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET token_hash = excluded.token_hash,"
                " created_at = excluded.created_at",
                (user_id, token_hash, now),
            )

    def calendar_token(self, token_hash: str) -> tuple[int, str] | None:
        """(user id, stored hash) of the feed token whose hash is TOKEN_HASH."""
        row = self.db.one(
            "SELECT user_id, token_hash FROM calendar_tokens WHERE token_hash = ?", (token_hash,)
        )
        return (int(row[0]), str(row[1])) if row else None

    def has_calendar_token(self, user_id: int) -> bool:
        row = self.db.one("SELECT 1 FROM calendar_tokens WHERE user_id = ?", (user_id,))
        return row is not None

    def delete_calendar_token(self, user_id: int) -> bool:
        with self.db.transaction():
            cur = self.db.execute("DELETE FROM calendar_tokens WHERE user_id = ?", (user_id,))
        return cur.rowcount > 0
