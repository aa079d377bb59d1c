"""A real coturn (Debian's ``turnserver``) for tests: own config in a temporary directory,
TURN REST shared secret, listening on 127.0.0.1 on a free port, relaying to loopback.

Tests skip with a reason when ``turnserver`` is not installed (``apt-get install coturn``;
scripts/test.sh installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aioice import stun

from node.turn import TurnServer

SECRET = "salon-test-shared-secret"
REALM = "salon.test"


def free_udp_and_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP")


def require_turnserver() -> str:
    path = shutil.which("turnserver")
    if path is None:
        pytest.skip("TURN tests need coturn's turnserver (apt-get install coturn)")
    return path


class Coturn:
    """One turnserver process; ``log`` holds its output (allocations, refusals)."""

    def __init__(self, directory: Path, secret: str = SECRET) -> None:
        self.directory = directory
        self.secret = secret
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = directory / "turnserver.log"

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def server(self) -> TurnServer:
        """The node's ``turn_servers`` entry for this server."""
        return TurnServer((self.url,), secret=self.secret)

    def config(self) -> str:
        return "\n".join(
            [
                "listening-ip=127.0.0.1",
                "relay-ip=127.0.0.1",
                f"listening-port={self.port}",
                "use-auth-secret",
                f"static-auth-secret={self.secret}",
                f"realm={REALM}",
                "fingerprint",
                # the node under test listens on 127.0.0.1; coturn refuses loopback peers
                # unless told otherwise (never in production)
                "allow-loopback-peers",
                "no-cli",
                "no-tls",
                "no-dtls",
                "no-rfc5780",  # no alternate port to collide with
                "no-multicast-peers",
                "log-file=stdout",
                "simple-log",
                "verbose",  # session lines: allocations and refusals, with usernames
                f"pidfile={self.directory / 'turnserver.pid'}",
                f"userdb={self.directory / 'turndb'}",
                "",
            ]
        )

    async def start(self) -> Coturn:
        binary = require_turnserver()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_and_tcp_port()
        conf = self.directory / "turnserver.conf"
        conf.write_text(self.config())
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                binary, "-c", str(conf), stdout=log, stderr=asyncio.subprocess.STDOUT
            )
        await self._wait_ready()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def _wait_ready(self, timeout: float = 20.0) -> None:
        """Until a STUN Binding request over UDP gets an answer (or the process dies)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.returncode is not None:
                raise RuntimeError(f"turnserver exited:\n{self.log()[-3000:]}")
            if await asyncio.to_thread(self._binding_answered):
                return
        raise RuntimeError(f"turnserver did not answer STUN in {timeout} s:\n{self.log()[-3000:]}")

    def _binding_answered(self) -> bool:
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            sock.sendto(bytes(request), ("127.0.0.1", self.port))
            try:
                data = sock.recv(2048)
            except OSError:
                return False
        return stun.parse_message(data).transaction_id == request.transaction_id

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, 9)
            await process.wait()


@contextlib.asynccontextmanager
async def running_coturn(directory: Path) -> AsyncIterator[Coturn]:
    server = Coturn(directory)
    try:
        yield await server.start()
    finally:
        await server.stop()
