"""Federation's relay trunks when the node has media workers (docs/scaling.md).

- origin side (``WorkerOriginTrunk``): the trunk a remote node opened to one of our rooms
  lives on the room's **mixer worker** — the UDP end the remote node is given is that
  worker's advertised address and port, the keys are the ones federation agreed;
- relay side (``WorkerRelay``): our users in a room hosted elsewhere are carried by a
  ``RelayRoom`` on one of our workers (all of them on the same one: the origin allows one
  trunk per room and node).

Both keep the interface federation already uses (OriginTrunk's and RelayRoom's), and send
their commands through one queue each, so that a worker carries them out in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from nacl.public import PrivateKey, PublicKey

from media.participants import SendToParticipant
from media.signaling import Reconnect, SignalError
from media.worker.bus import cancel_loops
from node.workers.pool import WorkerCommandError, WorkerPool

log = logging.getLogger(__name__)
Address = tuple[str, int]


class CommandQueue:
    """Commands to one worker, carried out one after another (fire-and-forget callers)."""

    def __init__(self, pool: WorkerPool, worker: str) -> None:
        self.pool = pool
        self.worker = worker
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._run())

    def put(self, kind: str, **fields: Any) -> None:
        self._queue.put_nowait((kind, fields))

    def mark(self, done: Callable[[], object]) -> None:
        """Call DONE once everything queued before it was carried out."""
        self._queue.put_nowait(("", {"done": done}))

    async def _run(self) -> None:
        while True:
            kind, fields = await self._queue.get()
            try:
                if not kind:
                    fields["done"]()
                    continue
                await self.pool.call(self.worker, kind, **fields)
            except WorkerCommandError as exc:
                log.info("workers: %s on %s: %s", kind, self.worker, exc)
            finally:
                self._queue.task_done()

    async def flush(self) -> None:
        await self._queue.join()

    async def close(self) -> None:
        # cancelled again while it runs on: a cancellation can be lost in the bus's send
        # or in pool.call's wait_for (media/worker/bus.py says why)
        await cancel_loops(self._task)


class WorkerOriginTrunk:
    """A remote node's trunk to one of our rooms, on the room's mixer worker."""

    def __init__(
        self,
        pool: WorkerPool,
        mixer: str,
        room_id: str,
        trunk_id: int,
        own: PrivateKey,
        peer: PublicKey,
    ) -> None:
        self.room_id = room_id
        self.trunk_id = trunk_id
        self.forget: Callable[[], object] = lambda: None
        self._commands = CommandQueue(pool, mixer)
        self._commands.put(
            "open_trunk",
            room=room_id,
            trunk=trunk_id,
            own_key=bytes(own).hex(),
            peer_key=bytes(peer).hex(),
        )

    def add_stream(self, stream: int, participant: str) -> None:
        if not 1 <= stream <= 0xFFFF:
            raise ValueError("stream ids are 1-65535 (0 is the room mix)")
        self._commands.put(
            "trunk_stream",
            room=self.room_id,
            trunk=self.trunk_id,
            stream=stream,
            participant=participant,
        )

    def set_can_speak(self, participant: str, allowed: bool) -> None:
        self._commands.put(
            "set_can_speak", room=self.room_id, participant=participant, allowed=allowed
        )

    async def close(self) -> None:
        self.forget()
        self._commands.put("close_trunk", room=self.room_id, trunk=self.trunk_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._commands.flush(), 5)
        await self._commands.close()


class WorkerRelay:
    """Our users in a room hosted on another node, carried by a RelayRoom on a worker."""

    def __init__(
        self,
        pool: WorkerPool,
        worker: str,
        alias: str,
        send: SendToParticipant,
        trunk_id: int,
        own: PrivateKey,
        origin_key: PublicKey,
        origin: Address,
        forget: Callable[[], object] = lambda: None,
        on_lost: Callable[[], object] = lambda: None,
    ) -> None:
        self.pool = pool
        self.worker = worker
        self._forget = forget
        self.on_lost = on_lost
        self._opened = asyncio.Event()
        self.room_id = alias
        self.send = send
        self.streams: dict[str, int] = {}
        self.leaving = False  # moving off a draining worker (``leave``)
        self._next_stream = 1
        self._commands = CommandQueue(pool, worker)
        self.rekey(trunk_id, own, origin_key, origin)

    def rekey(self, trunk_id: int, own: PrivateKey, origin_key: PublicKey, origin: Address) -> None:
        self._opened.clear()
        self._commands.put(
            "open_relay",
            room=self.room_id,
            trunk=trunk_id,
            own_key=bytes(own).hex(),
            peer_key=bytes(origin_key).hex(),
            origin_host=origin[0],
            origin_port=origin[1],
        )
        for participant, stream in self.streams.items():
            self._commands.put(
                "relay_stream", room=self.room_id, participant=participant, stream=stream
            )
        self._commands.mark(self._opened.set)

    async def move(self, worker: str) -> None:
        """Our worker is gone: carry on from WORKER (the trunk is opened anew: on_lost)."""
        await self._commands.close()
        self.worker = worker
        self._opened.clear()
        self._commands = CommandQueue(self.pool, worker)
        for participant in list(self.streams):
            self.send(participant, Reconnect().serialize())
        self.on_lost()

    async def leave(self, worker: str, overlap: float) -> None:
        """Our worker drains: carry on from WORKER, and close the old relay OVERLAP seconds
        later (the origin keeps one trunk per room and node, so the old one falls silent
        once federation has opened the new one)."""
        old = self.worker
        try:
            await self.move(worker)
        finally:
            self.leaving = False
        await asyncio.sleep(overlap)
        try:
            await self.pool.call(old, "close_room", room=self.room_id)
        except WorkerCommandError as exc:
            log.info("workers: closing the old relay of %s on %s: %s", self.room_id, old, exc)

    def stream_for(self, participant: str) -> int:
        stream = self.streams.get(participant)
        if stream is None:
            stream = self.streams[participant] = self._next_stream
            self._next_stream += 1
            self._commands.put(
                "relay_stream", room=self.room_id, participant=participant, stream=stream
            )
        return stream

    def set_can_speak(self, participant: str, allowed: bool) -> None:
        self._commands.put(
            "set_can_speak", room=self.room_id, participant=participant, allowed=allowed
        )

    async def signal(self, participant: str, message: dict[str, Any]) -> None:
        try:  # the relay exists on our worker (after a move: once the trunk is back)
            await asyncio.wait_for(self._opened.wait(), 10)
        except TimeoutError:
            raise SignalError("the relay's media worker is not ready") from None
        self.stream_for(participant)
        await self._commands.flush()  # and this participant's stream
        try:
            await self.pool.call(
                self.worker,
                "signal",
                room=self.room_id,
                participant=participant,
                message=message,
            )
        except WorkerCommandError as exc:
            raise SignalError(str(exc)) from None

    async def remove(self, participant: str) -> None:
        self._commands.put("remove", room=self.room_id, participant=participant)
        await self._commands.flush()

    async def close(self) -> None:
        self._forget()
        self._commands.put("close_room", room=self.room_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._commands.flush(), 5)
        await self._commands.close()
