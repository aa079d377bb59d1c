"""`salon serve --metrics-address`: printed at start, served by the real process, and
bad values refused with a clear message and a non-zero exit before anything listens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import ENV, ROOT, SALON, run_cli
from tests.support.metrics import scrape, value
from tests.support.nodes import free_port
from tests.support.serve import serve_args


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("9464", "must be HOST:PORT"),
        (":9464", "must be HOST:PORT"),
        ("127.0.0.1:0", "out of range 1-65535"),
        ("127.0.0.1:70000", "out of range 1-65535"),
        ("127.0.0.1:94x4", "must be HOST:PORT"),
        ("bad host:9464", "is not a host name or address"),
        ("::1:9464", "must be HOST:PORT"),
        ("[127.0.0.1]:9464", "must be HOST:PORT"),
        ("127.0.0.1:" + "9" * 40, "must be HOST:PORT"),
    ],
)
def test_bad_metrics_address_is_a_clear_error(tmp_path: Path, address: str, message: str) -> None:
    result = run_cli(
        *serve_args(tmp_path / "d", free_port(), "--metrics-address", address), cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert "metrics_address" in result.stderr and message in result.stderr, result.stderr


@pytest.mark.timeout(60)
def test_metrics_address_from_the_environment_is_checked_too(tmp_path: Path) -> None:
    result = run_cli(
        *serve_args(tmp_path / "d", free_port()),
        cwd=tmp_path,
        env={**ENV, "SALON_METRICS_ADDRESS": "nonsense"},
    )
    assert result.returncode == 2
    assert "setting 'metrics_address': 'nonsense' must be HOST:PORT" in result.stderr


@pytest.mark.timeout(60)
def test_metrics_address_on_the_public_port_is_refused(tmp_path: Path) -> None:
    port = free_port()
    result = run_cli(
        *serve_args(tmp_path / "d", port, "--metrics-address", f"127.0.0.1:{port}"), cwd=tmp_path
    )
    assert result.returncode == 2
    assert "must not be the public HTTP port" in result.stderr


@pytest.mark.timeout(60)
def test_metrics_address_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = run_cli(
            *serve_args(tmp_path / "d", free_port(), "--metrics-address", f"127.0.0.1:{taken}"),
            cwd=tmp_path,
        )
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on the metrics address 127.0.0.1:{taken}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(60)
async def test_serve_prints_and_serves_the_metrics_address(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [*SALON, *serve_args(tmp_path / "d", free_port(), "--metrics-address", address)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.startswith("Metrics on"):
                break
        assert f"Metrics on http://{address}/metrics" in lines, lines
        samples = await scrape(address)
        assert value(samples, "salon_worker_up", worker="node") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
