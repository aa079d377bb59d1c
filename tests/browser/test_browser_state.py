"""The web client's room reducer, unit-tested with Node's built-in test runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.timeout(60)
def test_room_state_reducer() -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("the client's reducer tests need Node.js (apt-get install nodejs)")
    result = subprocess.run(
        [node, "--test", str(HERE / "room_state.test.mjs")],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
