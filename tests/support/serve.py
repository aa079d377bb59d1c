"""A real ``salon serve`` subprocess (for tests that must kill -9 a node)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.support.cli import ROOT, SALON


def serve_args(data: Path, port: int, *extra: str) -> list[str]:
    """``salon serve`` arguments for DATA on PORT with free media ports (EXTRA after them)."""
    return [
        "serve", "--data", str(data), "--port", str(port),
        "--media-port", "0", "--media-tcp-port", "0", *extra,
    ]  # fmt: skip


async def start_serve(data: Path, port: int, **settings: str) -> subprocess.Popen[str]:
    """Start ``salon serve`` on PORT with SETTINGS as SALON_* variables; wait until it answers."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.update({f"SALON_{k.upper()}": v for k, v in settings.items()})
    proc = subprocess.Popen(
        [*SALON, *serve_args(data, port)],
        cwd=data.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(base + "/") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    proc.kill()
    pytest.fail("salon serve did not start")
