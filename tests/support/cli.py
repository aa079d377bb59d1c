"""The real `salon` command in subprocesses, as a user runs it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

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
