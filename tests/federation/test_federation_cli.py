"""``salon admin`` domain policies and delivery queue commands, run as real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def salon(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_admin_domain_policies_and_deliveries(tmp_path: Path) -> None:
    data = tmp_path / "node"
    assert salon(data, "admin", "block-domain", "Bad.Example").returncode == 0
    limited = salon(data, "admin", "block-domain", "meh.example", "--mode", "limit")
    assert limited.returncode == 0 and "limit: meh.example" in limited.stdout
    listed = salon(data, "admin", "blocks")
    assert "bad.example\tsuspend" in listed.stdout and "meh.example\tlimit" in listed.stdout
    assert salon(data, "admin", "block-domain", "x.example", "--mode", "nope").returncode == 2
    assert salon(data, "admin", "unblock-domain", "bad.example").returncode == 0
    assert "bad.example" not in salon(data, "admin", "blocks").stdout
    assert salon(data, "admin", "unblock-domain", "bad.example").returncode == 1
    queue = salon(data, "admin", "deliveries")
    assert queue.returncode == 0 and "pending=0" in queue.stdout
