from __future__ import annotations

from pathlib import Path

import pytest

from node.settings import SettingsError, load_settings
from node.store.db import StoreError, open_database
from node.store.migrations import MIGRATIONS


def test_migrations_from_empty_db(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    assert db.schema_version() == len(MIGRATIONS)
    tables = {r[0] for r in db.all("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "sessions", "follows", "rooms", "room_participants", "room_bans"} <= tables
    assert db.one("PRAGMA journal_mode")[0] == "wal"  # type: ignore[index]
    assert db.migrate() == len(MIGRATIONS)  # idempotent
    db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this Salon"):
        open_database(tmp_path / "x.db")


def test_transaction_rolls_back_everything(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("INSERT INTO users (username, created_at) VALUES ('a', 0)")
        raise RuntimeError("boom")
    assert db.one("SELECT count(*) FROM users")[0] == 0  # type: ignore[index]


def test_settings_precedence(tmp_path: Path) -> None:
    (tmp_path / "salon.toml").write_text("port = 9000\nnode_name = 'From file'\n")
    s = load_settings(tmp_path, {"port": None}, environ={"SALON_PORT": "9100"})
    assert (s.port, s.node_name) == (9100, "From file")
    s = load_settings(tmp_path, {"port": 9200}, environ={"SALON_PORT": "9100"})
    assert s.port == 9200 and s.base_url == "http://127.0.0.1:9200"
    s = load_settings(
        tmp_path, environ={"SALON_TESTNET": "yes", "SALON_ICE_ADDRESSES": "127.0.0.1"}
    )
    assert s.testnet is True and s.ice_addresses == ("127.0.0.1",)


def test_media_port_settings(tmp_path: Path) -> None:
    s = load_settings(tmp_path, environ={})
    assert (s.media_port, s.media_tcp_port, s.media_bind_address) == (40000, 40000, "0.0.0.0")
    s = load_settings(
        tmp_path,
        {"media_tcp_port": 5000},
        environ={
            "SALON_MEDIA_PORT": "0",
            "SALON_MEDIA_TCP_PORT": "4000",
            "SALON_ICE_ADDRESSES": "127.0.0.1",
        },
    )
    # a flag beats the environment; ice_addresses == (host,) binds the media port there
    assert (s.media_port, s.media_tcp_port, s.media_bind_address) == (0, 5000, "127.0.0.1")
    s = load_settings(tmp_path, environ={"SALON_MEDIA_BIND": "10.0.0.2"})
    assert s.media_bind_address == "10.0.0.2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 'x'", "setting 'port'"),
        ("media_port = 70000", "setting 'media_port': 70000 is out of range"),
        ("media_tcp_port = -1", "setting 'media_tcp_port': -1 is out of range"),
        ("ice_port_min = 40000", "'ice_port_min' was removed: .* one port, 'media_port'"),
        ("trunk_bind = '0.0.0.0'", "'trunk_bind' was removed: .*'media_bind'"),
        ("colour = 1", "unknown setting"),
        ("url = 'ftp://x'", "must start with http"),
        ("port = [", "salon.toml"),
        ("testnet = 'maybe'", "setting 'testnet'"),
    ],
)
def test_bad_settings(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "salon.toml").write_text(text + "\n")
    with pytest.raises(SettingsError, match=message):
        load_settings(tmp_path, environ={})
