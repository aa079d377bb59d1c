"""Attack: every sign-up generated an RSA-2048 key pair on the event loop, so a burst of
sign-ups froze every room (8 sign-ups stalled the loop 172 ms). Keys are now generated in
a worker thread and stored once, also for accounts added with `salon user add`."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from federation.identity import make_user_keys
from federation.keys import ActorKeys
from federation.store.actors import KeyStore
from node.store.db import open_database
from node.store.users import UserStore
from tests.support.attacks import parts
from tests.support.cli import run_cli
from tests.support.nodes import NodeFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def generator_threads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seam: record the thread each key pair is generated on."""
    threads: list[int] = []
    real = ActorKeys.generate

    def recording(cls: type[ActorKeys]) -> ActorKeys:
        threads.append(threading.get_ident())
        return real()

    monkeypatch.setattr(ActorKeys, "generate", classmethod(recording))
    return threads


async def test_signup_keys_are_generated_off_the_loop(
    node_factory: NodeFactory, generator_threads: list[int]
) -> None:
    node = await node_factory()
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    clients = [await node.user() for _ in range(8)]
    await asyncio.gather(*(c.signup(f"burst{i}") for i, c in enumerate(clients)))
    ticking.cancel()

    loop_thread = threading.get_ident()
    assert len(generator_threads) == 8
    assert loop_thread not in generator_threads, f"loop lag up to {max(gaps) * 1000:.0f} ms"
    store = KeyStore(parts(node).db)
    users = parts(node).accounts.users
    pems = set()
    for i in range(8):
        user = users.by_name(f"burst{i}")
        assert user is not None
        found = store.keys_for(user.id)
        assert found is not None
        pems.add(found.rsa_private_pem)
    assert len(pems) == 8


async def test_concurrent_first_use_stores_one_pair(
    node_factory: NodeFactory, generator_threads: list[int]
) -> None:
    """An account from an older version has no keys; its first uses race. All of them
    must end up with the same stored pair."""
    node = await node_factory()
    db = parts(node).db
    store = KeyStore(db)
    old = UserStore(db).create("oldtimer", "not-a-hash", 0.0)
    racing = [asyncio.create_task(make_user_keys(store, old.id, 1.0)) for _ in range(4)]
    await asyncio.sleep(0)  # the threads are generating
    first = store.ensure_keys(old.id, 1.0)  # a synchronous first use meanwhile
    results = await asyncio.gather(*racing)
    assert {k.rsa_private_pem for k in [first, *results]} == {first.rsa_private_pem}
    row = db.one("SELECT COUNT(*) FROM actor_keys WHERE user_id = ?", (old.id,))
    assert row is not None and row[0] == 1


def test_cli_user_add_makes_keys(tmp_path: Path) -> None:
    data = tmp_path / "cli"
    added = run_cli(
        "user", "add", "carol", "--password", "password123", "--data", str(data), cwd=ROOT
    )
    assert added.returncode == 0, added.stderr
    db = open_database(data / "salon.db")
    try:
        carol = UserStore(db).by_name("carol")
        assert carol is not None and KeyStore(db).keys_for(carol.id) is not None
    finally:
        db.close()
