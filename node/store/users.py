"""Accounts and sessions. Local users have ``domain`` NULL."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from node.store.db import Database


class NameTaken(ValueError):
    """The username is already in use on this node."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    domain: str | None
    display_name: str
    bio: str
    locked: bool
    is_admin: bool
    created_at: float
    #: Suspended by this node's operator: no sessions, no signed requests, actor 410.
    suspended: bool = False
    #: Limited (remote accounts): rooms kept out of hallways, follows held for approval.
    limited: bool = False

    @property
    def is_local(self) -> bool:
        return self.domain is None


@dataclass(frozen=True)
class Session:
    token_hash: str
    user_id: int
    kind: str
    csrf_token: str
    label: str
    created_at: float
    expires_at: float | None


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        domain=row["domain"],
        display_name=row["display_name"],
        bio=row["bio"],
        locked=bool(row["locked"]),
        is_admin=bool(row["is_admin"]),
        created_at=row["created_at"],
        suspended=row["suspended_at"] is not None,
        limited=row["limited_at"] is not None,
    )


_USER_COLUMNS = (
    "id, username, domain, display_name, bio, locked, is_admin, created_at,"
    " suspended_at, limited_at"
)


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, username: str, password_hash: str, now: float, is_admin: bool = False) -> User:
        try:
            with self.db.transaction():
                cur = self.db.execute(
                    "INSERT INTO users (username, password_hash, is_admin, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (username, password_hash, int(is_admin), now),
                )
        except sqlite3.IntegrityError:
            raise NameTaken(f"the username {username!r} is taken") from None
        user = self.get(int(cur.lastrowid or 0))
        assert user is not None
        return user

    def get(self, user_id: int) -> User | None:
        row = self.db.one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    def by_name(self, username: str) -> User | None:
        row = self.db.one(
            f"SELECT {_USER_COLUMNS} FROM users WHERE username = ? AND domain IS NULL",
            (username,),
        )
        return _user(row) if row else None

    def by_handle(self, username: str, domain: str) -> User | None:
        """A remote user (actor) by its ``username@domain`` handle; DOMAIN canonical
        (node/handles.py), the name compared case-insensitively."""
        row = self.db.one(
            f"SELECT {_USER_COLUMNS} FROM users WHERE username = ? COLLATE NOCASE"
            " AND domain = ? ORDER BY username = ? DESC LIMIT 1",
            (username, domain, username),
        )
        return _user(row) if row else None

    def by_actor_uri(self, actor_uri: str) -> User | None:
        """A remote user by its ActivityPub actor id."""
        row = self.db.one(
            f"SELECT {_USER_COLUMNS} FROM users WHERE actor_uri = ? AND domain IS NOT NULL",
            (actor_uri,),
        )
        return _user(row) if row else None

    def many(self, ids: list[int]) -> dict[int, User]:
        if not ids:
            return {}
        marks = ",".join("?" for _ in ids)
        rows = self.db.all(f"SELECT {_USER_COLUMNS} FROM users WHERE id IN ({marks})", tuple(ids))
        return {row["id"]: _user(row) for row in rows}

    def list_local(self) -> list[User]:
        rows = self.db.all(
            f"SELECT {_USER_COLUMNS} FROM users WHERE domain IS NULL ORDER BY username"
        )
        return [_user(r) for r in rows]

    def count_local(self) -> int:
        row = self.db.one("SELECT count(*) FROM users WHERE domain IS NULL")
        return int(row[0]) if row else 0

    def password_hash(self, user_id: int) -> str | None:
        row = self.db.one("SELECT password_hash FROM users WHERE id = ?", (user_id,))
        return row["password_hash"] if row else None

    def update_profile(
        self,
        user_id: int,
        display_name: str | None = None,
        bio: str | None = None,
        locked: bool | None = None,
    ) -> User:
        with self.db.transaction():
            if display_name is not None:
                self.db.execute(
                    "UPDATE users SET display_name = ? WHERE id = ?", (display_name, user_id)
                )
            if bio is not None:
                self.db.execute("UPDATE users SET bio = ? WHERE id = ?", (bio, user_id))
            if locked is not None:
                self.db.execute("UPDATE users SET locked = ? WHERE id = ?", (int(locked), user_id))
        user = self.get(user_id)
        assert user is not None
        return user

    def delete(self, user_id: int) -> None:
        """Delete the account; sessions, follows and participations cascade."""
        with self.db.transaction():
            self.db.execute("DELETE FROM users WHERE id = ?", (user_id,))


class SessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        token_hash: str,
        user_id: int,
        kind: str,
        csrf_token: str,
        now: float,
        expires_at: float | None,
        label: str = "",
    ) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO sessions (token_hash, user_id, kind, csrf_token, label, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token_hash, user_id, kind, csrf_token, label, now, expires_at),
            )

    def get(self, token_hash: str) -> Session | None:
        row = self.db.one("SELECT * FROM sessions WHERE token_hash = ?", (token_hash,))
        if row is None:
            return None
        return Session(
            token_hash=row["token_hash"],
            user_id=row["user_id"],
            kind=row["kind"],
            csrf_token=row["csrf_token"],
            label=row["label"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )

    def delete(self, token_hash: str) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def delete_expired(self, now: float) -> int:
        with self.db.transaction():
            cur = self.db.execute(
                "DELETE FROM sessions WHERE expires_at IS NOT NULL AND expires_at < ?", (now,)
            )
        return cur.rowcount
