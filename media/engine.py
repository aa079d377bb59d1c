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
from media.conceal import ConcealStats, next_frame
from media.jitter import JitterBuffer
from media.mixer import LevelMeter, Pcm, dbov, mix
from media.participants import Participants, SendToParticipant
from media.red import RedStreams
from media.rtp import audio_level_byte
from media.session import ParticipantSession, protected_jitter

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.02
SAMPLES_PER_TICK = 960
STATS_EVERY_TICKS = 50

OnLevels = Callable[[dict[str, float]], None]


@dataclass(frozen=True)
class MediaConfig:
    ice_addresses: tuple[str, ...] = ()  # host candidate addresses; () = aioice default
    ice_port_range: tuple[int, int] | None = None  # inclusive UDP range for host candidates
    bitrate: int = 32000  # Opus voice bitrate of the encode-once mix
    stun_servers: tuple[str, ...] = ()  # RTCConfiguration iceServers urls
    # concealment, in-band FEC, RED and trunk redundancy (docs/media.md); off = baseline
    loss_protection: bool = True


class TrunkPort(Protocol):
    """What the mixer needs from a relay trunk (media/relay.py ``OriginTrunk``)."""

    def send_tick(
        self, main: bytes, personal: dict[str, bytes], timestamp: int, level_byte: bytes
    ) -> None: ...

    @property
    def listener_loss(self) -> int:
        """Worst loss percentage the remote node's listeners report (feeds in-band FEC)."""
        ...


class RemoteSpeaker:
    """A remote participant's uplink: packets from the trunk, our jitter buffer, a decoder."""

    def __init__(self, trunk: TrunkPort, stretch: bool) -> None:
        self.trunk = trunk
        # one packet ahead: FEC (media/conceal.py); stretch: a late packet is not a lost one
        self.jitter = protected_jitter() if stretch else JitterBuffer(prefetch=2, max_depth=6)
        self.decoder = OpusDecoder()


