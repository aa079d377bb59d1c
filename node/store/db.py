"""The SQLite database: connection set-up, transactions and versioned migrations.

Only ``node/store/`` runs SQL. Everything above it talks to the narrow store classes, so the
state can move to another engine later without touching the services.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from node.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The database could not be opened or migrated."""


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                _private_file(self.path)
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        conn.row_factory = sqlite3.Row
        self.db = sqlite_utils.Database(conn)
        self.conn = conn
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA synchronous=NORMAL")
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (nested calls join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return list(self.conn.execute(sql, params).fetchall())

    def schema_version(self) -> int:
        row = self.one("PRAGMA user_version")
        return int(row[0]) if row else 0

    def migrate(self) -> int:
        """Apply every migration newer than the stored version, each in its own transaction."""
        current = self.schema_version()
        if current > len(MIGRATIONS):
            raise StoreError(
                f"database schema version {current} is newer than this Salon "
                f"({len(MIGRATIONS)}); upgrade Salon"
            )
        for version, step in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            log.info("migrate: applying schema version %d", version)
            with self.transaction():
                step(self.db)
                self.conn.execute(f"PRAGMA user_version={version}")
        return self.schema_version()

    def close(self) -> None:
        self.conn.close()


def _private_file(path: str) -> None:
    """Create the database file 0600, and tighten one made looser by an older Salon.

    It holds users' private keys and password hashes. SQLite creates the ``-wal`` and
    ``-shm`` files with the main file's mode, so a private main file keeps them private;
    ones left behind by an older version are tightened here too.
    """
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))
    for name in (path, path + "-wal", path + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(os.stat(name).st_mode) & 0o077:
                os.chmod(name, 0o600)
                log.warning("store: %s was readable by others; now mode 0600", name)


def open_database(path: Path | str) -> Database:
    database = Database(path)
    database.migrate()
    return database
