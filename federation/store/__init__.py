"""Federation's tables, each behind a narrow store that a component is given by the
composition root (cli/app.py), so a reader sees from a constructor which tables a component
touches. Only this package and ``node/store`` run SQL; the schema history is one linear
list in ``node/store/migrations.py`` because SQLite keeps one ``user_version``.

Remote actors are rows of ``users`` (``domain`` set, ``actor_uri`` set, Mastodon's design)
plus one ``remote_actors`` row with what delivery needs (inboxes) and the last document.
"""

from __future__ import annotations

from node.store.db import Database

FEDERATION_TABLES = frozenset(
    {
        "remote_actors",
        "follow_activities",
        "seen_activities",
        "remote_rooms",
        "follows",
        "deliveries",
    }
)


def count_rows(db: Database, table: str) -> int:
    """Row count of a federation table (tests assert that rejections store nothing)."""
    if table not in FEDERATION_TABLES:
        raise ValueError(f"unknown table {table!r}")
    row = db.one(f"SELECT count(*) FROM {table}")
    return int(row[0]) if row else 0
