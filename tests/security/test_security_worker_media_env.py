"""A `salon media-worker` given media settings the node would refuse (huge, negative or
not a number) refuses to start, with the node's own message and exit code 2, rather than
running a room with them (a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("SALON_SPEAKER_PASSTHROUGH_MAX_BITRATE", "9" * 40,
         "setting 'speaker_passthrough_max_bitrate' must be 6000-510000"),
        ("SALON_AUDIO_BITRATE", "-1", "setting 'audio_bitrate' must be 6000-510000"),
        ("SALON_SPEAKER_PASSTHROUGH", "1; rm -rf /",
         "setting 'speaker_passthrough': '1; rm -rf /' is not a valid bool"),
    ],
)  # fmt: skip
def test_worker_refuses_media_settings_the_node_would_refuse(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SALON_WORKER_SECRET": "s" * 32, key: value}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "media-worker", "--node", "http://127.0.0.1:9",
         "--socket", str(tmp_path / "bus.sock")],
        env=env, capture_output=True, text=True, timeout=50,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
