"""``salon lookup|follow|unfollow|followers|following|hallway`` as real subprocesses against
two real federating nodes on 127.0.0.1 (docs/operating.md, "Social commands")."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from federation.as2 import host_of
from tests.support.network import FAST, eventually
from tests.support.nodes import Node, NodeFactory, free_port

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    k: v for k, v in os.environ.items() if k not in ("SALON_NODE", "SALON_USER", "SALON_PASSWORD")
}
ENV["PYTHONPATH"] = str(ROOT)
PASSWORD = "password123"
TITLE = "Fediverse [/b] talk :smile:"  # printed as is, not as rich markup

pytestmark = pytest.mark.timeout(120)


async def salon(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        env={**ENV, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def creds(node: Node, user: str, password: str = PASSWORD) -> list[str]:
    return ["--node", node.url, "--user", user, "--password", password]


async def ok_json(*args: str) -> Any:
    code, out, err = await salon(*args, "--json")
    assert code == 0, (args, out, err)
    return json.loads(out)


def one_error(code: int, out: str, err: str, expected_code: int, needle: str) -> None:
    """A failure is exactly one ``error: …`` line on stderr, nothing on stdout, no traceback."""
    assert code == expected_code, (code, out, err)
    assert out == "", out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], (needle, err)
    assert "Traceback" not in err


async def test_social_commands_across_two_nodes(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice = await a.user("alice")
    await b.user("bob")
    alice_acct = f"alice@{host_of(a.url)}"
    bob_acct = f"bob@{host_of(b.url)}"
    as_bob = creds(b, "bob")

    # lookup through WebFinger, JSON and human output
    found = await ok_json("lookup", f"@{alice_acct}", *as_bob)
    assert found["handle"] == alice_acct and found["local"] is False
    assert found["followed_by_you"] is None
    code, out, err = await salon("lookup", f"@{alice_acct}", *as_bob)
    assert code == 0, err
    assert alice_acct in out and "remote" in out

    # follow: pending until A's Accept arrives
    followed = await ok_json("follow", alice_acct, *as_bob)
    assert followed["state"] == "pending" and followed["user"]["handle"] == alice_acct

    async def accepted() -> bool:
        profile = await ok_json("lookup", alice_acct, *as_bob)
        return bool(profile["followed_by_you"] == "accepted")

    await eventually(accepted, timeout=20)
    code, out, err = await salon("follow", alice_acct, *as_bob)  # again: the current state
    assert code == 0 and out.strip() == f"following {alice_acct}", (out, err)

    # following (bob, default: yourself) and followers (alice, on both nodes)
    following = await ok_json("following", *as_bob)
    assert [p["handle"] for p in following["items"]] == [alice_acct]
    code, out, err = await salon("following", *as_bob)
    assert code == 0 and alice_acct in out and "remote" in out, (out, err)
    followers_on_a = await ok_json("followers", *creds(a, "alice"))
    assert [p["handle"] for p in followers_on_a["items"]] == [bob_acct]
    followers_on_b = await ok_json("followers", alice_acct, *as_bob)
    assert [p["handle"] for p in followers_on_b["items"]] == ["bob"]

    # alice's room shows up in bob's hallway on B
    status, room = await alice.call("POST", "/api/rooms", {"title": TITLE})
    assert status == 201, room

    async def listed() -> list[dict[str, Any]]:
        body = await ok_json("hallway", *as_bob)
        return [c for c in body["rooms"] if c.get("remote")]

    card = (await eventually(listed, timeout=20))[0]
    assert card["title"] == TITLE and card["host"] == alice_acct
    assert card["url"] == f"{a.url}/rooms/{room['id']}" and card["node"] == host_of(a.url)
    code, out, err = await salon("hallway", *as_bob)
    assert code == 0 and TITLE in out and alice_acct in out, (out, err)

    # unfollow: gone from following, and from alice's followers once A got the Undo
    code, out, err = await salon("unfollow", alice_acct, *as_bob)
    assert code == 0 and out.strip() == f"unfollowed {alice_acct}", (out, err)
    assert (await ok_json("following", *as_bob))["items"] == []
    assert (await ok_json("hallway", *as_bob))["rooms"] == []

    async def undone() -> bool:
        return (await ok_json("followers", *creds(a, "alice")))["items"] == []

    await eventually(undone, timeout=20)
    code, out, err = await salon("unfollow", alice_acct, *as_bob)
    one_error(code, out, err, 1, "you do not follow that user")


async def test_social_commands_credentials_from_environment(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    await a.user("alice")
    env = {"SALON_NODE": a.url, "SALON_USER": "alice", "SALON_PASSWORD": PASSWORD}
    code, out, err = await salon("hallway", env=env)
    assert code == 0 and "no live or upcoming rooms" in out, (out, err)
    code, out, err = await salon("followers", "--json", env=env)
    assert code == 0 and json.loads(out) == {"items": []}, (out, err)


async def test_social_commands_bad_input(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    await a.user("alice")
    host = host_of(a.url)
    as_alice = creds(a, "alice")

    # no credentials at all (and none in the environment): a usage error
    one_error(*await salon("hallway"), 2, "SALON_NODE")
    one_error(*await salon("lookup", "bob", "--node", a.url), 2, "--user NAME")
    one_error(*await salon("following", *creds(a, "alice")[:4]), 2, "--password PW")
    one_error(*await salon("hallway", *creds(a, "alice")[2:], "--node", "nowhere"), 2, "http(s)")
    # unreachable node
    dead = f"http://127.0.0.1:{free_port()}"
    one_error(*await salon("hallway", "--node", dead, "--user", "x", "--password", "y"), 1, dead)
    # wrong password
    one_error(*await salon("hallway", *creds(a, "alice", "wrong-password")), 1, "wrong")
    # unknown users, local and remote (WebFinger 404), and an unreachable remote node
    one_error(*await salon("lookup", "zed", *as_alice), 1, "zed")
    one_error(*await salon("lookup", f"@zed@{host}", *as_alice), 1, "zed")
    one_error(*await salon("followers", "nobody", *as_alice), 1, "nobody")
    one_error(*await salon("follow", "nobody", *as_alice), 1, "nobody")
    code, out, err = await salon("lookup", f"@bob@127.0.0.1:{free_port()}", *as_alice)
    one_error(code, out, err, 1, "HTTP 502")
    # malformed addresses
    for bad in ("@bob@", "bob@host@other", "bo b@ex ample"):
        code, out, err = await salon("lookup", bad, *as_alice)
        one_error(code, out, err, 1, "HTTP 400")
    one_error(*await salon("lookup", "@@", *as_alice), 1, "no user named")
    one_error(*await salon("follow", "@", *as_alice), 1, "a user name is required")
