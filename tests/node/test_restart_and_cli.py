"""Restart on the same data dir, and the real `salon` command in subprocesses."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.support.cli import SALON, run_cli
from tests.support.nodes import ApiUser, Node, NodeFactory, free_port, make_settings
from tests.support.serve import serve_args


async def test_restart_keeps_users_follows_rooms(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "n", port=free_port())
    first = await Node(settings).start()
    alice = await first.user("alice")
    bob = await first.user("bob")
    await bob.call("POST", "/api/users/alice/follow")
    _, live = await alice.call("POST", "/api/rooms", {"title": "Live one"})
    await alice.call("POST", f"/api/rooms/{live['id']}/join")
    await bob.call("POST", f"/api/rooms/{live['id']}/join")
    await alice.call("POST", f"/api/rooms/{live['id']}/invite_to_speak", {"user": "bob"})
    await bob.call("POST", f"/api/rooms/{live['id']}/accept_invite")
    _, later = await alice.call(
        "POST", "/api/rooms", {"title": "Later", "start_time": time.time() + 3600}
    )
    await first.stop()

    second = await Node(settings).start()
    try:
        bob2 = await second.user()
        assert (await bob2.signin("bob"))[0] == 200
        status, view = await bob2.call("GET", f"/api/rooms/{live['id']}")
        assert status == 200 and view["status"] == "live"
        assert [s["user"] for s in view["speakers"]] == ["alice", "bob"]
        assert all(s["connected"] is False for s in view["speakers"])
        assert (await bob2.call("GET", f"/api/rooms/{later['id']}"))[1]["status"] == "scheduled"
        assert (await bob2.call("GET", "/api/users/alice"))[1]["followers_count"] == 1
        # bob reclaims his seat as a speaker
        ws = await bob2.ws(live["id"])
        state = (await asyncio.wait_for(ws.receive(), 5)).json()
        assert state["room"]["you"]["role"] == "speaker"
        await ws.close()
    finally:
        await second.stop()


@pytest.mark.timeout(90)
async def test_cli_serve_user_add_signin_create_room(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "cli-data"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [*SALON, *serve_args(data, port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(base + "/") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("node did not start")
        added = run_cli(
            "user",
            "add",
            "alice",
            "--password",
            "password123",
            "--data",
            str(data),
            cwd=tmp_path,
            env=env,
        )
        assert added.returncode == 0, added.stderr
        assert "added user alice" in added.stdout
        dup = run_cli(
            "user",
            "add",
            "alice",
            "--password",
            "password123",
            "--data",
            str(data),
            cwd=tmp_path,
            env=env,
        )
        assert dup.returncode != 0 and "taken" in dup.stderr
        bad = run_cli(
            "user",
            "add",
            "Bad Name",
            "--password",
            "password123",
            "--data",
            str(data),
            cwd=tmp_path,
            env=env,
        )
        assert bad.returncode != 0 and "username must be" in bad.stderr
        listed = run_cli("user", "list", "--data", str(data), cwd=tmp_path, env=env)
        assert listed.stdout.split()[0] == "alice"

        client = ApiUser(base)
        try:
            assert (await client.signin("alice"))[0] == 200
            status, room = await client.call("POST", "/api/rooms", {"title": "From the CLI test"})
            assert status == 201 and room["url"] == f"{base}/rooms/{room['id']}"
            ws = await client.ws(room["id"])
            assert (await ws.receive()).json()["type"] == "state"
            proc.send_signal(signal.SIGTERM)
            closing = await asyncio.wait_for(ws.receive(), 10)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert (closing.data, closing.extra) == (1001, "server shutting down")
        finally:
            await client.close()
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.stdout.read() if proc.stdout else ""
    assert f"listening on http://127.0.0.1:{port}" in output
    # the media ports it bound (any free ones, as asked): numbers a firewall rule can use
    found = re.search(rf"HTTP port {port}; media port UDP (\d+), TCP (\d+)", output)
    assert found and all(int(p) > 0 for p in found.groups()), output
    assert (data / "salon.toml").exists() and (data / "keys" / "node-rsa.pem").exists()
    assert (data / "keys" / "node-rsa.pem").stat().st_mode & 0o077 == 0


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    removed = run_cli(
        "user", "remove", "ghost", "--yes", "--data", str(tmp_path / "d"), cwd=tmp_path, env=env
    )
    assert removed.returncode == 1 and "no Salon data directory" in removed.stderr
    assert not (tmp_path / "d").exists(), "a typo'd --data must not create a node"
    assert run_cli("init", "--data", str(tmp_path / "d"), cwd=tmp_path, env=env).returncode == 0
    removed = run_cli(
        "user", "remove", "ghost", "--yes", "--data", str(tmp_path / "d"), cwd=tmp_path, env=env
    )
    assert removed.returncode == 1 and "no user named 'ghost'" in removed.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "salon.toml").write_text("port = 'eighty'\n")
    served = run_cli("serve", "--data", str(tmp_path / "bad"), cwd=tmp_path, env=env)
    assert served.returncode == 2 and "setting 'port'" in served.stderr
    nopass = run_cli(
        "user",
        "add",
        "zed",
        "--data",
        str(tmp_path / "d"),
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert nopass.returncode == 1 and "no --password" in nopass.stderr


async def test_second_node_runs_beside_the_first(node_factory: NodeFactory) -> None:
    a = await node_factory("a")
    b = await node_factory("b")
    assert a.url != b.url
    await a.user("alice")
    assert (await (await b.user()).call("GET", "/api/users/alice"))[0] == 404