class RoomMedia:
    """Audio of one room hosted here: its ``Participants``, the mixer clock and the fan-out.

    The participants (peer connections, can-speak decisions, signalling) are a component
    shared with relay rooms (media/participants.py); this class adds what only an origin
    does: decode, mix, encode once, and write to every downlink and relay trunk.
    """

    def __init__(
        self, room_id: str, config: MediaConfig, send: SendToParticipant, on_levels: OnLevels
    ) -> None:
        self.room_id = room_id
        self._config = config
        self._on_levels = on_levels
        self._participants = Participants(
            room_id, config, send, on_answered=self._answered, on_left=self._left
        )
        self._encoder = OpusEncoder(config.bitrate, fec=config.loss_protection)
        self._minus_encoders: dict[str, OpusEncoder] = {}
        self._red = RedStreams() if config.loss_protection else None
        self.conceal_stats = ConcealStats()
        self._meter = LevelMeter(window=5)  # 100 ms → at most 10 level events a second
        self._timestamp = secrets.randbits(32)
        self._ticks = 0
        self._mixer: asyncio.Task[None] | None = None
        self.late_ticks = 0
        # relay trunks to other nodes (media/relay.py) and their speakers, fed by packets
        self._trunks: list[TrunkPort] = []
        self._remote: dict[str, RemoteSpeaker] = {}

    # ---- the node's interface -------------------------------------------------------------

    async def signal(self, participant: str, message: dict) -> None:
        """Handle one client → node signalling message; SignalError on bad input."""
        await self._participants.signal(participant, message)

    def set_can_speak(self, participant: str, allowed: bool) -> None:
        """Node's decision; False cuts the participant's audio at the node immediately."""
        if not allowed:
            self._minus_encoders.pop(participant, None)
            if self._red is not None:
                self._red.forget(participant)
        self._participants.set_can_speak(participant, allowed)

    async def remove(self, participant: str) -> None:
        """Close that participant's peer connection (leave, kick, WebSocket loss).

        Also forgets the node's speak decision: call set_can_speak again if they rejoin.
        """
        self._remote.pop(participant, None)
        await self._participants.remove(participant)

    async def close(self) -> None:
        await self._participants.close()
        await self._stop_mixer()

    # ---- what the participants tell us ------------------------------------------------------

    def _answered(self, participant: str) -> None:
        self._start_mixer()

    async def _left(self, participant: str) -> None:
        self._minus_encoders.pop(participant, None)
        if self._red is not None:
            self._red.forget(participant)
        if self._participants.empty and not self._trunks:
            await self._stop_mixer()

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
        if self._participants.empty and not self._trunks:
            await self._stop_mixer()

    def add_remote(self, participant: str, trunk: TrunkPort) -> None:
        """A participant whose audio arrives over TRUNK (a user of another node)."""
        if participant not in self._remote:
            self._remote[participant] = RemoteSpeaker(trunk, self._config.loss_protection)

    def push_remote(
        self, participant: str, sequence: int, payload: bytes, redundant: bool = False
    ) -> None:
        remote = self._remote.get(participant)
        if remote is None or not self._participants.may_speak(participant):
            return  # cut at the origin: the relay node cannot make anyone heard
        remote.jitter.push(sequence, payload, redundant)

    @property
    def loss_protection(self) -> bool:
        return self._config.loss_protection

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
        return self._participants.names()

    def session(self, participant: str) -> ParticipantSession | None:
        return self._participants.session(participant)

    # ---- the 20 ms clock --------------------------------------------------------------------

    def _start_mixer(self) -> None:
        if self._mixer is None and not self._participants.closed:
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
        participants = self._participants
        frames: dict[str, Pcm] = {}
        for name, uplink in participants.speaking_uplinks():
            self._decode(name, uplink.jitter, uplink.decoder, frames)
        for name, remote in self._remote.items():
            if participants.may_speak(name):
                self._decode(name, remote.jitter, remote.decoder, frames)
        levels = self._meter.tick()
        if levels is not None:
            self._on_levels(levels)

        timestamp = self._timestamp
        self._timestamp = (timestamp + SAMPLES_PER_TICK) & 0xFFFFFFFF
        self._ticks += 1
        if not self._trunks and not participants.has_downlinks():
            return
        room_mix, minus = mix(frames)
        main = self._encoder.encode(room_mix)
        level_byte = audio_level_byte(round(dbov(room_mix)))
        personal: dict[str, bytes] = {}
        for name in participants.allowed_speakers():
            if name in participants or name in self._remote:
                encoder = self._minus_encoders.get(name)
                if encoder is None:
                    encoder = self._minus_encoders[name] = OpusEncoder(
                        self._config.bitrate, fec=self._config.loss_protection
                    )
                    encoder.set_packet_loss(self._encoder.packet_loss)
                personal[name] = encoder.encode(minus.get(name, room_mix))
        if self._red is not None:
            self._red.keep(main, personal, timestamp)
        self.fan_out(main, personal, timestamp, level_byte)
        for trunk in self._trunks:
            trunk.send_tick(main, personal, timestamp, level_byte)

    def _decode(
        self, name: str, jitter: JitterBuffer, decoder: OpusDecoder, frames: dict[str, Pcm]
    ) -> None:
        """Take one packet of a speaker (local or remote) into this tick's frames and levels."""
        pcm = next_frame(jitter, decoder, self._config.loss_protection, self.conceal_stats)
        if pcm is None:
            return
        frames[name] = pcm
        self._meter.add(name, dbov(pcm))

    def fan_out(
        self, main: bytes, personal: dict[str, bytes], timestamp: int, level_byte: bytes
    ) -> None:
        """Write this tick's packet to every connection: the hot loop of the node."""
        sync = self._ticks % STATS_EVERY_TICKS == 0
        ntp = clock.current_ntp_time() if sync else 0
        get_personal = personal.get
        for name, session in self._participants.sessions():
            downlink = session.downlink
            if downlink is None:
                continue
            if downlink.sends_red and self._red is not None:
                payload = self._red.payload(name, downlink.payload_type)  # built once a tick
                downlink.write(payload, timestamp, level_byte, downlink.red_type)
            else:
                downlink.write(get_personal(name, main), timestamp, level_byte)
            if sync:
                downlink.sync_sender_stats(timestamp, ntp)
        if sync and self._config.loss_protection:
            self._update_fec()

    def _update_fec(self) -> None:
        """Tell the encoders the worst loss that RED does not cover (libopus sizes its FEC).

        In-band FEC is paid by every listener (libopus moves bits from the frame to its
        low-bit-rate copy: PESQ-wb of a 32 kbit/s stream drops ≈ 0.2 at 10 %), so it is
        sized for lossy listeners that cannot take RED, and for relay nodes' such listeners.
        """
        sessions = self._participants.sessions()
        reported = [s.loss.percent for _, s in sessions if s.loss.lossy and not _red(s)]
        reported += [trunk.listener_loss for trunk in self._trunks]
        percent = min(max(reported, default=0), 30)
        self._encoder.set_packet_loss(percent)
        for encoder in self._minus_encoders.values():
            encoder.set_packet_loss(percent)


def _red(session: ParticipantSession) -> bool:
    return session.downlink is not None and session.downlink.red_type is not None


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

    def rooms(self) -> list[RoomMedia]:
        """Every room with media on this node (tests and stats look across rooms)."""
        return list(self._rooms.values())

    async def close_room(self, room_id: str) -> None:
        room = self._rooms.pop(room_id, None)
        if room is not None:
            await room.close()

    async def close(self) -> None:
        for room_id in list(self._rooms):
            await self.close_room(room_id)
