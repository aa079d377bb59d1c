"""``salon admin`` desk commands against a running node's data directory."""

from __future__ import annotations

import asyncio
import json

from tests.support.cli import run_cli
from tests.support.nodes import NodeFactory


async def cli(*args: str) -> tuple[int, str, str]:
    done = await asyncio.to_thread(run_cli, "admin", *args, cwd=None)  # type: ignore[arg-type]
    return done.returncode, done.stdout, done.stderr


async def test_admin_desk_commands(node_factory: NodeFactory) -> None:
    a = await node_factory("a")
    alice = await a.user("alice")
    bob = await a.user("bob")
    data = str(a.settings.data_dir)
    status, body = await bob.call(
        "POST", "/api/reports", {"target": "alice", "category": "spam", "comment": "ads"}
    )
    assert status == 201, body

    code, out, err = await cli("report", "list", "--status", "open", "--data", data)
    assert code == 0, err
    assert out.split("\t")[:4] == ["1", "open", "local:bob", "spam"] and "ads" in out
    code, out, err = await cli("report", "show", "1", "--data", data)
    assert code == 0 and json.loads(out)["target_user"] == "alice", err
    code, out, err = await cli("report", "resolve", "1", "--note", "warned", "--data", data)
    assert code == 0 and out.strip() == "resolved report 1", err
    code, out, err = await cli("report", "show", "99", "--data", data)
    assert code == 1 and "no report 99" in err

    code, out, err = await cli("suspend", "alice", "--note", "spam", "--data", data)
    assert code == 0 and out.startswith("suspended alice"), err
    assert (await alice.call("GET", "/api/me"))[0] == 401
    status, body = await alice.signin("alice")
    assert status == 403 and "suspended" in body["error"]
    code, out, err = await cli("limit", "alice", "--data", data)
    assert code == 1 and "other nodes" in err
    code, out, err = await cli("unsuspend", "alice", "--data", data)
    assert code == 0, err
    assert (await alice.signin("alice"))[0] == 200

    code, out, err = await cli("audit", "--data", data)
    assert code == 0, err
    actions = [line.split("\t")[1:4] for line in out.splitlines()]
    assert actions == [
        ["salon admin (CLI)", "unsuspend", "alice"],
        ["salon admin (CLI)", "suspend", "alice"],
        ["salon admin (CLI)", "resolve", "report 1"],
    ]
