"""`salon testnet up` as a developer runs it: the real command in a subprocess, real nodes,
real cross-node follows, prefixed logs, clean stop on SIGTERM, reuse of the data dir."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.network import eventually
from tests.support.nodes import free_port

REPO = Path(__file__).resolve().parents[2]
SALON = [sys.executable, "-m", "cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def free_ports(count: int) -> int:
    """A base port P with P..P+count-1 all free on 127.0.0.1."""
    for _ in range(50):
        base = free_port()
        if base + count - 1 > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free port range")


class CommandUnderTest:
    """The running command: collects its output lines and notices the 'ready' line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.ready = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, *args: str) -> CommandUnderTest:
        proc = await asyncio.create_subprocess_exec(
            *SALON,
            "testnet",
            "up",
            *args,
            env=ENV,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if line.startswith("[testnet] ready:"):
                self.ready.set()

    async def wait_ready(self) -> None:
        waiter = asyncio.create_task(self.ready.wait())
        done, _ = await asyncio.wait(
            {waiter, self.reader}, timeout=60, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            raise AssertionError("testnet not ready:\n" + self.output)

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), 30)
        await asyncio.wait_for(self.reader, 5)
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def node_pids(self) -> list[int]:
        return [
            int(line.split("(pid ")[1].split(")")[0])
            for line in self.lines
            if line.startswith("[testnet] node") and "(pid " in line
        ]


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as resp:
        return resp.status, await resp.json(content_type=None)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


def processes_using(directory: Path) -> list[str]:
    """Command lines of live processes that mention DIRECTORY (the nodes' --data)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(directory) in cmdline and alive(int(entry.name)):
            found.append(cmdline)
    return found


async def check_network(base: int) -> None:
    one, two = f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}"
    async with aiohttp.ClientSession() as http:

        async def follows_accepted() -> bool:
            _, alice = await get(http, f"{one}/api/users/alice")
            _, bob = await get(http, f"{two}/api/users/bob")
            counts = [alice[k] for k in ("followers_count", "following_count")]
            counts += [bob[k] for k in ("followers_count", "following_count")]
            return counts == [1, 1, 1, 1]

        await eventually(follows_accepted)
        status, following = await get(http, f"{one}/api/users/alice/following")
        assert status == 200
        assert [u["handle"] for u in following["items"]] == [f"bob@127.0.0.1:{base + 1}"]
        status, followers = await get(http, f"{two}/api/users/bob/followers")
        assert [u["handle"] for u in followers["items"]] == [f"alice@127.0.0.1:{base}"]
        # the documented demo password signs in
        login = {"username": "bob", "password": "salon-demo"}
        async with http.post(f"{two}/api/auth/token", json=login) as resp:
            assert resp.status == 201


async def stop_and_check(net: CommandUnderTest, data: Path, ports: list[int]) -> None:
    pids = net.node_pids()
    assert len(pids) == len(ports), net.output
    assert await net.stop() == 0, net.output
    assert "[testnet] all nodes stopped" in net.lines
    assert not [pid for pid in pids if alive(pid)]
    assert processes_using(data) == []
    for port in ports:
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass


@pytest.mark.timeout(180)
async def test_testnet_up_follows_logs_stop_and_reuse(tmp_path: Path) -> None:
    base = free_ports(2)
    data = tmp_path / "net"
    args = ("--nodes", "2", "--base-port", str(base), "--dir", str(data))
    net = await CommandUnderTest.start(*args)
    try:
        await net.wait_ready()
        await check_network(base)
        out = net.output
        assert "2/2 follows accepted" in out, out
        for name, url in (("alice", f"http://127.0.0.1:{base}"), ("bob", f"127.0.0.1:{base + 1}")):
            assert name in out and url in out  # the table
        for k, port in ((1, base), (2, base + 1)):
            assert f"[node{k}] Salon node listening on http://127.0.0.1:{port}" in net.lines
            assert any(
                line.startswith(f"[node{k}] ") and "federation." in line for line in net.lines
            ), out
        assert (data / "node1" / "salon.db").exists() and (data / "node2" / "salon.db").exists()
    finally:
        if net.proc.returncode is None:
            await stop_and_check(net, data, [base, base + 1])

    # same --dir again: users exist already, follows stay accepted
    again = await CommandUnderTest.start(*args)
    try:
        await again.wait_ready()
        assert "[testnet] node1: reusing user alice" in again.lines, again.output
        assert "2/2 follows accepted" in again.output
        await check_network(base)
    finally:
        if again.proc.returncode is None:
            await stop_and_check(again, data, [base, base + 1])


def run_up(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SALON, "testnet", "up", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.timeout(120)
def test_testnet_up_bad_input(tmp_path: Path) -> None:
    for count in ("0", "10"):
        result = run_up("--nodes", count, "--dir", str(tmp_path / "n"))
        assert result.returncode == 2
        assert "--nodes must be between 1 and 9" in result.stderr

    base = free_ports(3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base + 1))
        busy.listen()
        result = run_up("--base-port", str(base), "--dir", str(tmp_path / "busy"))
    assert result.returncode == 1
    assert f"port {base + 1} (node2) is in use" in result.stderr
    assert not (tmp_path / "busy").exists()  # nothing started or created

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_up("--base-port", str(free_ports(3)), "--dir", str(blocker / "net"))
    assert result.returncode == 1
    assert "cannot use" in result.stderr and "Not a directory" in result.stderr

    result = run_up("--base-port", "65534", "--dir", str(tmp_path / "n"))
    assert result.returncode == 2 and "outside 1-65535" in result.stderr
