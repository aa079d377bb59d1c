"""The real `salon` command in subprocesses, as a user runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.nodes import Node

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SALON = [sys.executable, "-m", "cli"]


async def salon(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        env=ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def bot_room_url(host: Any) -> str:
    """The room URL a `salon bot host` process prints as its first line."""
    assert host.stdout is not None
    return (await asyncio.wait_for(host.stdout.readline(), 20)).decode().strip()


async def stop_bot(host: Any) -> None:
    """Stop a `salon bot` process cleanly (SIGINT) and wait for it."""
    if host.returncode is None:
        host.send_signal(signal.SIGINT)
    await asyncio.wait_for(host.communicate(), 30)


def creds(node: Node, user: str, ice_address: str = "127.0.0.1") -> list[str]:
    return [
        "--node",
        node.url,
        "--user",
        user,
        "--password",
        "password123",
        "--ice-address",
        ice_address,
    ]


def run_cli(*args: str, cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SALON, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False, **kw
    )  # type: ignore[call-overload]
