"""The node's media engine: one RoomMedia per live room, mixing on a fixed 20 ms clock.

Each tick: pop one packet per allowed speaker from its jitter buffer, decode, mix once,
encode the room mix ONCE for every listener, encode one mix-minus per speaker (nobody hears
themselves), compute levels with numpy, and hand the packets to the fan-out, which writes
them to every connection without a coroutine per listener (media/fanout.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiortc import clock

from media import ice
from media.codec import OpusDecoder, OpusEncoder
from media.jitter import JitterBuffer
from media.mixer import LevelMeter, Pcm, dbov, mix
from media.rtp import audio_level_byte
from media.session import ParticipantSession
from media.signaling import Answer, Ice, Offer, Renegotiate, SignalError, parse_client_message

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.02
SAMPLES_PER_TICK = 960
STATS_EVERY_TICKS = 50

SendToParticipant = Callable[[str, dict], None]
OnLevels = Callable[[dict[str, float]], None]


@dataclass(frozen=True)
class MediaConfig:
    ice_addresses: tuple[str, ...] = ()  # host candidate addresses; () = aioice default
    ice_port_range: tuple[int, int] | None = None  # inclusive UDP range for host candidates
    bitrate: int = 32000  # Opus voice bitrate of the encode-once mix
    stun_servers: tuple[str, ...] = ()  # RTCConfiguration iceServers urls


class TrunkPort(Protocol):
    """What the mixer needs from a relay trunk (media/relay.py ``OriginTrunk``)."""

    def send_tick(
        self, main: bytes, personal: dict[str, bytes], timestamp: int, level_byte: bytes
    ) -> None: ...


class RemoteSpeaker:
    """A remote participant's uplink: packets from the trunk, our jitter buffer, a decoder."""

    def __init__(self, trunk: TrunkPort) -> None:
        self.trunk = trunk
        self.jitter = JitterBuffer(prefetch=2, max_depth=6)
        self.decoder = OpusDecoder()


