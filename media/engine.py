"""The node's media engine: one RoomMedia per live room, mixing on a fixed 20 ms clock.

Each tick: pop one packet per allowed speaker from its jitter buffer, decode, mix once,
encode the room mix ONCE for every listener, encode one mix-minus per speaker (nobody hears
themselves), compute levels with numpy, and hand the packets to the fan-out, which writes
them to every connection without a coroutine per listener (media/fanout.py). When one
speaker alone is heard and their frame is a packet that really arrived, listeners get that
packet instead of the room's encoding of it (media/passthrough.py); the mix is encoded
anyway, for the recording and so that a switch back finds the encoder warm.

Where the tick runs (media/ticker.py): by default on the node's tick thread, so that work
on the event loop cannot delay it. What the tick thread touches, and why that is safe:

- the speakers' jitter buffers: the event loop pushes packets into them and the tick pops
  them, each under its ``Uplink``'s lock (local speakers and ``RemoteSpeaker``);
- ``Participants``' dicts (sessions, can-speak decisions) and the room's ``_remote`` and
  ``_trunks``: read only, through copies made by one C-level call (``list(d.items())``)
  that the loop cannot interleave with; the loop may add or remove entries meanwhile;
- ``_minus_encoders``: the tick gets and adds, the loop only pops (single dict operations);
- the decoders, encoders, level meter and RTP timestamp: the tick's alone;
- each ``Downlink``: header, sequence number and the connection's outbound SRTP session,
  which aiortc's RTCP on the loop also uses: every batch holds the node's ``srtp_lock``
  and aiortc's RTCP is protected under it (media/dtls.py ``NodeDtlsTransport._send_rtp``),
  its entry in the tick's one batch on the media port's socket (media/batch.py: native
  ``sendmmsg`` or Python ``sendto``, the GIL held for the whole native call); any slower
  send (socket full, ICE-TCP) is handed to the loop (``call_soon_threadsafe``);
- the relay trunks' ``send_tick`` (media/relay.py ``OriginTrunk``), called *before* the
  local fan-out so that a relay's listeners are not one fan-out plus a loop hop behind
  the mixer's own (docs/performance.md, "Scale"): it seals the tick's trunk datagrams and
  sends them at once on the port's raw socket (``MediaPort.send_trunk_now``); a full
  socket hands a datagram to the loop's transport;
- the level events are handed to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from aiortc import clock
from aiortc.rtcicetransport import parse_stun_turn_uri

from media.batch import BatchWriter
from media.codec import OpusEncoder
from media.conceal import ConcealStats
from media.fanout import Downlink
from media.jitter import JitterBuffer
from media.mixer import LevelMeter, Pcm, dbov, mix
from media.participants import Participants, SendToParticipant
from media.passthrough import PassThrough
from media.port import MediaPort
from media.recorder import Recorder
from media.red import RedStreams
from media.rtp import audio_level_byte
from media.session import ParticipantSession, Uplink, protected_jitter
from media.ticker import Ticker, make_ticker

logger = logging.getLogger(__name__)

SAMPLES_PER_TICK = 960
STATS_EVERY_TICKS = 50

OnLevels = Callable[[dict[str, float]], None]


@dataclass(frozen=True)
class MediaConfig:
    ice_addresses: tuple[str, ...] = ()  # host candidate addresses; () = this machine's
    bitrate: int = 32000  # Opus voice bitrate of the encode-once mix
    # the one media port (media/port.py): bind address ("" = the only ice address if there
    # is exactly one, else all interfaces), UDP port and TCP port (0 = any free port,
    # None = no ICE-TCP)
    media_host: str = ""
    media_port: int = 0
    media_tcp_port: int | None = 0
    # STUN servers (stun:host[:port]) asked once at start for the port's public address,
    # which every session then offers too (a node behind 1:1 NAT)
    stun_servers: tuple[str, ...] = ()
    # a session whose client sent nothing (no STUN, DTLS or SRTP) this long is closed
    silence_timeout: float = 30.0

    @property
    def bind_address(self) -> str:
        if self.media_host:
            return self.media_host
        return self.ice_addresses[0] if len(self.ice_addresses) == 1 else "0.0.0.0"

    native_fanout: bool = True  # media/_fastpath.c when built; False: the Python path
    tick: str = "thread"  # where the 20 ms clock runs: "thread" or "loop" (media/ticker.py)
    # concealment, in-band FEC, RED and trunk redundancy (docs/media.md); off = baseline
    loss_protection: bool = True
    # a lone speaker's own packets go to listeners instead of the room's encoding of them
    # (media/passthrough.py), for speakers whose packets average at most this many bits/s
    speaker_passthrough: bool = True
    passthrough_max_bitrate: int = 48_000


class TrunkPort(Protocol):
    """What the mixer needs from a relay trunk (media/relay.py ``OriginTrunk``)."""

    def send_tick(
        self, main: bytes, personal: dict[str, bytes], timestamp: int, level_byte: bytes
    ) -> None:
        """Send this tick's packets now, from the tick's thread (before the local fan-out)."""
        ...

    @property
    def listener_loss(self) -> int:
        """Worst loss percentage the remote node's listeners report (feeds in-band FEC)."""
        ...


