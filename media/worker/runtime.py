"""A media worker: its own media engine and port, doing what its node commands.

Per room a worker holds one of two roles (docs/scaling.md):

- **mixer**: the room's ``RoomMedia`` (its speakers' sessions, the 20 ms mixer, the
  fan-out to its own listeners) plus one ``OriginTrunk`` per other worker that has
  listeners of the room;
- **relay**: a ``RelayRoom`` fed by the mixer worker's trunk; it never decodes, and its
  speakers' packets go to the mixer over that trunk, as a remote node's speakers do.

The worker never sees the node's database; it trusts its node (every command is signed
with the node's worker secret, media/worker/protocol.py) and answers each command with a
``result``. Answers and candidates for participants go back as ``to_participant`` events,
the mixer's levels as ``levels``, and a ``heartbeat`` with the worker's load goes out every
``heartbeat_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from nacl.public import PrivateKey, PublicKey

from media.engine import MediaEngine, RoomMedia
from media.relay import OriginTrunk, RelayRoom
from media.signaling import SignalError
from media.trunk import TrunkError
from media.worker.bus import Outbox, cancel_loops
from media.worker.protocol import Command, Event

logger = logging.getLogger(__name__)


class WorkerError(ValueError):
    """A command this worker cannot carry out (sent back as the command's result)."""


@dataclass(frozen=True)
class WorkerConfig:
    worker_id: str
    advertise: str  # the address clients and other workers reach our media port at
    heartbeat_seconds: float = 0.3
    dead_seconds: float = 1.2  # the registry key's TTL (Redis)


def _key(hex_key: str) -> bytes:
    try:
        raw = bytes.fromhex(hex_key)
    except ValueError:
        raise WorkerError("keys are hex") from None
    if len(raw) != 32:
        raise WorkerError("keys are 32 bytes")
    return raw


class MediaWorker:
    def __init__(self, config: WorkerConfig, engine: MediaEngine, link: Outbox) -> None:
        self.config = config
        self.engine = engine
        self.link = link
        self.relays: dict[str, RelayRoom] = {}
        self.trunks: dict[tuple[str, int], OriginTrunk] = {}
        # (monotonic, cpu seconds, packets, fan-out seconds) at the last rate window
        self._window: tuple[float, float, int, float] = (time.monotonic(), 0.0, 0, 0.0)
        self._rates: tuple[float, float, float | None] = (0.0, 0.0, None)
        self._beats = 0
        self._beating = False  # the heartbeat loop's own end (a lost cancellation: bus.py)

    # ---- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve commands until the bus closes (the node went away) or we are cancelled."""
        await self.engine.start()
        await self.link.connect()
        await self.link.write(
            Event(
                "hello",
                {
                    "advertise": self.config.advertise,
                    "media_port": self.engine.port.udp_port,
                    "pid": os.getpid(),
                },
            )
        )
        self._beating = True
        beating = asyncio.create_task(self._beat(), name="worker-heartbeat")
        try:
            async for command in self.link.commands():
                error = ""
                try:
                    await self.handle(command)
                except (WorkerError, SignalError, TrunkError) as exc:
                    error = str(exc) or type(exc).__name__
                self.link.send_nowait(Event("result", {"command": command.id, "error": error}))
        finally:
            self._beating = False
            await cancel_loops(beating)
            await self.close()

    async def _beat(self) -> None:
        while self._beating:
            try:
                await self.link.heartbeat(
                    Event("heartbeat", {"load": self.load()}), self.config.dead_seconds
                )
            except (ConnectionError, OSError) as exc:
                logger.warning("worker %s: heartbeat: %r", self.config.worker_id, exc)
            await asyncio.sleep(self.config.heartbeat_seconds)

    async def close(self) -> None:
        for trunk in list(self.trunks.values()):
            await trunk.close()
        for relay in list(self.relays.values()):
            await relay.close()
        await self.engine.close()
        await self.engine.close_port()
        await self.link.close()

    # ---- commands -----------------------------------------------------------------------------

    async def handle(self, command: Command) -> None:
        f = command.fields
        room: str = f["room"]
        kind = command.kind
        if kind == "open_mixer":
            if room in self.relays:
                raise WorkerError("this worker relays that room")
            self._mixer(room)
        elif kind == "open_relay":
            self._open_relay(room, f)
        elif kind == "open_trunk":
            key = (room, f["trunk"])
            if key not in self.trunks:
                self.trunks[key] = OriginTrunk(
                    self._existing_mixer(room),
                    f["trunk"],
                    PrivateKey(_key(f["own_key"])),
                    PublicKey(_key(f["peer_key"])),
                    self.engine.port,
                )
        elif kind == "close_trunk":
            trunk = self.trunks.pop((room, f["trunk"]), None)
            if trunk is not None:
                await trunk.close()
        elif kind == "trunk_stream":
            trunk = self.trunks.get((room, f["trunk"]))
            if trunk is None:
                raise WorkerError("no such trunk")
            trunk.add_stream(f["stream"], f["participant"])
        elif kind == "relay_stream":
            relay = self.relays.get(room)
            if relay is None:
                raise WorkerError("this worker does not relay that room")
            relay.assign_stream(f["participant"], f["stream"])
        elif kind == "close_room":
            await self._close_room(room)
        else:
            await self._participant_command(kind, room, f)

    async def _participant_command(self, kind: str, room: str, f: dict[str, Any]) -> None:
        media = self.relays.get(room) or self.engine.get(room)
        if media is None:
            raise WorkerError("no such room on this worker")
        participant: str = f["participant"]
        if kind == "signal":
            await media.signal(participant, f["message"])
        elif kind == "set_can_speak":
            media.set_can_speak(participant, f["allowed"])
        elif kind == "remove":
            await media.remove(participant)

    def _mixer(self, room: str) -> RoomMedia:
        def send(participant: str, message: dict[str, Any]) -> None:
            self._to_participant(room, participant, message)

        def on_levels(levels: dict[str, float]) -> None:
            self.link.send_nowait(Event("levels", {"room": room, "levels": levels}))

        return self.engine.room(room, send, on_levels)

    def _existing_mixer(self, room: str) -> RoomMedia:
        media = self.engine.get(room)
        if media is None:
            raise WorkerError("this worker does not mix that room")
        return media

    def _to_participant(self, room: str, participant: str, message: dict[str, Any]) -> None:
        self.link.send_nowait(
            Event("to_participant", {"room": room, "participant": participant, "message": message})
        )

    def _open_relay(self, room: str, f: dict[str, Any]) -> None:
        if self.engine.get(room) is not None:
            raise WorkerError("this worker mixes that room")
        own, origin = PrivateKey(_key(f["own_key"])), PublicKey(_key(f["peer_key"]))
        address = (f["origin_host"], f["origin_port"])
        relay = self.relays.get(room)
        if relay is not None:  # the room's mixer moved: same listeners, a new trunk
            relay.rekey(f["trunk"], own, origin, address)
            return

        def send(participant: str, message: dict[str, Any]) -> None:
            self._to_participant(room, participant, message)

        self.relays[room] = RelayRoom(
            room, self.engine.config, send, f["trunk"], own, origin, self.engine.port, address
        )

    async def _close_room(self, room: str) -> None:
        for key in [k for k in self.trunks if k[0] == room]:
            await self.trunks.pop(key).close()
        relay = self.relays.pop(room, None)
        if relay is not None:
            await relay.close()
        await self.engine.close_room(room)

    # ---- load ---------------------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        sessions = listeners = 0
        rooms: list[Any] = [*self.engine.rooms(), *self.relays.values()]
        for media in rooms:
            total, speaking = media.session_counts()
            sessions += total
            listeners += total - speaking
        totals = self.engine.port.meter.totals()  # every listener packet this worker sent
        now, cpu = time.monotonic(), time.process_time()
        then, cpu_then, packets_then, fanout_then = self._window
        if now - then >= 1.0:
            packets = totals.packets - packets_then
            self._rates = (
                round(packets / (now - then), 1),
                round(100.0 * (cpu - cpu_then) / (now - then), 1),
                round(1e6 * (totals.seconds - fanout_then) / packets, 2) if packets else None,
            )
            self._window = (now, cpu, totals.packets, totals.seconds)
        pps, cpu_percent, fanout_us = self._rates
        return {
            "worker": self.config.worker_id,
            "advertise": self.config.advertise,
            "media_port": self.engine.port.udp_port,
            "media_tcp_port": self.engine.port.tcp_port,
            "tcp_paths": self.engine.port.tcp_paths,
            "rooms": len(rooms),
            "sessions": sessions,
            "listeners": listeners,
            "packets_sent": totals.packets,
            "packets_per_second": pps,
            "cpu_percent": cpu_percent,
            "fanout_us_per_packet": fanout_us,
            "trunks": len(self.trunks),
            "refused": self.link.refused,
            "beats": self._beats,
        }
