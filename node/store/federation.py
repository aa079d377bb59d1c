"""Federation state: actor keys, remote actors, follow activity ids, replay dedupe,
domain policies and remote rooms. The delivery queue lives in ``deliveries.py``.

Remote actors are rows of ``users`` (``domain`` set, ``actor_uri`` set, Mastodon's design)
plus one ``remote_actors`` row with what delivery needs (inboxes) and the last document.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from federation.keys import ActorKeys
from node.store.db import Database

POLICIES = ("suspend", "limit", "allow")


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


@dataclass(frozen=True)
class RemoteRoomRow:
    uri: str
    host_id: int
    status: str
    document: dict[str, Any]
    updated_at: float


def _actor(row: sqlite3.Row) -> RemoteActorRow:
    return RemoteActorRow(
        user_id=row["user_id"],
        actor_uri=row["actor_uri"],
        inbox=row["inbox"],
        shared_inbox=row["shared_inbox"],
        document=json.loads(row["document"]),
        fetched_at=row["fetched_at"],
    )


class FederationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- keys of local users ---------------------------------------------------------
    def keys_for(self, user_id: int) -> ActorKeys | None:
        row = self.db.one(
            "SELECT rsa_private_pem, ed25519_private_pem FROM actor_keys WHERE user_id = ?",
            (user_id,),
        )
        return ActorKeys(row[0], row[1]) if row else None

    def ensure_keys(self, user_id: int, now: float) -> ActorKeys:
        """The user's keys, generated on first use (users made by older versions or the CLI)."""
        found = self.keys_for(user_id)
        if found is not None:
            return found
        fresh = ActorKeys.generate()
        with self.db.transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO actor_keys (user_id, rsa_private_pem, ed25519_private_pem,"
                " created_at) VALUES (?, ?, ?, ?)",
                (user_id, fresh.rsa_private_pem, fresh.ed25519_private_pem, now),
            )
        stored = self.keys_for(user_id)
        assert stored is not None
        return stored

    # ---- remote actors ---------------------------------------------------------------
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
                    "SELECT id FROM users WHERE username = ? AND domain = ?", (username, domain)
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
        row = self.db.one(
            "SELECT id FROM users WHERE username = ? AND domain = ?", (username, domain)
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

    # ---- follow activity ids -----------------------------------------------------------
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

    # ---- replay protection -------------------------------------------------------------
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

    # ---- domain policies ---------------------------------------------------------------
    def set_policy(self, domain: str, policy: str, now: float) -> None:
        domain = domain.lower()
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO domain_policies (domain, policy, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (domain) DO UPDATE SET policy = excluded.policy",
                (domain, policy, now),
            )
            if policy == "suspend":
                # Mastodon severs relationships with a suspended domain.
                match = "domain = ? OR domain LIKE ? OR domain LIKE ?"
                params = (domain, f"%.{domain}", f"{domain}:%")
                self.db.execute(
                    f"DELETE FROM follows WHERE follower_id IN (SELECT id FROM users WHERE"
                    f" {match}) OR followee_id IN (SELECT id FROM users WHERE {match})",
                    params + params,
                )

    def remove_policy(self, domain: str) -> bool:
        with self.db.transaction():
            cur = self.db.execute("DELETE FROM domain_policies WHERE domain = ?", (domain.lower(),))
        return cur.rowcount > 0

    def policies(self) -> list[tuple[str, str, float]]:
        rows = self.db.all("SELECT domain, policy, created_at FROM domain_policies ORDER BY domain")
        return [(r[0], r[1], r[2]) for r in rows]

    def policy_for(self, host: str) -> str | None:
        """Most specific policy for ``host[:port]``: exact, then without port, then parents."""
        host = host.lower()
        candidates = [host]
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        candidates.append(name)
        parts = name.split(".")
        candidates.extend(".".join(parts[i:]) for i in range(1, len(parts) - 1))
        marks = ",".join("?" for _ in candidates)
        rows = {
            r[0]: r[1]
            for r in self.db.all(
                f"SELECT domain, policy FROM domain_policies WHERE domain IN ({marks})",
                tuple(candidates),
            )
        }
        return next((rows[c] for c in candidates if c in rows), None)

    # ---- remote rooms ------------------------------------------------------------------
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

    def delete_room(self, uri: str) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM remote_rooms WHERE uri = ?", (uri,))

    def count(self, table: str) -> int:
        """Row count of a federation table (tests assert that rejections store nothing)."""
        if table not in {
            "remote_actors",
            "follow_activities",
            "seen_activities",
            "remote_rooms",
            "follows",
            "deliveries",
        }:
            raise ValueError(f"unknown table {table!r}")
        row = self.db.one(f"SELECT count(*) FROM {table}")
        return int(row[0]) if row else 0


def _room(row: sqlite3.Row) -> RemoteRoomRow:
    return RemoteRoomRow(
        uri=row["uri"],
        host_id=row["host_id"],
        status=row["status"],
        document=json.loads(row["document"]),
        updated_at=row["updated_at"],
    )
