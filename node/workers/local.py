"""``salon serve --media-workers N``: N ``salon media-worker`` children beside the node.

Each child gets the bus (a Unix socket in a private temporary directory, or the node's
Redis) and the worker secret through its environment, never its command line. A child
that exits is noticed at once (its bus connection ends) and a new one is started in its
place, with a new worker id, unless the node is stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

RESTART_DELAY = 0.5


class LocalWorkers:
    def __init__(
        self,
        count: int,
        node_url: str,
        secret: str,
        advertise: str,
        *,
        socket_path: Path | None = None,
        redis_url: str = "",
        media_port: int = 0,
        media_tcp_port: int = 0,
        log_level: str = "warning",
        heartbeat_seconds: float = 0.3,
        dead_seconds: float = 1.2,
        media_env: Mapping[str, str] | None = None,
    ) -> None:
        """``media_env``: the node's media settings as SALON_* variables
        (``node.settings.worker_media_env``), over whatever the node's environment says."""
        self.count = count
        self._node_url = node_url
        self._secret = secret
        self._advertise = advertise
        self._socket = socket_path
        self._redis = redis_url
        self._media_port = media_port
        self._media_tcp_port = media_tcp_port
        self._log_level = log_level
        self._timing = {
            "SALON_WORKER_HEARTBEAT_SECONDS": str(heartbeat_seconds),
            "SALON_WORKER_DEAD_SECONDS": str(dead_seconds),
        }
        self._media_env = dict(media_env or {})
        self.processes: dict[int, asyncio.subprocess.Process] = {}  # slot → child
        self._watchers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.started = 0

    def _args(self, slot: int) -> list[str]:
        # fixed node ports → the ports after them, one per slot (a firewall can list them)
        port = self._media_port + 1 + slot if self._media_port else 0
        tcp_port = self._media_tcp_port + 1 + slot if self._media_tcp_port else 0
        args = [
            sys.executable,
            "-m",
            "cli",
            "media-worker",
            "--node",
            self._node_url,
            "--advertise",
            self._advertise,
            "--media-port",
            str(port),
            "--media-tcp-port",
            str(tcp_port),
            "--log-level",
            self._log_level,
        ]
        if self._redis:
            args += ["--redis", self._redis]
        else:
            assert self._socket is not None
            args += ["--socket", str(self._socket)]
        return args

    async def start(self) -> None:
        for slot in range(self.count):
            await self._spawn(slot)

    def _env(self) -> dict[str, str]:
        """A child's environment: the node's, the bus secret, timing and media settings."""
        root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH", "")
        return {
            **os.environ,
            "SALON_WORKER_SECRET": self._secret,
            **self._timing,
            **self._media_env,
            "PYTHONPATH": root + (os.pathsep + path if path else ""),
        }

    async def _spawn(self, slot: int) -> None:
        process = await asyncio.create_subprocess_exec(*self._args(slot), env=self._env())
        self.processes[slot] = process
        self.started += 1
        task = asyncio.ensure_future(self._watch(slot, process))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _watch(self, slot: int, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if self._stopping:
            return
        log.warning("workers: local worker %d (pid %d) exited with %s", slot, process.pid, code)
        await asyncio.sleep(RESTART_DELAY)
        if not self._stopping:
            await self._spawn(slot)

    async def stop(self) -> None:
        self._stopping = True
        for process in self.processes.values():
            if process.returncode is None:
                process.terminate()
        for process in self.processes.values():
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
        for task in list(self._watchers):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
