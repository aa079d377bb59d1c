"""Room audio carried by media workers: placement, routing, failover and drain.

``WorkerAudio`` is the node's ``RoomAudio`` when workers are configured (cli/app.py picks
it). The room rules still decide who may be heard; instead of a local engine, each
participant's media session lives on a worker:

- a room's **mixer** is on one worker (the least loaded when the room's first session
  comes); speakers are placed there;
- listeners go to the least-loaded worker; a worker other than the mixer gets a
  **relay** of the room, fed by a trunk from the mixer (keys made here, one X25519 pair
  per end and per trunk, handed to each end over the signed bus), and each participant
  there a trunk stream, so a listener raised to speaker is heard without moving;
- a worker that dies: its participants are told to reconnect (a ``reconnect`` signal,
  docs/api.md) and are placed elsewhere on their next offer; a dead mixer is reopened on
  another worker and the other workers' relays are re-keyed to it;
- a drained worker takes no new session; each of its participants is placed on another
  worker and told to reconnect, and the old session is removed ``drain_overlap`` seconds
  after the new one answered (make-before-break).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nacl.public import PrivateKey, PublicKey

from media.codec import OpusEncoder
from media.engine import MediaEngine
from media.participants import SendToParticipant
from media.signaling import Reconnect
from media.trunk import new_keypair
from media.trunk_tap import TrunkTap
from media.worker.bus import OnEvent
from media.worker.protocol import Event
from node.metrics.loads import WorkerLoad
from node.rooms.audio import RoomAudio, TrunkHandle
from node.rooms.model import Room, RoomEvent, RoomRuleError
from node.rooms.service import RoomService
from node.store.users import User
from node.workers.federated import WorkerOriginTrunk, WorkerRelay
from node.workers.local import LocalWorkers
from node.workers.pool import WorkerCommandError, WorkerPool, WorkerState, least_loaded

log = logging.getLogger(__name__)
SWITCH_WAIT = 10.0  # seconds a drained mixer waits for its speakers to reconnect elsewhere
SWITCH_SETTLE = 0.3  # … and then for their new connections to carry audio (ICE-lite, DTLS)


@dataclass
class RelayTrunk:
    trunk: int
    next_stream: int = 1
    streams: dict[str, int] = field(default_factory=dict)  # participant → stream id


@dataclass
class RoomPlacement:
    mixer: str | None = None
    relays: dict[str, RelayTrunk] = field(default_factory=dict)  # worker → its trunk
    where: dict[str, str] = field(default_factory=dict)  # participant → worker
    leaving: dict[str, str] = field(default_factory=dict)  # participant → old worker (drain)
    next_mixer: str | None = None  # a drained mixer's successor, until the switch
    answered: dict[str, str] = field(default_factory=dict)  # participant → last answering worker
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def workers(self) -> set[str]:
        found = set(self.relays)
        if self.mixer is not None:
            found.add(self.mixer)
        return found


class WorkerAudio(RoomAudio):
    """A RoomAudio whose sessions live on media workers (the local engine stays idle)."""

    def __init__(
        self,
        rooms: RoomService,
        engine: MediaEngine,
        pool_factory: Callable[[OnEvent, Callable[[str], None]], WorkerPool],
        children: LocalWorkers | None = None,
        drain_overlap: float = 1.5,
        ready_timeout: float = 30.0,
    ) -> None:
        super().__init__(rooms, engine)
        self.pool = pool_factory(self._worker_event, self._worker_gone)
        self.children = children
        self.drain_overlap = drain_overlap
        self._ready_timeout = ready_timeout
        self._closing = False
        self.placements: dict[str, RoomPlacement] = {}
        self.remote_relays: dict[str, WorkerRelay] = {}  # rooms hosted elsewhere (by alias)
        self.taps: dict[str, TrunkTap] = {}  # recorded rooms: a trunk of the mix to the node
        # remote nodes' trunks to our rooms: room → trunk id → "the mixer moved" callback
        self.origin_trunks: dict[str, dict[int, Callable[[], object]]] = {}
        config = engine.config
        self._pre_skip = OpusEncoder(config.bitrate, fec=config.loss_protection).lookahead
        self.moves = 0  # sessions moved (failover and drain)

    async def start(self) -> None:
        """Listen on the bus, start local children, and wait until one worker is ready."""
        await self.pool.start()
        if self.children is not None:
            await self.children.start()
            try:
                await asyncio.wait_for(self.pool.ready.wait(), self._ready_timeout)
            except TimeoutError:
                log.error("workers: no local media worker registered in time")

    def _placed(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for placement in self.placements.values():
            for worker in placement.where.values():
                counts[worker] = counts.get(worker, 0) + 1
        return counts

    # ---- signalling -----------------------------------------------------------------------

    async def signal(self, room_id: str, user: User, message: dict[str, Any]) -> None:
        participant, payload = self.seated_signal(room_id, user, message)
        name = str(user.id)
        placement = self.placements.setdefault(room_id, RoomPlacement())
        try:
            async with placement.lock:
                worker = placement.where.get(name)
                if worker is None:
                    if payload.get("type") != "offer":
                        raise RoomRuleError(
                            "invalid",
                            "signalling: ice: no media session for this participant"
                            " (send an offer first)",
                        )
                    worker = await self._place(room_id, placement, name, participant.can_speak)
            await self.pool.call(worker, "signal", room=room_id, participant=name, message=payload)
        except WorkerCommandError as exc:
            raise RoomRuleError("invalid", f"signalling: {exc}") from None

    async def _place(
        self, room_id: str, placement: RoomPlacement, name: str, can_speak: bool
    ) -> str:
        mixer = await self._ensure_mixer(room_id, placement)
        worker = placement.next_mixer or mixer  # a drained mixer's speakers go ahead
        if not can_speak:
            chosen = least_loaded(self.pool.workers(), self._placed())
            worker = chosen.id if chosen is not None else mixer
        if worker not in (mixer, placement.next_mixer):
            relay = await self._ensure_relay(room_id, placement, worker)
            stream = relay.streams.get(name)
            if stream is None:
                stream = relay.streams[name] = relay.next_stream
                relay.next_stream += 1
            await self.pool.call(
                mixer,
                "trunk_stream",
                room=room_id,
                trunk=relay.trunk,
                stream=stream,
                participant=name,
            )
            await self.pool.call(
                worker, "relay_stream", room=room_id, participant=name, stream=stream
            )
            await self.pool.call(
                mixer, "set_can_speak", room=room_id, participant=name, allowed=can_speak
            )
        await self.pool.call(
            worker, "set_can_speak", room=room_id, participant=name, allowed=can_speak
        )
        placement.where[name] = worker
        log.info("workers [%s] %s placed on %s (mixer %s)", room_id, name, worker, mixer)
        return worker

    async def _ensure_mixer(self, room_id: str, placement: RoomPlacement) -> str:
        if placement.mixer is not None:
            return placement.mixer
        chosen = least_loaded(self.pool.workers(), self._placed(), frozenset(placement.relays))
        if chosen is None:
            raise WorkerCommandError("no media worker can take this room now")
        await self.pool.call(chosen.id, "open_mixer", room=room_id)
        placement.mixer = chosen.id
        return chosen.id

    async def _ensure_relay(
        self, room_id: str, placement: RoomPlacement, worker: str
    ) -> RelayTrunk:
        relay = placement.relays.get(worker)
        if relay is None:
            relay = RelayTrunk(trunk=secrets.randbits(31) | 1)
            await self._open_trunk(room_id, placement, worker, relay)
            placement.relays[worker] = relay
        return relay

    async def _open_trunk(
        self, room_id: str, placement: RoomPlacement, worker: str, relay: RelayTrunk
    ) -> None:
        """Keys for both ends of one trunk, the origin end on the mixer, the relay on WORKER."""
        assert placement.mixer is not None
        mixer = self.pool.get(placement.mixer)
        if mixer is None:
            raise WorkerCommandError("the room's mixer worker is gone")
        origin_key, origin_public = new_keypair()
        relay_key, relay_public = new_keypair()
        await self.pool.call(
            mixer.id,
            "open_trunk",
            room=room_id,
            trunk=relay.trunk,
            own_key=bytes(origin_key).hex(),
            peer_key=relay_public.hex(),
        )
        await self.pool.call(
            worker,
            "open_relay",
            room=room_id,
            trunk=relay.trunk,
            own_key=bytes(relay_key).hex(),
            peer_key=origin_public.hex(),
            origin_host=mixer.advertise,
            origin_port=mixer.media_port,
        )

    # ---- federation's trunks (node/workers/federated.py) ------------------------------------

    async def trunk_media_address(self, room_id: str) -> tuple[str, int] | None:
        """A remote node's trunk goes to the room's mixer worker (opened now if need be)."""
        placement = self.placements.setdefault(room_id, RoomPlacement())
        async with placement.lock:
            mixer = await self._ensure_mixer(room_id, placement)
        state = self.pool.get(mixer)
        if state is None:
            raise WorkerCommandError("the room's mixer worker is gone")
        return state.advertise, state.media_port

    def origin_trunk(
        self,
        room_id: str,
        trunk_id: int,
        own: PrivateKey,
        peer: PublicKey,
        on_moved: Callable[[], object] = lambda: None,
    ) -> TrunkHandle:
        mixer = self.placements[room_id].mixer
        if mixer is None:
            raise WorkerCommandError("the room has no mixer worker")
        trunk = WorkerOriginTrunk(self.pool, mixer, room_id, trunk_id, own, peer)
        moved = self.origin_trunks.setdefault(room_id, {})
        moved[trunk_id] = on_moved
        trunk.forget = lambda: moved.pop(trunk_id, None)
        return trunk

    def new_relay(
        self,
        alias: str,
        send: SendToParticipant,
        trunk_id: int,
        own: PrivateKey,
        origin_key: PublicKey,
        origin: tuple[str, int],
        on_lost: Callable[[], object] = lambda: None,
    ) -> WorkerRelay:
        """Our users in a room hosted elsewhere: its relay on the least-loaded worker."""
        chosen = least_loaded(self.pool.workers(), self._placed())
        if chosen is None:
            raise WorkerCommandError("no media worker can take this room now")
        relay = WorkerRelay(
            self.pool,
            chosen.id,
            alias,
            send,
            trunk_id,
            own,
            origin_key,
            origin,
            forget=lambda: self.remote_relays.pop(alias, None),
            on_lost=on_lost,
        )
        self.remote_relays[alias] = relay
        return relay

    # ---- recording (node/recording.py): the node records a trunk of the mixer's mix -----------

    def recording_media(self, room_id: str) -> TrunkTap:
        tap = self.taps.get(room_id)
        if tap is None:
            tap = self.taps[room_id] = TrunkTap(room_id, self.engine.port, self._pre_skip)
            self._spawn(self._attach_tap(room_id, tap))
        return tap

    def recording_tap(self, room_id: str) -> TrunkTap | None:
        return self.taps.get(room_id)

    async def _attach_tap(self, room_id: str, tap: TrunkTap) -> None:
        placement = self.placements.setdefault(room_id, RoomPlacement())
        async with placement.lock:
            try:
                await self._ensure_mixer(room_id, placement)
                await self._tap_trunk(room_id, placement, tap)
            except WorkerCommandError as exc:
                log.warning("workers [%s]: cannot record the mix: %s", room_id, exc)

    async def _tap_trunk(self, room_id: str, placement: RoomPlacement, tap: TrunkTap) -> None:
        """A trunk from the room's mixer to the node's own media port, for the recorder."""
        state = self.pool.get(placement.mixer or "")
        if state is None:
            raise WorkerCommandError("the room's mixer worker is gone")
        trunk = secrets.randbits(31) | 1
        origin_key, origin_public = new_keypair()
        tap_key, tap_public = new_keypair()
        await self.pool.call(
            state.id,
            "open_trunk",
            room=room_id,
            trunk=trunk,
            own_key=bytes(origin_key).hex(),
            peer_key=tap_public.hex(),
        )
        tap.connect(trunk, tap_key, PublicKey(origin_public), (state.advertise, state.media_port))

    # ---- room events ------------------------------------------------------------------------

    def room_event(self, room: Room, event: RoomEvent) -> None:
        placement = self.placements.get(room.id)
        if placement is None:
            tap = self.taps.pop(room.id, None) if event.kind == "room_ended" else None
            if tap is not None:
                self._spawn(tap.close())
            return
        if event.kind == "room_ended":
            self.placements.pop(room.id, None)
            tap = self.taps.pop(room.id, None)
            if tap is not None:
                self._spawn(tap.close())
            for worker in placement.workers():
                self._spawn(self._quiet_call(worker, "close_room", room=room.id))
            return
        user_id = event.data.get("user")
        if not isinstance(user_id, int):
            return
        name = str(user_id)
        current = placement.where.get(name)  # None: a remote node's user (a trunk stream)
        targets = {t for t in (current, placement.mixer) if t is not None}
        if event.kind in ("left", "removed"):
            placement.where.pop(name, None)
            for target in targets:
                self._spawn(self._quiet_call(target, "remove", room=room.id, participant=name))
        elif event.kind in ("role_changed", "muted", "joined"):
            participant = room.participants.get(user_id)
            if participant is not None:
                for target in targets:
                    self._spawn(
                        self._quiet_call(
                            target,
                            "set_can_speak",
                            room=room.id,
                            participant=name,
                            allowed=participant.can_speak,
                        )
                    )

    async def _quiet_call(self, worker: str, kind: str, **fields: Any) -> None:
        try:
            await self.pool.call(worker, kind, **fields)
        except WorkerCommandError as exc:
            log.info("workers: %s on %s: %s", kind, worker, exc)

    # ---- what workers tell us ---------------------------------------------------------------

    def _worker_event(self, worker: str, event: Event) -> None:
        fields = event.fields
        relay = self.remote_relays.get(fields.get("room", ""))
        if relay is not None and relay.worker == worker and event.kind == "to_participant":
            relay.send(fields["participant"], fields["message"])
            return
        placement = self.placements.get(fields.get("room", ""))
        if placement is None:
            return
        room_id: str = fields["room"]
        if event.kind == "to_participant":
            name: str = fields["participant"]
            if placement.where.get(name) != worker or not name.isdigit():
                return  # an old worker's message (drained or replaced): not the client's
            message = fields["message"]
            self.rooms.send_to(room_id, int(name), {"type": "signal", "signal": message})
            old = placement.leaving.get(name)
            if message.get("type") == "answer":
                placement.answered[name] = worker
            if message.get("type") == "answer" and old is not None:
                self._spawn(self._retire(room_id, name, old))
        elif event.kind == "levels" and worker == placement.mixer:
            levels = fields["levels"]
            self.rooms.report_levels(
                room_id,
                {int(k): float(v) for k, v in levels.items() if k.isdigit() and _number(v)},
            )

    async def _retire(self, room_id: str, name: str, old: str) -> None:
        """Make-before-break: the old session goes once the new one had time to connect."""
        await asyncio.sleep(self.drain_overlap)
        placement = self.placements.get(room_id)
        if placement is None or placement.leaving.get(name) != old:
            return
        del placement.leaving[name]
        await self._quiet_call(old, "remove", room=room_id, participant=name)

    def _worker_gone(self, worker: str) -> None:
        if self._closing:
            return  # the node stops its workers: nothing to recover
        for room_id, placement in list(self.placements.items()):
            self._spawn(self._recover(room_id, placement, worker))
        for relay in list(self.remote_relays.values()):
            if relay.worker == worker:
                chosen = least_loaded(self.pool.workers(), self._placed())
                if chosen is None:
                    log.error("workers: no worker left for the relay of %s", relay.room_id)
                    continue
                log.warning("workers: relay of %s moves to %s", relay.room_id, chosen.id)
                self._spawn(relay.move(chosen.id))

    async def _recover(self, room_id: str, placement: RoomPlacement, worker: str) -> None:
        async with placement.lock:
            for name, old in list(placement.leaving.items()):
                if old == worker:
                    del placement.leaving[name]
            if placement.mixer == worker:
                await self._move_mixer(room_id, placement)
            elif worker in placement.relays:
                relay = placement.relays.pop(worker)
                if placement.mixer is not None:
                    await self._quiet_call(
                        placement.mixer, "close_trunk", room=room_id, trunk=relay.trunk
                    )
            for name in [n for n, w in placement.where.items() if w == worker]:
                self._move(room_id, placement, name)

    async def _move_mixer(self, room_id: str, placement: RoomPlacement) -> None:
        """The mixer is gone: a new one (a worker without the room first), relays re-keyed."""
        placement.mixer = None
        try:
            await self._ensure_mixer(room_id, placement)
        except WorkerCommandError:  # every worker relays the room: one of them mixes now
            chosen = least_loaded(self.pool.workers(), self._placed())
            if chosen is None:
                log.error("workers [%s]: no worker left for the room's mixer", room_id)
                return
            placement.relays.pop(chosen.id, None)
            await self._quiet_call(chosen.id, "close_room", room=room_id)
            for name in [n for n, w in placement.where.items() if w == chosen.id]:
                self._move(room_id, placement, name)
            await self._ensure_mixer(room_id, placement)
        mixer = placement.mixer
        assert mixer is not None
        log.warning("workers [%s]: the room's mixer moved to %s", room_id, mixer)
        await self._rekey_relays(room_id, placement)

    async def _rekey_relays(self, room_id: str, placement: RoomPlacement) -> None:
        """Every relay of the room gets a trunk from the (new) mixer; its listeners stay."""
        mixer = placement.mixer
        assert mixer is not None
        room = self.rooms.live(room_id)
        for worker, relay in list(placement.relays.items()):
            relay.trunk = secrets.randbits(31) | 1
            try:
                await self._open_trunk(room_id, placement, worker, relay)
                for name, stream in relay.streams.items():
                    await self.pool.call(
                        mixer,
                        "trunk_stream",
                        room=room_id,
                        trunk=relay.trunk,
                        stream=stream,
                        participant=name,
                    )
            except WorkerCommandError as exc:
                log.warning("workers [%s]: re-keying %s: %s", room_id, worker, exc)
        for on_moved in self.origin_trunks.pop(room_id, {}).values():
            on_moved()  # remote nodes open their trunks again, to the new mixer
        tap = self.taps.get(room_id)
        if tap is not None:  # the recording follows the mix to its new mixer
            try:
                await self._tap_trunk(room_id, placement, tap)
            except WorkerCommandError as exc:
                log.warning("workers [%s]: re-attaching the recording: %s", room_id, exc)
        if room is not None:
            for user_id, participant in room.participants.items():
                if participant.can_speak:
                    await self._quiet_call(
                        mixer,
                        "set_can_speak",
                        room=room_id,
                        participant=str(user_id),
                        allowed=True,
                    )

    def _move(self, room_id: str, placement: RoomPlacement, name: str) -> None:
        """NAME's session is gone with its worker: their client starts a new one."""
        placement.where.pop(name, None)
        for relay in placement.relays.values():
            relay.streams.pop(name, None)
        self.moves += 1
        if name.isdigit():
            self.rooms.send_to(
                room_id, int(name), {"type": "signal", "signal": Reconnect().serialize()}
            )

    # ---- drain ------------------------------------------------------------------------------

    async def drain(self, worker: str) -> WorkerState:
        """No new sessions on WORKER; its sessions move (make-before-break).

        A room mixed there gets a successor mixer first (on a worker without the room):
        its speakers are placed there as they reconnect, and once they have (plus the
        overlap) the relays switch to the new mixer's trunks and the old mixer closes. Our
        relays of rooms hosted elsewhere move too (``WorkerRelay.leave``).
        """
        state = self.pool.drain(worker)
        for room_id, placement in list(self.placements.items()):
            async with placement.lock:
                if placement.mixer == worker and placement.next_mixer is None:
                    await self._prepare_mixer_move(room_id, placement, worker)
                for name in [n for n, w in placement.where.items() if w == worker]:
                    placement.leaving[name] = worker
                    self._move(room_id, placement, name)
        for relay in [r for r in self.remote_relays.values() if r.worker == worker]:
            chosen = least_loaded(self.pool.workers(), self._placed())
            if chosen is None:
                log.warning("workers: no worker can take the relay of %s", relay.room_id)
            elif not relay.leaving:  # (a second drain while the first moves it: nothing)
                relay.leaving = True
                self._spawn(relay.leave(chosen.id, self.drain_overlap))
        return state

    async def _prepare_mixer_move(self, room_id: str, placement: RoomPlacement, old: str) -> None:
        exclude = frozenset({old, *placement.relays})
        chosen = least_loaded(self.pool.workers(), self._placed(), exclude)
        if chosen is None:
            log.warning("workers [%s]: no free worker to take the mixer from %s", room_id, old)
            return
        try:
            await self.pool.call(chosen.id, "open_mixer", room=room_id)
        except WorkerCommandError as exc:
            log.warning("workers [%s]: cannot open the new mixer: %s", room_id, exc)
            return
        placement.next_mixer = chosen.id
        room = self.rooms.live(room_id)
        speakers = set()
        if room is not None:
            for user_id, participant in room.participants.items():
                if participant.can_speak:
                    speakers.add(str(user_id))
                    await self._quiet_call(
                        chosen.id,
                        "set_can_speak",
                        room=room_id,
                        participant=str(user_id),
                        allowed=True,
                    )
        moving = {n for n, w in placement.where.items() if w == old and n in speakers}
        self._spawn(self._switch_mixer(room_id, placement, old, chosen.id, moving))

    async def _switch_mixer(
        self, room_id: str, placement: RoomPlacement, old: str, new: str, speakers: set[str]
    ) -> None:
        """Once the moving speakers are on the new mixer: relays follow, the old one closes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SWITCH_WAIT
        while loop.time() < deadline and any(placement.answered.get(n) != new for n in speakers):
            await asyncio.sleep(0.02)
        await asyncio.sleep(SWITCH_SETTLE)  # their new connections carry audio
        async with placement.lock:
            if placement.next_mixer != new or self.placements.get(room_id) is not placement:
                return
            placement.mixer, placement.next_mixer = new, None
            await self._rekey_relays(room_id, placement)
            log.info("workers [%s]: the mixer moved from %s to %s", room_id, old, new)
        await asyncio.sleep(self.drain_overlap)  # listeners leaving the old mixer, too
        await self._quiet_call(old, "close_room", room=room_id)

    def worker_views(self) -> list[dict[str, Any]]:
        placed = self._placed()
        return [{**w.view(), "placed": placed.get(w.id, 0)} for w in self.pool.workers()]

    async def drain_worker(self, worker: str) -> dict[str, Any]:
        """The admin API's drain (KeyError: no such worker)."""
        state = await self.drain(worker)
        return {**state.view(), "placed": self._placed().get(worker, 0)}

    def loads(self) -> list[WorkerLoad]:
        """Per worker, its last heartbeat (node/metrics reads this: ``WorkerLoads``)."""
        return [state.as_load() for state in self.pool.workers()]

    async def close(self) -> None:
        self._closing = True
        for tap in list(self.taps.values()):
            await tap.close()
        self.taps.clear()
        await super().close()
        if self.children is not None:
            await self.children.stop()
        await self.pool.close()


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