class RemoteSpeaker:
    """A remote participant's uplink: packets from the trunk, our jitter buffer, a decoder."""

    def __init__(self, trunk: TrunkPort, stretch: bool) -> None:
        self.trunk = trunk
        # one packet ahead: FEC (media/conceal.py); stretch: a late packet is not a lost one
        jitter = protected_jitter() if stretch else JitterBuffer(prefetch=2, max_depth=6)
        self.uplink = Uplink(jitter)


class RoomMedia:
    """Audio of one room hosted here: its ``Participants``, the mixer clock and the fan-out.

    The participants (peer connections, can-speak decisions, signalling) are a component
    shared with relay rooms (media/participants.py); this class adds what only an origin
    does: decode, mix, encode once, and write to every downlink and relay trunk.
    """

    def __init__(
        self,
        room_id: str,
        config: MediaConfig,
        send: SendToParticipant,
        on_levels: OnLevels,
        port: MediaPort,
        ticker: Ticker | None = None,
    ) -> None:
        self.room_id = room_id
        self._config = config
        self._on_levels = on_levels
        self._participants = Participants(
            room_id, config, send, port, on_answered=self._answered, on_left=self._left
        )
        self._encoder = OpusEncoder(config.bitrate, fec=config.loss_protection)
        self._writer = BatchWriter(config.native_fanout, port.meter, port.dtls.srtp_lock)
        self._minus_encoders: dict[str, OpusEncoder] = {}
        self._red = RedStreams() if config.loss_protection else None
        self.passthrough = (
            PassThrough(config.passthrough_max_bitrate) if config.speaker_passthrough else None
        )
        self.conceal_stats = ConcealStats()
        self._meter = LevelMeter(window=5)  # 100 ms → at most 10 level events a second
        self._timestamp = secrets.randbits(32)
        self._ticks = 0
        self._ticker = ticker if ticker is not None else make_ticker("loop")
        self._ticking = False
        self._loop: asyncio.AbstractEventLoop | None = None  # where level events go
        self._loop_thread = 0
        # relay trunks to other nodes (media/relay.py) and their speakers, fed by packets
        self._trunks: list[TrunkPort] = []
        self._remote: dict[str, RemoteSpeaker] = {}
        # the room's recording (media/recorder.py): fed the encoded mix, keeps the clock going
        self._recorder: Recorder | None = None

    # ---- the node's interface -------------------------------------------------------------

    async def signal(self, participant: str, message: dict) -> None:
        """Handle one client → node signalling message; SignalError on bad input."""
        await self._participants.signal(participant, message)

    def set_can_speak(self, participant: str, allowed: bool) -> None:
        """Node's decision; False cuts the participant's audio at the node immediately."""
        if not allowed:
            self._forget_speaker(participant)
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

    def _forget_speaker(self, participant: str) -> None:
        self._minus_encoders.pop(participant, None)
        if self._red is not None:
            self._red.forget(participant)
        if self.passthrough is not None:
            self.passthrough.forget(participant)

    async def _left(self, participant: str) -> None:
        self._forget_speaker(participant)
        if self._participants.empty and not self._trunks and self._recorder is None:
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
        if self._participants.empty and not self._trunks and self._recorder is None:
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
        remote.uplink.push(sequence, payload, redundant)

    # ---- recording (media/recorder.py) ------------------------------------------------------

    @property
    def pre_skip(self) -> int:
        """The room encoder's lookahead: the pre-skip of a recording of its mix."""
        return self._encoder.lookahead

    @property
    def recorder(self) -> Recorder | None:
        return self._recorder

    def set_recorder(self, recorder: Recorder | None) -> None:
        """Feed RECORDER every tick's listener mix (None: stop feeding); keeps mixing."""
        self._recorder = recorder
        if recorder is not None:
            self._start_mixer()

    @property
    def loss_protection(self) -> bool:
        return self._config.loss_protection

    @property
    def ticks(self) -> int:
        """Mixer steps so far (one packet per listener stream per tick)."""
        return self._ticks

    @property
    def last_timestamp(self) -> int:
        """The RTP timestamp of the last tick's packets (its mix, its trunk frames)."""
        return (self._timestamp - SAMPLES_PER_TICK) & 0xFFFFFFFF

    @property
    def trunks(self) -> list[TrunkPort]:
        return list(self._trunks)

    # ---- introspection for tests, benchmarks and the node's stats ----------------------------

    @property
    def participants(self) -> list[str]:
        return self._participants.names()

    def session_counts(self) -> tuple[int, int]:
        """(sessions here, those allowed to speak): the node's metrics read it at scrape time."""
        return self._participants.counts()

    def session(self, participant: str) -> ParticipantSession | None:
        return self._participants.session(participant)

    # ---- the 20 ms clock --------------------------------------------------------------------

    def _start_mixer(self) -> None:
        if not self._ticking and not self._participants.closed:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._ticking = True
            self._ticker.start(self)

    async def _stop_mixer(self) -> None:
        if self._ticking:
            self._ticking = False
            await self._ticker.stop(self)

    def _on_loop(self, callback: Callable[..., object], *args: object) -> None:
        """Run CALLBACK on the event loop: now when the tick runs there, else handed over."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            callback(*args)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(callback, *args)

    def tick(self) -> None:
        """One 20 ms mixer step (public so tests and benchmarks can drive it by hand)."""
        participants = self._participants
        frames: dict[str, Pcm] = {}
        packets: dict[str, bytes | None] = {}  # what each frame was decoded from
        for name, uplink in participants.speaking_uplinks():
            self._decode(name, uplink, frames, packets)
        for name, remote in list(self._remote.items()):
            if participants.may_speak(name):
                self._decode(name, remote.uplink, frames, packets)
        levels = self._meter.tick()
        if levels is not None:
            self._on_loop(self._on_levels, levels)

        timestamp = self._timestamp
        self._timestamp = (timestamp + SAMPLES_PER_TICK) & 0xFFFFFFFF
        self._ticks += 1
        trunks = tuple(self._trunks)
        recorder = self._recorder
        if not trunks and not participants.has_downlinks() and recorder is None:
            return
        room_mix, minus = mix(frames)
        encoded = self._encoder.encode(room_mix)  # every tick: warm for a switch back
        # a lone speaker's own packet, when it may go as it is (media/passthrough.py)
        passed = self.passthrough.choose(packets) if self.passthrough is not None else None
        main = encoded if passed is None else passed
        if recorder is not None:
            recorder.push(encoded)  # a deque append: the file is written on the recorder's thread
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
                if passed is not None and name not in frames:
                    personal[name] = passed  # a silent speaker hears the lone one as listeners do
        for trunk in trunks:  # first: a relay's listeners wait for it, and for its fan-out
            trunk.send_tick(main, personal, timestamp, level_byte)
        if self._red is not None:
            self._red.keep(main, personal, timestamp)
        # a listener who reports loss and cannot take RED gets the room's own encoding while
        # a packet passes: its FEC follows their reports, the passed one the speaker's uplink
        own = encoded if passed is not None and self._config.loss_protection else None
        self.fan_out(main, personal, timestamp, level_byte, own)

    def _decode(
        self,
        name: str,
        uplink: Uplink,
        frames: dict[str, Pcm],
        packets: dict[str, bytes | None],
    ) -> None:
        """Take one packet of a speaker (local or remote) into this tick's frames and levels."""
        pcm, packet = uplink.next_frame_and_packet(self._config.loss_protection, self.conceal_stats)
        if pcm is None:
            return
        frames[name] = pcm
        packets[name] = packet
        self._meter.add(name, dbov(pcm))

    def fan_out(
        self,
        main: bytes,
        personal: dict[str, bytes],
        timestamp: int,
        level_byte: bytes,
        own: bytes | None = None,
    ) -> None:
        """Write this tick's packet to every connection: the hot loop of the node.

        One batch for the whole room (media/batch.py): each downlink adds its entry (its
        mix-minus for a speaker, the room mix for everyone else) and one native call sends
        them all. OWN, on a tick whose MAIN is a lone speaker's passed packet: the room's
        own encoding of it, for the listeners who report loss and cannot take RED. The
        passed packet carries only the speaker's in-band FEC, sized by the speaker's uplink
        (none on a clean one, none from a bot sending RED); the room's carries FEC sized by
        those listeners' reports (``_update_fec``). At 5 % downlink loss that is PESQ-wb
        2.97 against 2.20 for a speaker without FEC (bench/passthrough.py, docs/media.md).
        """
        get_personal = personal.get
        sessions = list(self._participants.sessions())  # a copy: the loop may change it
        red = self._red

        def payloads() -> Iterator[tuple[Downlink, bytes, int | None]]:
            for name, session in sessions:
                downlink = session.downlink
                if downlink is None:
                    continue
                if red is not None and downlink.sends_red:  # built once a tick, shared
                    yield downlink, red.payload(name, downlink.payload_type), downlink.red_type
                    continue
                payload = get_personal(name, main)
                if own is not None and payload is main and downlink.loss.lossy:
                    payload = own  # lossy without RED: the room's FEC, not the speaker's
                yield downlink, payload, None

        self._writer.write(payloads(), timestamp, level_byte)
        if self._ticks % STATS_EVERY_TICKS == 0:
            ntp = clock.current_ntp_time()
            for _, session in sessions:
                if session.downlink is not None:
                    session.downlink.sync_sender_stats(timestamp, ntp)
            if self._config.loss_protection:
                self._update_fec(sessions)

    def _update_fec(self, sessions: list[tuple[str, ParticipantSession]]) -> None:
        """Tell the encoders the worst loss that RED does not cover (libopus sizes its FEC).

        In-band FEC is paid by every listener (libopus moves bits from the frame to its
        low-bit-rate copy: PESQ-wb of a 32 kbit/s stream drops ≈ 0.2 at 10 %), so it is
        sized for lossy listeners that cannot take RED, and for relay nodes' such listeners.
        """
        reported = [s.loss.percent for _, s in sessions if s.loss.lossy and not _red(s)]
        reported += [trunk.listener_loss for trunk in list(self._trunks)]
        percent = min(max(reported, default=0), 30)
        self._encoder.set_packet_loss(percent)
        for encoder in list(self._minus_encoders.values()):
            encoder.set_packet_loss(percent)


