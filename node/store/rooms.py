"""Rooms and their participants, moderators, bans and invitations."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from node.rooms.model import JoinMode, Participant, Role, Room, RoomStatus
from node.store.db import Database

_ROOM_COLUMNS = (
    "id, host_id, title, description, join_mode, status, invite_token, start_time,"
    " started_at, ended_at, created_at, seq, record"
)


class RoomStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, room: Room) -> None:
        with self.db.transaction():
            self.db.execute(
                f"INSERT INTO rooms ({_ROOM_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                _room_values(room),
            )
            self._write_children(room, None)

    def save(self, room: Room, touched: Iterable[int] | None = None) -> None:
        """Write the room row and the participants in TOUCHED (None: all), atomically."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE rooms SET title=?, description=?, join_mode=?, status=?, start_time=?,"
                " started_at=?, ended_at=?, seq=?, record=? WHERE id=?",
                (
                    room.title,
                    room.description,
                    room.join_mode.value,
                    room.status.value,
                    room.start_time,
                    room.started_at,
                    room.ended_at,
                    room.seq,
                    int(room.record),
                    room.id,
                ),
            )
            self._write_children(room, None if touched is None else set(touched))

    def _write_children(self, room: Room, touched: set[int] | None) -> None:
        if touched is None:
            self.db.execute("DELETE FROM room_participants WHERE room_id = ?", (room.id,))
            touched = set(room.participants)
        for user_id in touched:
            p = room.participants.get(user_id)
            if p is None:
                self.db.execute(
                    "DELETE FROM room_participants WHERE room_id = ? AND user_id = ?",
                    (room.id, user_id),
                )
                continue
            # SELECT … WHERE EXISTS: an account deleted while the node runs (``salon user
            # remove``) must not make every later save of its rooms fail a foreign key
            self.db.execute(
                "INSERT OR REPLACE INTO room_participants (room_id, user_id, role, joined_at,"
                " stage_since, hand_raised_at, invited_to_speak, muted, mute_locked)"
                " SELECT ?,?,?,?,?,?,?,?,? WHERE EXISTS (SELECT 1 FROM users WHERE id = ?)"
                " AND EXISTS (SELECT 1 FROM rooms WHERE id = ?)",
                (
                    room.id,
                    p.user_id,
                    p.role.value,
                    p.joined_at,
                    p.stage_since,
                    p.hand_raised_at,
                    int(p.invited_to_speak),
                    int(p.muted),
                    int(p.mute_locked),
                    p.user_id,
                    room.id,
                ),
            )
        for table, ids in (
            ("room_moderators", room.moderators),
            ("room_bans", room.bans),
            ("room_invites", room.invites),
        ):
            self.db.execute(f"DELETE FROM {table} WHERE room_id = ?", (room.id,))
            for user_id in sorted(ids):
                self.db.execute(
                    f"INSERT INTO {table} (room_id, user_id) SELECT ?, ?"
                    " WHERE EXISTS (SELECT 1 FROM users WHERE id = ?)"
                    " AND EXISTS (SELECT 1 FROM rooms WHERE id = ?)",
                    (room.id, user_id, user_id, room.id),
                )

    def get(self, room_id: str) -> Room | None:
        row = self.db.one(f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE id = ?", (room_id,))
        return self._load(row) if row else None

    def active(self) -> list[Room]:
        """Scheduled and live rooms (kept in memory by the service)."""
        rows = self.db.all(
            f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE status != 'ended' ORDER BY created_at"
        )
        return [self._load(r) for r in rows]

    def _load(self, row: sqlite3.Row) -> Room:
        room = Room(
            id=row["id"],
            host_id=row["host_id"],
            title=row["title"],
            description=row["description"],
            join_mode=JoinMode(row["join_mode"]),
            status=RoomStatus(row["status"]),
            invite_token=row["invite_token"],
            start_time=row["start_time"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            created_at=row["created_at"],
            seq=row["seq"],
            record=bool(row["record"]),
        )
        for p in self.db.all("SELECT * FROM room_participants WHERE room_id = ?", (room.id,)):
            room.participants[p["user_id"]] = Participant(
                user_id=p["user_id"],
                role=Role(p["role"]),
                joined_at=p["joined_at"],
                stage_since=p["stage_since"],
                hand_raised_at=p["hand_raised_at"],
                invited_to_speak=bool(p["invited_to_speak"]),
                muted=bool(p["muted"]),
                mute_locked=bool(p["mute_locked"]),
                connected=False,  # after a restart every seat waits for its client
            )
        for table, target in (
            ("room_moderators", room.moderators),
            ("room_bans", room.bans),
            ("room_invites", room.invites),
        ):
            for r in self.db.all(f"SELECT user_id FROM {table} WHERE room_id = ?", (room.id,)):
                target.add(r[0])
        return room

    def active_hosted_by(self, user_id: int) -> list[str]:
        rows = self.db.all(
            "SELECT id FROM rooms WHERE host_id = ? AND status != 'ended'", (user_id,)
        )
        return [r[0] for r in rows]


def _room_values(room: Room) -> tuple[object, ...]:
    return (
        room.id,
        room.host_id,
        room.title,
        room.description,
        room.join_mode.value,
        room.status.value,
        room.invite_token,
        room.start_time,
        room.started_at,
        room.ended_at,
        room.created_at,
        room.seq,
        int(room.record),
    )
