"""The web client's room reducer, ICE server cache and player texts, unit-tested with Node's
built-in test runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.timeout(60)
@pytest.mark.parametrize("script", ["room_state.test.mjs", "ice.test.mjs", "player.test.mjs"])
def test_client_module(script: str) -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("the client's module tests need Node.js (apt-get install nodejs)")
    result = subprocess.run(
        [node, "--test", str(HERE / script)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
