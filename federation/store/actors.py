"""Local users' keys, remote actors and the ids of follow activities."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from federation.keys import ActorKeys
from node.store.db import Database


@dataclass(frozen=True)
class RemoteActorRow:
    user_id: int
    actor_uri: str
    inbox: str
    shared_inbox: str | None
    document: dict[str, Any]
    fetched_at: float

    @property
    def delivery_inbox(self) -> str:
        return self.shared_inbox or self.inbox


def _actor(row: sqlite3.Row) -> RemoteActorRow:
    return RemoteActorRow(
        user_id=row["user_id"],
        actor_uri=row["actor_uri"],
        inbox=row["inbox"],
        shared_inbox=row["shared_inbox"],
        document=json.loads(row["document"]),
        fetched_at=row["fetched_at"],
    )


class KeyStore:
    """Local users' private keys (RSA for draft-cavage, Ed25519 for FEP-521a)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def keys_for(self, user_id: int) -> ActorKeys | None:
        row = self.db.one(
            "SELECT rsa_private_pem, ed25519_private_pem FROM actor_keys WHERE user_id = ?",
            (user_id,),
        )
        return ActorKeys(row[0], row[1]) if row else None

    def ensure_keys(self, user_id: int, now: float) -> ActorKeys:
        """The user's keys, generated on first use (accounts made by older versions).

        Generates on the calling thread; new accounts get theirs off the event loop when
        they are created (``federation.identity.make_user_keys``)."""
        found = self.keys_for(user_id)
        if found is not None:
            return found
        return self.store_once(user_id, ActorKeys.generate(), now)

    def store_once(self, user_id: int, fresh: ActorKeys, now: float) -> ActorKeys:
        """Store FRESH unless the user already has keys, and return the stored ones: when
        two first uses race, both get the pair that was stored first."""
        with self.db.transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO actor_keys (user_id, rsa_private_pem, ed25519_private_pem,"
                " created_at) VALUES (?, ?, ?, ?)",
                (user_id, fresh.rsa_private_pem, fresh.ed25519_private_pem, now),
            )
        stored = self.keys_for(user_id)
        assert stored is not None
        return stored


class RemoteActorStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert_actor(
        self,
        *,
        actor_uri: str,
        username: str,
        domain: str,
        display_name: str,
        bio: str,
        locked: bool,
        inbox: str,
        shared_inbox: str | None,
        document: dict[str, Any],
        now: float,
    ) -> int:
        """Create or refresh the users + remote_actors rows of one remote actor; its user id."""
        with self.db.transaction():
            row = self.db.one("SELECT id FROM users WHERE actor_uri = ?", (actor_uri,))
            if row is None:
                row = self.db.one(
                    "SELECT id FROM users WHERE username = ? COLLATE NOCASE AND domain = ?",
                    (username, domain),
                )
            if row is None:
                cur = self.db.execute(
                    "INSERT INTO users (username, domain, display_name, bio, locked, actor_uri,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (username, domain, display_name, bio, int(locked), actor_uri, now),
                )
                user_id = int(cur.lastrowid or 0)
            else:
                user_id = int(row[0])
                self.db.execute(
                    "UPDATE users SET username = ?, domain = ?, display_name = ?, bio = ?,"
                    " locked = ?, actor_uri = ? WHERE id = ?",
                    (username, domain, display_name, bio, int(locked), actor_uri, user_id),
                )
            self.db.execute(
                "INSERT INTO remote_actors (user_id, actor_uri, inbox, shared_inbox, document,"
                " fetched_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET"
                " actor_uri = excluded.actor_uri, inbox = excluded.inbox,"
                " shared_inbox = excluded.shared_inbox, document = excluded.document,"
                " fetched_at = excluded.fetched_at",
                (user_id, actor_uri, inbox, shared_inbox, json.dumps(document), now),
            )
        return user_id

    def actor_by_uri(self, actor_uri: str) -> RemoteActorRow | None:
        row = self.db.one("SELECT * FROM remote_actors WHERE actor_uri = ?", (actor_uri,))
        return _actor(row) if row else None

    def actor_by_user(self, user_id: int) -> RemoteActorRow | None:
        row = self.db.one("SELECT * FROM remote_actors WHERE user_id = ?", (user_id,))
        return _actor(row) if row else None

    def user_by_handle(self, username: str, domain: str) -> int | None:
        """Handles compare case-insensitively (ASCII: remote usernames are ASCII here)."""
        row = self.db.one(
            "SELECT id FROM users WHERE username = ? COLLATE NOCASE AND domain = ?",
            (username, domain),
        )
        return int(row[0]) if row else None

    def delete_actor(self, actor_uri: str) -> bool:
        """Forget a remote actor: follows, rooms and presence go with the users row."""
        with self.db.transaction():
            cur = self.db.execute(
                "DELETE FROM users WHERE actor_uri = ? AND domain IS NOT NULL", (actor_uri,)
            )
        return cur.rowcount > 0

    def remote_follower_inboxes(self, followee_id: int) -> list[str]:
        """One inbox per destination: shared inboxes collapse a node's followers to one row."""
        rows = self.db.all(
            "SELECT DISTINCT coalesce(r.shared_inbox, r.inbox) FROM follows f"
            " JOIN remote_actors r ON r.user_id = f.follower_id"
            " WHERE f.followee_id = ? AND f.state = 'accepted'",
            (followee_id,),
        )
        return [r[0] for r in rows]

    def followed_locally(self, user_id: int) -> bool:
        """Does any local user follow USER_ID (accepted)? Announcements need a reader."""
        row = self.db.one(
            "SELECT 1 FROM follows f JOIN users u ON u.id = f.follower_id"
            " WHERE f.followee_id = ? AND f.state = 'accepted' AND u.domain IS NULL LIMIT 1",
            (user_id,),
        )
        return row is not None


class FollowActivityStore:
    """The id of the Follow behind each follow that crosses nodes (Accept/Undo name it)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put_follow_activity(self, follower_id: int, followee_id: int, activity_id: str) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO follow_activities (follower_id, followee_id, activity_id)"
                " VALUES (?, ?, ?) ON CONFLICT (follower_id, followee_id)"
                " DO UPDATE SET activity_id = excluded.activity_id",
                (follower_id, followee_id, activity_id),
            )

    def follow_activity(self, follower_id: int, followee_id: int) -> str | None:
        row = self.db.one(
            "SELECT activity_id FROM follow_activities WHERE follower_id = ? AND followee_id = ?",
            (follower_id, followee_id),
        )
        return row[0] if row else None

    def follow_by_activity(self, activity_id: str) -> tuple[int, int] | None:
        row = self.db.one(
            "SELECT follower_id, followee_id FROM follow_activities WHERE activity_id = ?",
            (activity_id,),
        )
        return (int(row[0]), int(row[1])) if row else None

    def forget_follow_activity(self, follower_id: int, followee_id: int) -> None:
        with self.db.transaction():
            self.db.execute(
                "DELETE FROM follow_activities WHERE follower_id = ? AND followee_id = ?",
                (follower_id, followee_id),
            )
