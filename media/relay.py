"""The node-to-node relay trunk: one encrypted UDP flow per (room, remote node).

Origin node A runs the room's mixer. For each remote node B it keeps one ``OriginTrunk``:
every 20 ms tick it sends B the listener mix once, plus one mix-minus per B speaker, and it
feeds B's speakers' packets (relayed untouched) into its mixer. B runs a ``RelayRoom``:
B's users have ordinary peer connections with B (same signalling as a local room), but B
has no mixer and decodes nothing: A's mix goes to every B listener through the same
fan-out as a local room, each B speaker gets their own mix-minus, and B speakers' Opus
packets go to A as they arrive. A's egress for the room is one stream per remote node, and
A never learns a B user's address. The wire format is media/trunk.py; the control channel
that agrees the keys and carries room state is federation's business (docs/federation.md).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiortc import clock
from nacl.public import PrivateKey, PublicKey

from media.batch import BatchWriter
from media.engine import STATS_EVERY_TICKS, MediaConfig, RoomMedia
from media.fanout import Downlink
from media.mixer import FRAME_SAMPLES
from media.participants import Forward, Participants, SendToParticipant
from media.port import MediaPort, TrunkHandler
from media.recovery import Gap, Redundancy, StreamRecovery
from media.red import RedStream
from media.session import ParticipantSession
from media.trunk import Direction, Frame, Kind, Sealer, TrunkError

logger = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 1.0
TRUNK_REDUNDANCY = 2  # earlier frames repeated in each trunk datagram (docs/media.md)
Address = tuple[str, int]


class TrunkEnd:
    """A trunk's registration on the node's media port: its datagrams in, sends out."""

    def __init__(self, port: MediaPort, trunk_id: int, handler: TrunkHandler) -> None:
        self.port = port
        self.trunk_id = trunk_id
        self._handler = handler
        port.add_trunk(trunk_id, handler)

    @property
    def address(self) -> Address:
        return self.port.address

    def send(self, data: bytes, addr: Address) -> None:
        """Send on the event loop (keepalives, a relay's uplink as its packets arrive)."""
        self.port.send_trunk(data, addr)

    def send_now(self, data: bytes, addr: Address) -> None:
        """Send from any thread, at once (the mixer's tick thread: ``MediaPort.send_trunk_now``)."""
        self.port.send_trunk_now(data, addr)

    def close(self) -> None:
        self.port.remove_trunk(self.trunk_id, self._handler)


class OriginTrunk:
    """A's end of a trunk to one remote node (a ``TrunkPort`` of the room's mixer).

    ``send_tick`` runs where the mixer's tick runs (its tick thread, media/engine.py),
    before the tick's local fan-out: a relay's listeners then get each packet about when
    the mixer's own listeners do (docs/performance.md, "Scale"). What it touches from that
    thread: the sealer's send counter, the redundancy buffers and ``packets_sent`` (the
    tick's alone), ``peer`` (one attribute read) and the stream table (a copy made by one
    C-level call; ``add_stream`` makes a stream's redundancy buffer before it lists it).
    """

    def __init__(
        self,
        room: RoomMedia,
        trunk_id: int,
        own_key: PrivateKey,
        peer_key: PublicKey,
        port: MediaPort,
    ) -> None:
        self.room = room
        self.sealer = Sealer(trunk_id, own_key, peer_key, Direction.ORIGIN_TO_RELAY)
        self.sock = TrunkEnd(port, trunk_id, self._received)
        self.peer: Address | None = None  # the first authentic datagram's; never moves
        self.streams: dict[int, str] = {}  # B's stream id → participant key on A
        self._stream_of: dict[str, int] = {}
        self.packets_sent = 0
        self.packets_received = 0
        self.rejected = 0
        self.last_heard = time.monotonic()
        self.listener_loss = 0  # worst loss % B's listeners report (B's keepalives say)
        depth = TRUNK_REDUNDANCY if room.loss_protection else 0
        self._redundancy: dict[int, Redundancy] = {0: Redundancy(depth)}
        self._depth = depth
        room.attach_trunk(self)

    def add_stream(self, stream: int, participant: str) -> None:
        """B announced that STREAM carries PARTICIPANT (one of B's users)."""
        if not 1 <= stream <= 0xFFFF:
            raise TrunkError("stream ids are 1-65535 (0 is the room mix)")
        self.streams[stream] = participant
        self._redundancy.setdefault(stream, Redundancy(self._depth))  # before the tick sees it
        self._stream_of[participant] = stream
        self.room.add_remote(participant, self)

    def set_can_speak(self, participant: str, allowed: bool) -> None:
        """A's decision for one of B's users (A is the only authority over its room)."""
        self.room.set_can_speak(participant, allowed)

    def send_tick(
        self, main: bytes, personal: dict[str, bytes], timestamp: int, level_byte: bytes
    ) -> None:
        peer = self.peer
        if peer is None:
            return
        level = level_byte[0] if level_byte else 127
        seq = self.packets_sent & 0xFFFF
        earlier = self._redundancy[0].blocks(timestamp, main)
        mix = Frame(Kind.MIX, 0, seq, timestamp, level, main, earlier)
        self.sock.send_now(self.sealer.seal(mix), peer)
        self.packets_sent += 1
        for participant, stream in list(self._stream_of.items()):  # the loop may add one
            payload = personal.get(participant)
            if payload is not None:
                earlier = self._redundancy[stream].blocks(timestamp, payload)
                frame = Frame(Kind.MINUS, stream, seq, timestamp, level, payload, earlier)
                self.sock.send_now(self.sealer.seal(frame), peer)
                self.packets_sent += 1

    def _received(self, data: bytes, addr: Address) -> None:
        try:
            frame = self.sealer.open(data)
        except TrunkError as exc:
            self.rejected += 1
            logger.debug("trunk %d: dropped datagram from %s: %s", self.sealer.trunk_id, addr, exc)
            return
        if self.peer is None:  # learned once per key agreement (docs/federation.md §10.3)
            self.peer = addr
        elif addr != self.peer:
            self.rejected += 1
            return
        self.last_heard = time.monotonic()
        self.packets_received += 1
        if frame.kind is Kind.UPLINK:
            participant = self.streams.get(frame.stream)
            if participant is not None:
                self.room.push_remote(participant, frame.seq, frame.payload)
                for block in frame.redundant:  # fills a gap left by a lost datagram
                    steps = block.offset // FRAME_SAMPLES
                    seq = (frame.seq - steps) & 0xFFFF
                    self.room.push_remote(participant, seq, block.payload, redundant=True)
        elif frame.kind is Kind.KEEPALIVE and frame.payload:
            self.listener_loss = min(frame.payload[0], 100)

    async def close(self) -> None:
        await self.room.detach_trunk(self)
        self.sock.close()


class RelayRoom:
    """B's side of a room hosted on A: local peer connections, no mixer, no decoding.

    Composes the same ``Participants`` as an origin room (signalling, can-speak decisions,
    failures) with B's end of the trunk: it is the participants' ``Upstream`` (each local
    speaker's packets are sealed and sent to A as they arrive), and A's datagrams are
    written to the participants' downlinks as they arrive.
    """

    def __init__(
        self,
        room_id: str,
        config: MediaConfig,
        send: SendToParticipant,
        trunk_id: int,
        own_key: PrivateKey,
        origin_key: PublicKey,
        port: MediaPort,
        origin: Address,
    ) -> None:
        self.room_id = room_id
        self.sealer = Sealer(trunk_id, own_key, origin_key, Direction.RELAY_TO_ORIGIN)
        self.sock = TrunkEnd(port, trunk_id, self._received)
        self.origin = origin
        self.streams: dict[str, int] = {}
        self._by_stream: dict[int, str] = {}
        self._next_stream = 1
        self.packets_from_origin = 0
        self.packets_to_origin = 0
        self.rejected = 0
        self.last_heard = time.monotonic()
        self._protect = config.loss_protection
        self._recovery: dict[int, StreamRecovery] = {}  # per trunk stream (0: the mix)
        self._red: dict[int, RedStream] = {}  # what lossy local listeners get, per stream
        self._participants = Participants(room_id, config, send, port, upstream=self)
        self._writer = BatchWriter(config.native_fanout, port.meter, port.dtls.srtp_lock)
        self._mixes = 0  # MIX frames fanned out (sender reports are synced every 50)
        self._keepalive = asyncio.ensure_future(self._keep_alive())

    # ---- the node's interface (as RoomMedia's) ----------------------------------------------

    async def signal(self, participant: str, message: dict) -> None:
        """Handle one client → node signalling message; SignalError on bad input."""
        await self._participants.signal(participant, message)

    def set_can_speak(self, participant: str, allowed: bool) -> None:
        """B enforces A's decision for its users: False cuts them here immediately."""
        self._participants.set_can_speak(participant, allowed)

    async def remove(self, participant: str) -> None:
        await self._participants.remove(participant)

    @property
    def participants(self) -> list[str]:
        return self._participants.names()

    def session(self, participant: str) -> ParticipantSession | None:
        return self._participants.session(participant)

    def session_counts(self) -> tuple[int, int]:
        """(sessions here, those allowed to speak), as ``RoomMedia.session_counts``."""
        return self._participants.counts()

    # ---- the trunk to the origin --------------------------------------------------------------

    def rekey(
        self, trunk_id: int, own_key: PrivateKey, origin_key: PublicKey, origin: Address
    ) -> None:
        """The origin restarted and a new trunk was agreed; our users' connections stay."""
        self.sealer = Sealer(trunk_id, own_key, origin_key, Direction.RELAY_TO_ORIGIN)
        self.origin = origin
        if trunk_id != self.sock.trunk_id:
            port = self.sock.port
            self.sock.close()
            self.sock = TrunkEnd(port, trunk_id, self._received)
        self._recovery.clear()  # a new origin mixer: new timestamps
        self._red.clear()
        self._send_keepalive()  # the new origin learns where to send now, not in up to 1 s

    def stream_for(self, participant: str) -> int:
        """The stream id of one of our users (announced to A on the control channel)."""
        stream = self.streams.get(participant)
        if stream is None:
            stream = self._next_stream
            self._next_stream += 1
            self.streams[participant] = stream
            self._by_stream[stream] = participant
        return stream

    def assign_stream(self, participant: str, stream: int) -> None:
        """Use STREAM for PARTICIPANT (a node that agrees stream ids itself: media workers)."""
        if not 1 <= stream <= 0xFFFF:
            raise TrunkError("stream ids are 1-65535 (0 is the room mix)")
        old = self.streams.get(participant)
        if old is not None:
            self._by_stream.pop(old, None)
        self.streams[participant] = stream
        self._by_stream[stream] = participant

    def forward_for(self, participant: str) -> Forward:
        """``Upstream``: a local speaker's packets go to A untouched, as they arrive."""
        stream = self.stream_for(participant)
        redundancy = Redundancy(TRUNK_REDUNDANCY if self._protect else 0)

        def relay_uplink(seq: int, timestamp: int, payload: bytes) -> None:
            earlier = redundancy.blocks(timestamp, payload)
            frame = Frame(Kind.UPLINK, stream, seq & 0xFFFF, timestamp, 127, payload, earlier)
            self.sock.send(self.sealer.seal(frame), self.origin)
            self.packets_to_origin += 1

        return relay_uplink

    def _received(self, data: bytes, addr: Address) -> None:
        if addr != self.origin:
            self.rejected += 1
            return
        try:
            frame = self.sealer.open(data)
        except TrunkError as exc:
            self.rejected += 1
            logger.debug("relay [%s]: dropped datagram: %s", self.room_id, exc)
            return
        self.last_heard = time.monotonic()
        self.packets_from_origin += 1
        level = bytes([frame.level])  # A's RFC 6464 byte, passed through
        if frame.kind is Kind.MIX:  # one batch for every local listener
            self._forward(frame, level, self._participants.listener_downlinks())
            self._mixes += 1
            if self._mixes % STATS_EVERY_TICKS == 0:  # about once a second, as an origin does
                self._sync_sender_stats(frame.timestamp)
        elif frame.kind is Kind.MINUS:
            speaker = self._by_stream.get(frame.stream)
            own = self._participants.downlink_of(speaker) if speaker is not None else None
            if own is not None:
                self._forward(frame, level, [own])

    def _sync_sender_stats(self, rtp_timestamp: int) -> None:
        """Our downlinks' RTCP sender reports count what the batches really sent."""
        ntp = clock.current_ntp_time()
        for _, session in self._participants.sessions():
            if session.downlink is not None:
                session.downlink.sync_sender_stats(rtp_timestamp, ntp)

    def _forward(self, frame: Frame, level: bytes, downlinks: list[Downlink]) -> None:
        """Write one trunk frame to DOWNLINKS (one batch), after what its redundancy recovers.

        Frames lost on the trunk come back from the next datagram's copies; what is still
        missing is a gap in each listener's sequence numbers, concealed by the listener
        (media/recovery.py says why the relay does not decode). Listeners that report loss
        and negotiated RED get this stream's frames as RED, built here once per frame.
        """
        if not self._protect:
            payload = frame.payload
            self._writer.write(((d, payload, None) for d in downlinks), frame.timestamp, level)
            return
        recovery = self._recovery.setdefault(frame.stream, StreamRecovery())
        red = self._red.setdefault(frame.stream, RedStream())
        for item in recovery.receive(frame.timestamp, frame.payload, list(frame.redundant)):
            if isinstance(item, Gap):
                for downlink in downlinks:
                    downlink.skip(item.frames)
                continue
            timestamp, payload = item
            red.push(payload, timestamp)
            self._writer.write(
                (
                    (d, red.payload(d.payload_type), d.red_type)
                    if d.sends_red
                    else (d, payload, None)
                    for d in downlinks
                ),
                timestamp,
                level,
            )

    async def _keep_alive(self) -> None:
        """Opens the path through B's NAT and tells A where to send (and that we live)."""
        while True:
            self._send_keepalive()
            await asyncio.sleep(KEEPALIVE_SECONDS)

    def _send_keepalive(self) -> None:
        # the payload: the worst loss % our listeners report, for A's in-band FEC
        frame = Frame(Kind.KEEPALIVE, 0, 0, 0, 127, bytes([self.listener_loss()]))
        self.sock.send(self.sealer.seal(frame), self.origin)

    def listener_loss(self) -> int:
        """The worst loss % our local listeners report that RED does not cover (A's FEC)."""
        sessions = [s for s in map(self.session, self.participants) if s is not None]
        reported = [
            s.loss.percent
            for s in sessions
            if s.loss.lossy and (s.downlink is None or s.downlink.red_type is None)
        ]
        return min(max(reported, default=0), 100)

    async def close(self) -> None:
        self._keepalive.cancel()
        await asyncio.gather(self._keepalive, return_exceptions=True)
        await self._participants.close()
        self.sock.close()