class RoomMedia:
    """Audio of one room: sessions, the mixer clock and the fan-out."""

    def __init__(
        self, room_id: str, config: MediaConfig, send: SendToParticipant, on_levels: OnLevels
    ) -> None:
        self.room_id = room_id
        self._config = config
        self._send = send
        self._on_levels = on_levels
        self._sessions: dict[str, ParticipantSession] = {}
        self._can_speak: dict[str, bool] = {}
        self._encoder = OpusEncoder(config.bitrate)
        self._minus_encoders: dict[str, OpusEncoder] = {}
        self._meter = LevelMeter(window=5)  # 100 ms → at most 10 level events a second
        self._timestamp = secrets.randbits(32)
        self._ticks = 0
        self._mixer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.late_ticks = 0
        # relay trunks to other nodes (media/relay.py) and their speakers, fed by packets
        self._trunks: list[TrunkPort] = []
        self._remote: dict[str, RemoteSpeaker] = {}

    # ---- the node's interface -------------------------------------------------------------

    async def signal(self, participant: str, message: dict) -> None:
        """Handle one client → node signalling message; SignalError on bad input."""
        if self._closed:
            raise SignalError("room media is closed")
        parsed = parse_client_message(message)
        if isinstance(parsed, Offer):
            await self._offer(participant, parsed)
        else:
            await self._ice(participant, parsed)

    def set_can_speak(self, participant: str, allowed: bool) -> None:
        """Node's decision; False cuts the participant's audio at the node immediately."""
        before = self._can_speak.get(participant, False)
        self._can_speak[participant] = allowed
        session = self._sessions.get(participant)
        if not allowed:
            self._minus_encoders.pop(participant, None)
            if session is not None:
                session.reset_uplink()
        if session is not None and before != allowed and session.negotiated_direction:
            # Ask the client for a fresh offer so the uplink is (de)negotiated; the cut above
            # does not wait for it.
            self._send(participant, Renegotiate(can_speak=allowed).serialize())

    async def remove(self, participant: str) -> None:
        """Close that participant's peer connection (leave, kick, WebSocket loss).

        Also forgets the node's speak decision: call set_can_speak again if they rejoin.
        """
        self._can_speak.pop(participant, None)
        self._remote.pop(participant, None)
        await self._close_session(participant)

    async def _close_session(self, participant: str) -> None:
        """Close the peer connection but keep the speak decision (ICE failure: may re-offer)."""
        self._minus_encoders.pop(participant, None)
        session = self._sessions.pop(participant, None)
        if session is not None:
            await session.close()
            logger.info("media [%s] %s left", self.room_id, participant)
        if not self._sessions and not self._trunks:
            await self._stop_mixer()

    async def close(self) -> None:
        self._closed = True
        for name in list(self._sessions):
            await self.remove(name)
        await self._stop_mixer()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- relay trunks (the origin side; media/relay.py) --------------------------------------

    def attach_trunk(self, trunk: TrunkPort) -> None:
        if trunk not in self._trunks:
            self._trunks.append(trunk)
        self._start_mixer()

    async def detach_trunk(self, trunk: TrunkPort) -> None:
        if trunk in self._trunks:
            self._trunks.remove(trunk)
        for name in [n for n, r in self._remote.items() if r.trunk is trunk]:
            del self._remote[name]
        if not self._sessions and not self._trunks:
            await self._stop_mixer()

    def add_remote(self, participant: str, trunk: TrunkPort) -> None:
        """A participant whose audio arrives over TRUNK (a user of another node)."""
        if participant not in self._remote:
            self._remote[participant] = RemoteSpeaker(trunk)

    def push_remote(self, participant: str, sequence: int, payload: bytes) -> None:
        remote = self._remote.get(participant)
        if remote is None or not self._can_speak.get(participant, False):
            return  # cut at the origin: the relay node cannot make anyone heard
        remote.jitter.push(sequence, payload)

    @property
    def ticks(self) -> int:
        """Mixer steps so far (one packet per listener stream per tick)."""
        return self._ticks

    @property
    def trunks(self) -> list[TrunkPort]:
        return list(self._trunks)

    # ---- introspection for tests, benchmarks and the node's stats ----------------------------

    @property
    def participants(self) -> list[str]:
        return list(self._sessions)

    def session(self, participant: str) -> ParticipantSession | None:
        return self._sessions.get(participant)

    # ---- signalling ---------------------------------------------------------------------------

    async def _offer(self, participant: str, offer: Offer) -> None:
        session = self._sessions.get(participant)
        if session is not None and session.pc.signalingState == "closed":
            # The client closed its old peer connection (e.g. it reconnected within the
            # room's grace period): this offer starts a new session; the decision is kept.
            await self._close_session(participant)
            session = None
        created = session is None
        if session is None:
            session = self._new_session(participant)
            self._sessions[participant] = session
        try:
            sdp = await session.answer(offer.sdp)
        except SignalError:
            if created:
                await self.remove(participant)
            raise
        self._start_mixer()
        logger.info(
            "media [%s] %s %s (%s)",
            self.room_id,
            participant,
            "joined" if created else "renegotiated",
            session.negotiated_direction,
        )
        self._send(participant, Answer(sdp=sdp).serialize())

    def _new_session(
        self, participant: str, forward: Callable[[int, int, bytes], None] | None = None
    ) -> ParticipantSession:
        return ParticipantSession(
            self.room_id,
            participant,
            self._config.ice_addresses,
            self._config.stun_servers,
            may_speak=lambda: self._can_speak.get(participant, False),
            on_failed=self._connection_failed,
            forward=forward,
            ice_ports=self._config.ice_port_range,
        )

    async def _ice(self, participant: str, message: Ice) -> None:
        session = self._sessions.get(participant)
        if session is None:
            raise SignalError("ice: no media session for this participant (send an offer first)")
        await session.add_ice(message)

    def _connection_failed(self, participant: str) -> None:
        logger.warning("media [%s] %s connection failed; closing it", self.room_id, participant)
        task = asyncio.ensure_future(self._close_session(participant))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- the 20 ms clock --------------------------------------------------------------------

    def _start_mixer(self) -> None:
        if self._mixer is None and not self._closed:
            self._mixer = asyncio.ensure_future(self._run_mixer())

    async def _stop_mixer(self) -> None:
        mixer, self._mixer = self._mixer, None
        if mixer is not None and mixer is not asyncio.current_task():
            mixer.cancel()
            await asyncio.gather(mixer, return_exceptions=True)

    async def _run_mixer(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            self.tick()
            deadline += TICK_SECONDS
            delay = deadline - loop.time()
            if delay < -0.1:  # we fell far behind (blocked loop): skip, do not burst
                self.late_ticks += 1
                deadline = loop.time()
                delay = 0
            await asyncio.sleep(max(0.0, delay))

    def tick(self) -> None:
        """One 20 ms mixer step (public so tests and benchmarks can drive it by hand)."""
        frames: dict[str, Pcm] = {}
        for name, session in self._sessions.items():
            if not self._can_speak.get(name, False):
                continue
            payload = session.uplink.jitter.pop()
            if payload is None:
                continue
            pcm = session.uplink.decoder.decode(payload)
            frames[name] = pcm
            self._meter.add(name, dbov(pcm))
        for name, remote in self._remote.items():
            if not self._can_speak.get(name, False):
                continue
            payload = remote.jitter.pop()
            if payload is None:
                continue
            pcm = remote.decoder.decode(payload)
            frames[name] = pcm
            self._meter.add(name, dbov(pcm))
        levels = self._meter.tick()
        if levels is not None:
            self._on_levels(levels)

        timestamp = self._timestamp
        self._timestamp = (timestamp + SAMPLES_PER_TICK) & 0xFFFFFFFF
        self._ticks += 1
        if not self._trunks and not any(s.downlink is not None for s in self._sessions.values()):
            return
        room_mix, minus = mix(frames)
        main = self._encoder.encode(room_mix)
        level_byte = audio_level_byte(round(dbov(room_mix)))
        personal: dict[str, bytes] = {}
        for name, allowed in self._can_speak.items():
            if allowed and (name in self._sessions or name in self._remote):
                encoder = self._minus_encoders.get(name)
                if encoder is None:
                    encoder = self._minus_encoders[name] = OpusEncoder(self._config.bitrate)
                personal[name] = encoder.encode(minus.get(name, room_mix))
        self.fan_out(main, personal, timestamp, level_byte)
        for trunk in self._trunks:
            trunk.send_tick(main, personal, timestamp, level_byte)

    def fan_out(
        self, main: bytes, personal: dict[str, bytes], timestamp: int, level_byte: bytes
    ) -> None:
        """Write this tick's packet to every connection: the hot loop of the node."""
        sync = self._ticks % STATS_EVERY_TICKS == 0
        ntp = clock.current_ntp_time() if sync else 0
        get_personal = personal.get
        for name, session in self._sessions.items():
            downlink = session.downlink
            if downlink is None:
                continue
            downlink.write(get_personal(name, main), timestamp, level_byte)
            if sync:
                downlink.sync_sender_stats(timestamp, ntp)


class MediaEngine:
    """One per node: owns every room's media."""

    def __init__(self, config: MediaConfig) -> None:
        if config.ice_port_range is not None:
            low, high = config.ice_port_range
            if not 1024 <= low <= high <= 65535:
                raise ValueError("ice_port_range must be two ports 1024 <= low <= high <= 65535")
        self.config = config
        self._rooms: dict[str, RoomMedia] = {}
        if config.ice_addresses:
            ice.install()

    def room(self, room_id: str, send: SendToParticipant, on_levels: OnLevels) -> RoomMedia:
        """Get or create a room's media (send/on_levels are used only when creating)."""
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = RoomMedia(room_id, self.config, send, on_levels)
        return room

    def get(self, room_id: str) -> RoomMedia | None:
        return self._rooms.get(room_id)

    async def close_room(self, room_id: str) -> None:
        room = self._rooms.pop(room_id, None)
        if room is not None:
            await room.close()

    async def close(self) -> None:
        for room_id in list(self._rooms):
            await self.close_room(room_id)
