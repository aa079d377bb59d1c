"""Pieces several benches share: a real node as a subprocess, and a worker process that
takes JSON-line commands. Benches import it as ``common`` (``bench/`` is on their path)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

import aiohttp

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def salon_node(
    data: Path,
    env: dict[str, str] | None = None,
    profile: Path | None = None,
    pids: list[int] | None = None,
) -> AsyncIterator[str]:
    """``python -m cli serve`` on a free port with loopback ICE (plus ENV, and under cProfile
    writing PROFILE when given); yields its base URL once it answers. PIDS, when given,
    receives the node's process id (benches read its CPU time from /proc)."""
    port = free_port()
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "SALON_ICE_ADDRESSES": "127.0.0.1",
        **(env or {}),
    }
    prefix = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *prefix,
        "-m",
        "cli",
        "serve",
        "--data",
        str(data),
        "--port",
        str(port),
        "--log-level",
        "warning",
        env=environ,
        cwd=str(ROOT),
    )
    if pids is not None:
        pids.append(proc.pid)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:
                if proc.returncode is not None:
                    raise SystemExit(f"salon serve exited with {proc.returncode}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url + "/api/instance") as response:
                        if response.status < 500:
                            break
                if time.monotonic() > deadline:
                    raise SystemExit("salon serve did not come up within 30 s")
                await asyncio.sleep(0.1)
        yield url
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # a clean exit (cProfile writes its file)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


class LineWorker:
    """The main process's handle on a worker process: the bench script itself run with
    ``--worker``, one JSON command a line on its stdin, one JSON answer a line on its stdout
    (``{"op": "exit"}`` ends it)."""

    call_timeout = 60.0
    name = "the worker"

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, script: str) -> Self:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(script).resolve()),
            "--worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def call(self, timeout: float | None = None, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout or self.call_timeout)
        if not line:
            raise RuntimeError(f"{self.name} died")
        return dict(json.loads(line))

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.call(op="exit", timeout=10)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
