"""Versioned schema migrations. Append only: never edit a released step.

Users hold both local accounts (``domain`` NULL) and, once federation lands, remote actors
(``domain`` set), as Mastodon's accounts table does; follows therefore reference users.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils


def _v1_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL,
            domain TEXT,
            display_name TEXT NOT NULL DEFAULT '',
            bio TEXT NOT NULL DEFAULT '',
            password_hash TEXT,
            locked INTEGER NOT NULL DEFAULT 0,
            is_admin INTEGER NOT NULL DEFAULT 0,
            actor_uri TEXT,
            created_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE UNIQUE INDEX users_local_name ON users(username) WHERE domain IS NULL")
    db.execute(
        "CREATE UNIQUE INDEX users_remote_name ON users(username, domain) WHERE domain IS NOT NULL"
    )
    db.execute(
        """
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('cookie', 'bearer')),
            csrf_token TEXT NOT NULL,
            label TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            expires_at REAL
        )"""
    )
    db.execute("CREATE INDEX sessions_user ON sessions(user_id)")
    db.execute(
        """
        CREATE TABLE follows (
            follower_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            followee_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            state TEXT NOT NULL CHECK (state IN ('accepted', 'pending')),
            created_at REAL NOT NULL,
            PRIMARY KEY (follower_id, followee_id)
        )"""
    )
    db.execute("CREATE INDEX follows_followee ON follows(followee_id)")
    db.execute(
        """
        CREATE TABLE rooms (
            id TEXT PRIMARY KEY,
            host_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            title TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            join_mode TEXT NOT NULL CHECK (join_mode IN ('open', 'social', 'closed')),
            status TEXT NOT NULL CHECK (status IN ('scheduled', 'live', 'ended')),
            invite_token TEXT NOT NULL,
            start_time REAL,
            started_at REAL,
            ended_at REAL,
            created_at REAL NOT NULL,
            seq INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute("CREATE INDEX rooms_status ON rooms(status)")
    db.execute(
        """
        CREATE TABLE room_participants (
            room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('host', 'moderator', 'speaker', 'listener')),
            joined_at REAL NOT NULL,
            stage_since REAL,
            hand_raised_at REAL,
            invited_to_speak INTEGER NOT NULL DEFAULT 0,
            muted INTEGER NOT NULL DEFAULT 0,
            mute_locked INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (room_id, user_id)
        )"""
    )
    db.execute(
        """
        CREATE TABLE room_invites (
            room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            PRIMARY KEY (room_id, user_id)
        )"""
    )
    db.execute(
        """
        CREATE TABLE room_bans (
            room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            PRIMARY KEY (room_id, user_id)
        )"""
    )
    db.execute(
        """
        CREATE TABLE room_moderators (
            room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            PRIMARY KEY (room_id, user_id)
        )"""
    )


def _v2_federation(db: sqlite_utils.Database) -> None:
    """Keys, remote actors, the delivery queue, replay dedupe, domain policies, remote rooms."""
    db.execute(
        """
        CREATE TABLE actor_keys (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            rsa_private_pem TEXT NOT NULL,
            ed25519_private_pem TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE remote_actors (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            actor_uri TEXT NOT NULL UNIQUE,
            inbox TEXT NOT NULL,
            shared_inbox TEXT,
            document TEXT NOT NULL,
            fetched_at REAL NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE follow_activities (
            follower_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            followee_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            activity_id TEXT NOT NULL,
            PRIMARY KEY (follower_id, followee_id)
        )"""
    )
    db.execute("CREATE INDEX follow_activities_id ON follow_activities(activity_id)")
    db.execute(
        """
        CREATE TABLE seen_activities (
            activity_id TEXT PRIMARY KEY,
            received_at REAL NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE outbox_activities (
            id TEXT PRIMARY KEY,
            signer_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            document TEXT NOT NULL,
            public INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX outbox_signer ON outbox_activities(signer_id, created_at)")
    db.execute(
        """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            activity_id TEXT NOT NULL REFERENCES outbox_activities(id) ON DELETE CASCADE,
            inbox TEXT NOT NULL,
            host TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            claimed INTEGER NOT NULL DEFAULT 0,
            last_status INTEGER,
            last_error TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (activity_id, inbox)
        )"""
    )
    db.execute("CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at)")
    db.execute(
        """
        CREATE TABLE delivery_hosts (
            host TEXT PRIMARY KEY,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            available_at REAL
        )"""
    )
    db.execute(
        """
        CREATE TABLE domain_policies (
            domain TEXT PRIMARY KEY,
            policy TEXT NOT NULL CHECK (policy IN ('suspend', 'limit', 'allow')),
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE remote_rooms (
            uri TEXT PRIMARY KEY,
            host_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            status TEXT NOT NULL,
            document TEXT NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX remote_rooms_host ON remote_rooms(host_id)")


def _v3_moderation_desk(db: sqlite_utils.Database) -> None:
    """Reports, the operator's audit log, warnings, and account suspension and limits."""
    db.execute("ALTER TABLE users ADD COLUMN suspended_at REAL")
    db.execute("ALTER TABLE users ADD COLUMN limited_at REAL")
    db.execute(
        """
        CREATE TABLE reports (
            id INTEGER PRIMARY KEY,
            origin TEXT NOT NULL CHECK (origin IN ('local', 'remote')),
            origin_domain TEXT,
            reporter_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
            target_user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
            target TEXT NOT NULL,
            room_uri TEXT,
            category TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            context TEXT NOT NULL DEFAULT '{}',
            forwarded INTEGER NOT NULL DEFAULT 0,
            flag_id TEXT,
            status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
            note TEXT NOT NULL DEFAULT '',
            resolved_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
            resolved_at REAL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX reports_status ON reports(status, created_at)")
    db.execute(
        """
        CREATE TABLE moderation_audit (
            id INTEGER PRIMARY KEY,
            admin_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
            admin TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE warnings (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            note TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )


def _v4_blocks(db: sqlite_utils.Database) -> None:
    """Blocks (local ones, and remote people's Blocks of our users) and local mutes."""
    db.execute(
        """
        CREATE TABLE blocks (
            blocker_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            blocked_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            activity_id TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (blocker_id, blocked_id)
        )"""
    )
    db.execute("CREATE INDEX blocks_blocked ON blocks(blocked_id)")
    db.execute("CREATE INDEX blocks_activity ON blocks(activity_id)")
    db.execute(
        """
        CREATE TABLE mutes (
            muter_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            muted_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            PRIMARY KEY (muter_id, muted_id)
        )"""
    )


def _v5_notifications(db: sqlite_utils.Database) -> None:
    """In-app notifications: one row per user and event, deduplicated by a per-user key."""
    db.execute(
        """
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            room_url TEXT NOT NULL,
            title TEXT NOT NULL,
            actor TEXT,
            dedupe_key TEXT NOT NULL,
            created_at REAL NOT NULL,
            read INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute("CREATE UNIQUE INDEX notifications_key ON notifications(user_id, dedupe_key)")
    db.execute("CREATE INDEX notifications_user ON notifications(user_id, id)")


def _v6_rsvps(db: sqlite_utils.Database) -> None:
    """RSVPs ("Notify me") and calendar feed tokens.

    ``room`` is a local room's id or a remote room's Event URI; ``user_id`` is a local user
    (their own RSVP) or a remote actor's row (their RSVP to one of our rooms, by ``Follow``
    of the room: ``activity_id``). The reminder marks say which reminders went out.
    """
    db.execute(
        """
        CREATE TABLE rsvps (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            room TEXT NOT NULL,
            activity_id TEXT,
            soon_sent INTEGER NOT NULL DEFAULT 0,
            start_sent INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            PRIMARY KEY (user_id, room)
        )"""
    )
    db.execute("CREATE INDEX rsvps_room ON rsvps(room)")
    db.execute("CREATE INDEX rsvps_activity ON rsvps(activity_id)")
    db.execute(
        """
        CREATE TABLE calendar_tokens (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL
        )"""
    )


def _v7_replays(db: sqlite_utils.Database) -> None:
    """Recorded rooms (issue #14): the room's ``record`` choice and one row per replay file
    (the file itself lives in ``replay_dir``)."""
    db.execute("ALTER TABLE rooms ADD COLUMN record INTEGER NOT NULL DEFAULT 0")
    db.execute(
        """
        CREATE TABLE replays (
            room_id TEXT PRIMARY KEY,
            host_id INTEGER NOT NULL,
            title TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('recording', 'ready', 'failed', 'deleted')),
            bytes INTEGER NOT NULL DEFAULT 0,
            duration REAL NOT NULL DEFAULT 0,
            started REAL NOT NULL,
            ended REAL,
            trim_start REAL NOT NULL DEFAULT 0,
            trim_end REAL
        )"""
    )
    db.execute("CREATE INDEX replays_host ON replays(host_id, status)")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1_initial,
    _v2_federation,
    _v3_moderation_desk,
    _v4_blocks,
    _v5_notifications,
    _v6_rsvps,
    _v7_replays,
]