def _red(session: ParticipantSession) -> bool:
    return session.downlink is not None and session.downlink.red_type is not None


async def _stun_address(url: str) -> tuple[str, int] | None:
    """``stun:host[:port]`` resolved to one IPv4 address (None, logged, when it cannot be)."""
    try:
        parsed = parse_stun_turn_uri(url)
        infos = await asyncio.get_running_loop().getaddrinfo(
            parsed["host"], parsed["port"], family=socket.AF_INET, type=socket.SOCK_DGRAM
        )
    except (ValueError, OSError) as exc:
        logger.warning("media port: cannot use STUN server %r: %s", url, exc)
        return None
    return str(infos[0][4][0]), int(infos[0][4][1])


class MediaEngine:
    """One per node: owns every room's media and the node's one media port.

    ``start()`` binds the port (inside the running loop); ``port.udp_port`` and
    ``port.tcp_port`` are then the ports actually bound (tests read them; ``salon serve``
    prints them).
    """

    def __init__(self, config: MediaConfig) -> None:
        self.config = config
        self.port = MediaPort(
            config.bind_address,
            config.media_port,
            config.media_tcp_port,
            silence_timeout=config.silence_timeout,
        )
        self._rooms: dict[str, RoomMedia] = {}
        self._ticker = make_ticker(config.tick)

    async def start(self) -> None:
        if self.port.started:
            return
        await self.port.start()
        found: list[str] = []
        for url in self.config.stun_servers:
            server = await _stun_address(url)
            address = await self.port.discover(server) if server else None
            if address is not None and address not in found:
                found.append(address)
                logger.info("media port: %s says our address is %s", url, address)
        self.port.public_addresses = tuple(found)

    def room(self, room_id: str, send: SendToParticipant, on_levels: OnLevels) -> RoomMedia:
        """Get or create a room's media (send/on_levels are used only when creating)."""
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = RoomMedia(
                room_id, self.config, send, on_levels, self.port, self._ticker
            )
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

    def stats(self) -> dict[str, object]:
        """The clock's counters (late ticks, worst lateness) and where it runs."""
        counters = self._ticker.stats.snapshot()
        return {"tick": self._ticker.mode, "rooms": len(self._rooms), **counters}

    async def close(self) -> None:
        """Close every room's media; the port stays open (``close_port`` after)."""
        for room_id in list(self._rooms):
            await self.close_room(room_id)
        await self._ticker.close()

    async def close_port(self) -> None:
        await self.port.close()
