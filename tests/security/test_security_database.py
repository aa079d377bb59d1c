"""Attack: salon.db (users' private keys, password hashes) was created 0644, readable by
every local account on the machine. It is created 0600, and an older 0644 one (with its
WAL and shared-memory files) is tightened when the node opens it."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from tests.support.nodes import NodeFactory


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_fresh_database_and_its_wal_are_private(node_factory: NodeFactory) -> None:
    old_umask = os.umask(0o022)  # the usual umask: files 0644 unless the code says otherwise
    try:
        node = await node_factory()
        await node.user("alice")  # a write: the WAL and shared-memory files now exist
    finally:
        os.umask(old_umask)
    db = node.settings.db_path
    assert _mode(db) == 0o600
    for suffix in ("-wal", "-shm"):
        side = Path(str(db) + suffix)
        assert side.exists() and _mode(side) == 0o600, suffix


async def test_existing_world_readable_database_is_tightened(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    data = tmp_path / "old"
    data.mkdir()
    db = data / "salon.db"
    with sqlite3.connect(db) as conn:  # as an older Salon left it
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE leftover (x)")
    for name in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
        name.touch()
        name.chmod(0o644)
    node = await node_factory("old")
    assert node.settings.db_path == db
    for name in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
        assert _mode(name) == 0o600, name
    # the node works on the tightened file
    alice = await node.user("alice")
    assert (await alice.call("GET", "/api/me"))[0] == 200
