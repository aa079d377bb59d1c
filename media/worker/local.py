"""The local bus: a node and the workers it started on this machine, over a Unix socket.

One stream connection per worker; each message is one signed envelope (media/worker/
protocol.py) on one line. The first message a worker sends is its ``hello``; the
connection then belongs to that worker id. A worker's death is seen at once: its
connection ends (and the node also watches the child process, node/workers/local.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from media.worker.bus import Hub, OnDead, OnEvent, Outbox
from media.worker.protocol import (
    MAX_MESSAGE_BYTES,
    NODE,
    Command,
    Event,
    ProtocolError,
    Signer,
    Verifier,
)

logger = logging.getLogger(__name__)


class LocalHub(Hub):
    """The node's end: a Unix socket server every local worker connects to."""

    def __init__(self, path: Path, secret: bytes) -> None:
        self.path = path
        self._signer = Signer(secret, NODE)
        self._verifier = Verifier(secret, NODE)
        self._writers: dict[str, asyncio.StreamWriter] = {}
        self._server: asyncio.AbstractServer | None = None
        self._on_event: OnEvent | None = None
        self._on_dead: OnDead | None = None

    @property
    def refused(self) -> int:
        return self._verifier.refused

    async def start(self, on_event: OnEvent, on_dead: OnDead) -> None:
        self._on_event, self._on_dead = on_event, on_dead
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_MESSAGE_BYTES + 1024
        )
        os.chmod(self.path, 0o600)

    async def send(self, worker: str, command: Command) -> None:
        writer = self._writers.get(worker)
        if writer is None or writer.is_closing():
            raise ConnectionError(f"worker {worker} is not connected")
        writer.write(self._signer.seal(worker, command.serialize()) + b"\n")
        await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._on_event is not None and self._on_dead is not None
        worker: str | None = None
        try:
            while line := await reader.readline():
                try:
                    opened = self._verifier.open(line.rstrip(b"\n"))
                    event = Event.parse(opened.body)
                except ProtocolError as exc:
                    logger.warning("workers: refused a local message: %s", exc)
                    continue
                if worker is None:
                    if event.kind != "hello":
                        continue
                    worker = opened.sender
                    self._writers[worker] = writer
                elif opened.sender != worker:
                    logger.warning("workers: %s spoke on %s's connection", opened.sender, worker)
                    continue
                self._on_event(worker, event)
        except (ConnectionError, ValueError) as exc:  # ValueError: a line over the limit
            logger.warning("workers: local connection of %s ended: %r", worker, exc)
        finally:
            if worker is not None and self._writers.get(worker) is writer:
                del self._writers[worker]
                self._on_dead(worker)
            writer.close()

    async def close(self) -> None:
        for writer in list(self._writers.values()):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class LocalLink(Outbox):
    """A worker's end: one connection to its node's Unix socket."""

    def __init__(self, path: Path, secret: bytes, worker: str) -> None:
        super().__init__()
        self.path = path
        self.worker = worker
        self._signer = Signer(secret, worker)
        self._verifier = Verifier(secret, worker)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def refused(self) -> int:
        return self._verifier.refused

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(
            str(self.path), limit=MAX_MESSAGE_BYTES + 1024
        )

    async def write(self, event: Event) -> None:
        assert self._writer is not None
        self._writer.write(self._signer.seal(NODE, event.serialize()) + b"\n")
        await self._writer.drain()

    async def heartbeat(self, event: Event, ttl: float) -> None:
        await self.write(event)

    async def commands(self) -> AsyncIterator[Command]:
        assert self._reader is not None
        while line := await self._reader.readline():
            try:
                yield Command.parse(self._verifier.open(line.rstrip(b"\n")).body)
            except ProtocolError as exc:
                logger.warning("worker %s: refused a command: %s", self.worker, exc)

    async def close(self) -> None:
        await super().close()
        if self._writer is not None:
            self._writer.close()
