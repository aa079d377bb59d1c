"""One participant's peer connection on the node: negotiation, uplink tap, downlink.

The client always offers (first offer creates the session, later offers renegotiate).
The node answers with the direction its own decision allows: ``sendrecv`` for someone who
may speak, ``sendonly`` for a listener, so aiortc never starts a receiver (decoder
thread) for listeners. Speakers' packets are taken at ``RTCRtpReceiver._handle_rtp_packet``
(decrypted and parsed, before aiortc's +80 ms jitter buffer and its decoder thread) and
pushed into the room's own jitter buffer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import threading
from collections.abc import Callable

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError
from aiortc.rtp import RtcpRrPacket, RtcpSrPacket, RtpPacket
from aiortc.sdp import candidate_from_sdp

from media import dtls, ice, lite, rtcp
from media import transceiver as transceivers
from media.codec import OpusDecoder
from media.conceal import ConcealStats, next_frame_and_packet
from media.fanout import Downlink, IdleTrack, NotReady
from media.jitter import JitterBuffer
from media.mixer import Pcm
from media.port import MediaPort
from media.recovery import RedUnpacker
from media.red import RED_MIME, LossReports, sdp_red_codecs
from media.signaling import Ice, SignalError
from media.uplink_loss import uplink_counter

logger = logging.getLogger(__name__)

_WEBRTC_ERRORS = (
    ValueError,
    InternalError,
    InvalidAccessError,
    InvalidStateError,
    OperationError,
    AssertionError,  # aiortc asserts on some impossible SDP combinations
    KeyError,
)


# Remote candidates kept per media section: a browser offers a handful (host, srflx, relay
# per interface); every one kept makes the node send connectivity checks to that address.
MAX_REMOTE_CANDIDATES = 16
_CANDIDATE = "a=candidate:"
_END_OF_CANDIDATES = "a=end-of-candidates"
_RTCP = "a=rtcp:"


def _reachable_candidate(value: str) -> bool:
    """Whether aioice could ever send a check to this candidate (an ``a=candidate:`` value).

    aioice pairs only UDP candidates whose address is an IP literal; it never gathers
    IPv6 link-local addresses itself, so a remote link-local candidate can never pair.
    mDNS ``.local`` names are not IP literals: aioice would try to resolve them (up to a
    second, inside setRemoteDescription) and, on a server, fail.
    """
    try:
        candidate = candidate_from_sdp(value)
        address = ipaddress.ip_address(candidate.ip)
    except (ValueError, IndexError, AssertionError):
        return False
    return (
        candidate.protocol.lower() == "udp"
        and candidate.type in ("host", "srflx", "relay")
        and 0 < candidate.port < 65536
        and not (address.is_link_local or address.is_multicast or address.is_unspecified)
    )


def _ip_rtcp(value: str) -> bool:
    """Whether an ``a=rtcp:`` value has no address or an IP literal (RFC 3605)."""
    bits = value.split()
    if len(bits) != 4:
        return len(bits) == 1
    try:
        ipaddress.ip_address(bits[3])
    except ValueError:
        return False
    return True


def prune_remote_candidates(sdp: str, limit: int = MAX_REMOTE_CANDIDATES) -> str:
    """The offer as aioice should see it: only candidates it can reach, at most LIMIT each.

    Browsers hide their host address behind an mDNS name by default, and Firefox ends
    such an offer with ``a=end-of-candidates``. Given that, aioice 0.13 spends about a
    second failing to resolve the names, then drops the component (no remote candidate
    left after end-of-candidates), gathers nothing and answers without a candidate. So
    unreachable candidates are dropped here, and ``a=end-of-candidates`` with them in
    any section that lost one or has none left: aioice then keeps the component, gathers
    and answers at once, and learns the client's real address as a peer-reflexive
    candidate from its first connectivity check, as an ICE-lite server does. An
    ``a=rtcp:`` line naming an mDNS host goes too (aiortc keeps it and then fails to
    print the remote description; with rtcp-mux it carries nothing).
    """
    newline = "\r\n" if "\r\n" in sdp else "\n"
    sections: list[list[str]] = [[]]
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    out: list[str] = []
    for section in sections:
        kept = dropped = 0
        ended = False
        for line in section:
            if line.startswith(_CANDIDATE):
                if kept < limit and _reachable_candidate(line[len(_CANDIDATE) :]):
                    out.append(line)
                    kept += 1
                else:
                    dropped += 1
            elif line.strip() == _END_OF_CANDIDATES:
                ended = True
            elif line.startswith(_RTCP) and not _ip_rtcp(line[len(_RTCP) :]):
                continue  # Firefox's `a=rtcp:PORT IN IP4 NAME.local`: aiortc cannot print it
            else:
                out.append(line)
        if ended and kept and not dropped:
            out.append(_END_OF_CANDIDATES)
    return newline.join(out) + newline


def _ice_ufrag(sdp: str) -> str | None:
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line[len("a=ice-ufrag:") :].strip()
    return None


def _types(transceiver: RTCRtpTransceiver, mime: str) -> frozenset[int]:
    return frozenset(
        c.payloadType
        for c in transceiver._codecs
        if c.mimeType.lower() == mime and c.payloadType is not None
    )


def _random_sequence() -> int:
    return secrets.randbelow(0x8000)  # lower half: avoids early wrap, as aiortc does


FORCE_TRIM_TICKS = 50  # 1 s without a quiet frame to give a burst excess back in
GIVE_BACK_TICKS = 1500  # a stretch's 20 ms is given back after 30 s without needing it ...
MAX_HOLD_TICKS = 3000  # ... a hold that doubles, up to 60 s, while stretches recur after it


def protected_jitter() -> JitterBuffer:
    """A speaker's jitter buffer when loss protection is on (local and trunk speakers).

    Adaptive depth: while the stream loses nothing it plays one packet deep (no added
    latency); its first loss makes it hold one packet ahead (one tick concealed on
    purpose, +20 ms), so that later losses are rebuilt from the next packet's in-band FEC
    instead of concealed; after 10 s without a loss it gives that 20 ms back in a quiet
    frame.

    Each underrun (a packet later than the 20 ms of slack) adds 20 ms that stays until
    30 s pass without needing it, and twice as long (up to 60 s) each time the stream is
    late again soon after a give-back: every give-back followed by another stretch costs
    one skipped frame and one concealed one (shrinking every second made a machine with
    bursty scheduling pay that every second; after 5 s, every few seconds: docs/media.md,
    "Why the same code scored 3.99 and 3.73"). A burst
    (a sender that stalled, then sent what it owed) is kept, up to 240 ms, and given back
    one quiet frame at a time instead of trimming speech away — unless no quiet frame comes
    for a second (a continuous tone, music): then a burst excess of 60 ms or more is cut to
    one frame at once, so sound without pauses does not keep the speaker behind for good.
    """
    return JitterBuffer(
        prefetch=1,
        loss_prefetch=2,
        max_depth=12,
        shrink_after=GIVE_BACK_TICKS,
        stretch=True,
        force_after=FORCE_TRIM_TICKS,
        max_hold=MAX_HOLD_TICKS,
    )


class Uplink:
    """A speaker's incoming Opus stream: jitter buffer and decoder, fed by the tap.

    Once the stream has lost a packet, the jitter buffer keeps one packet ahead of playout,
    so when a packet is missing the next one is usually already here and its in-band FEC
    rebuilds the lost frame (media/conceal.py); the price, 20 ms of latency on the uplink,
    is paid only by a speaker whose packets get lost (``protected_jitter``). With protection
    the buffer also stretches on an underrun and gives the frame back only in a quiet
    moment after 30 s without needing it (``protected_jitter``).

    The event loop pushes (the tap, a relay trunk) while the mixer pops, possibly on the
    node's tick thread (media/ticker.py): the buffer is only touched under ``_lock``.
    """

    def __init__(self, jitter: JitterBuffer | None = None, protect: bool = True) -> None:
        if jitter is None:
            jitter = protected_jitter() if protect else JitterBuffer(prefetch=1, max_depth=5)
        self.jitter = jitter
        self.decoder = OpusDecoder()
        self.opus_types: frozenset[int] = frozenset()
        self.red_types: frozenset[int] = frozenset()
        self.unpacker = RedUnpacker()
        self._lock = threading.Lock()

    def push(self, sequence: int, payload: bytes, redundant: bool = False) -> None:
        with self._lock:
            self.jitter.push(sequence, payload, redundant)

    def pop(self) -> bytes | None:
        with self._lock:
            return self.jitter.pop()

    def next_frame(self, protect: bool, stats: ConcealStats) -> Pcm | None:
        """This tick's frame (decoded, recovered from FEC or concealed); None when idle."""
        return self.next_frame_and_packet(protect, stats)[0]

    def next_frame_and_packet(
        self, protect: bool, stats: ConcealStats
    ) -> tuple[Pcm | None, bytes | None]:
        """This tick's frame and the packet it was decoded from (None: rebuilt, concealed)."""
        with self._lock:
            return next_frame_and_packet(self.jitter, self.decoder, protect, stats)

    def reset(self) -> None:
        with self._lock:
            self.jitter.reset()


class ParticipantSession:
    def __init__(
        self,
        room_id: str,
        name: str,
        port: MediaPort,
        ice_addresses: tuple[str, ...],
        may_speak: Callable[[], bool],
        on_failed: Callable[[str], None],
        forward: Callable[[int, int, bytes], None] | None = None,
        protect: bool = True,
    ) -> None:
        """``forward(seq, timestamp, payload)``: relay the speaker's packets untouched
        (a relay node sends them on to the origin) instead of buffering them here.

        The connection is an ICE-lite agent on PORT (media/lite.py) with host candidates
        on ICE_ADDRESSES (empty: this machine's addresses, as aioice lists them)."""
        self.room_id = room_id
        self.name = name
        self._port = port
        self._ice_addresses = ice_addresses
        self._may_speak = may_speak
        self._forward = forward
        transceivers.install()  # lighter receiver and sender (media/transceiver.py)
        with dtls.presenting(port.dtls):  # the node's one certificate and DTLS context
            self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._protect = protect
        self.loss = LossReports()  # what this participant's receiver reports say
        self.uplink = Uplink(protect=protect)
        self.downlink: Downlink | None = None
        self.transceiver: RTCRtpTransceiver | None = None
        self._track = IdleTrack()
        self._lock = asyncio.Lock()
        self.closed = False

        @self.pc.on("connectionstatechange")
        def _state_changed() -> None:
            state = self.pc.connectionState
            logger.debug("media [%s/%s] connection %s", room_id, name, state)
            # "closed" without our close(): the transport went away under aiortc (a silent
            # client's ICE-lite session, media/lite.py, closes and takes DTLS with it)
            if state == "failed":
                logger.warning("media [%s/%s] connection failed", room_id, name)
                on_failed(name)
            elif state == "closed" and not self.closed:
                logger.info("media [%s/%s] connection closed by the client", room_id, name)
                on_failed(name)

    @property
    def negotiated_direction(self) -> str | None:
        """The node-side direction of the last completed negotiation."""
        return self.transceiver.currentDirection if self.transceiver else None

    def is_new_peer(self, offer_sdp: str) -> bool:
        """Whether OFFER_SDP comes from another peer connection than the one we answered
        (its ICE username fragment changed)."""
        remote = self.pc.remoteDescription
        offered = _ice_ufrag(offer_sdp)
        if remote is None or offered is None:
            return False  # not an offer aiortc could take anyway: the answer will say so
        return offered != _ice_ufrag(remote.sdp)

    async def answer(self, sdp: str) -> str:
        """Apply a client offer and return the answer SDP (raises SignalError).

        Everything aiortc creates while answering (the ICE gatherer, the RTCP loop's task)
        is created inside ``lite.serving`` and ``rtcp.sparse``, which scope our ICE-lite
        agent and RFC 3550's report interval to the node's own connections."""
        addresses = self._ice_addresses or ice.local_addresses()
        with lite.serving(self._port, addresses), rtcp.sparse():
            return await self._answer(sdp)

    async def _answer(self, sdp: str) -> str:
        async with self._lock:
            if self.closed:
                raise SignalError("offer: media session is closed")
            offer = RTCSessionDescription(sdp=prune_remote_candidates(sdp), type="offer")
            try:
                await self.pc.setRemoteDescription(offer)
            except _WEBRTC_ERRORS as exc:
                raise SignalError(f"offer: rejected: {exc or type(exc).__name__}") from exc
            audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
            if not audio:
                raise SignalError("offer: malformed SDP (no audio m-line)")
            transceiver = audio[0]
            for extra in audio[1:]:  # one audio stream per participant; refuse the rest
                extra.direction = "inactive"
            if self.transceiver is None:
                self.transceiver = transceiver
                transceiver.sender.replaceTrack(self._track)
                self._tap(transceiver)
                self._tap_reports(transceiver)
            if self._protect:  # answer RED too when offered: lossy listeners get it
                transceiver._codecs = transceiver._codecs + sdp_red_codecs(sdp)
            transceiver.direction = "sendrecv" if self._may_speak() else "sendonly"
            try:
                answer = await self.pc.createAnswer()
                await self.pc.setLocalDescription(answer)
            except _WEBRTC_ERRORS as exc:
                raise SignalError(f"offer: cannot answer: {exc or type(exc).__name__}") from exc
            self._refresh_downlink(transceiver)
            local = self.pc.localDescription
            assert local is not None
            return local.sdp

    def _refresh_downlink(self, transceiver: RTCRtpTransceiver) -> None:
        try:
            if self.downlink is None:
                self.downlink = Downlink(self.name, transceiver, _random_sequence(), self.loss)
            else:
                self.downlink.refresh()
        except NotReady as exc:
            logger.info("media [%s/%s] no downlink: %s", self.room_id, self.name, exc)
            self.downlink = None
        self.uplink.opus_types = _types(transceiver, "audio/opus")
        self.uplink.red_types = _types(transceiver, RED_MIME)

    def _tap(self, transceiver: RTCRtpTransceiver) -> None:
        """Replace the receiver's packet handler with ours (see module docstring)."""
        receiver = transceiver.receiver
        if not hasattr(receiver, "_handle_rtp_packet"):
            raise RuntimeError("aiortc RTCRtpReceiver._handle_rtp_packet is gone")
        uplink = self.uplink
        may_speak = self._may_speak
        forward = self._forward
        count = uplink_counter(receiver)  # our receiver reports (media/uplink_loss.py)

        async def on_rtp(packet: RtpPacket, arrival_time_ms: int = 0) -> None:
            count(packet)
            if not may_speak():
                return  # cut at the node: a listener's or muted speaker's audio goes nowhere
            is_red = packet.payload_type in uplink.red_types
            if not is_red and packet.payload_type not in uplink.opus_types:
                return
            seq = packet.sequence_number
            # RED: the frames this packet repeats come first; each is used once
            for sequence, timestamp, payload in uplink.unpacker.unpack(
                seq, packet.timestamp, packet.payload, is_red
            ):
                if forward is not None:
                    forward(sequence, timestamp, payload)
                else:
                    uplink.push(sequence, payload, redundant=sequence != seq)

        receiver._handle_rtp_packet = on_rtp  # type: ignore[method-assign]

    def _tap_reports(self, transceiver: RTCRtpTransceiver) -> None:
        """Read the participant's RTCP receiver reports about our downlink, then let aiortc.

        ``RTCRtpSender._handle_rtcp_packet`` is where aiortc's router delivers them; the
        "fraction lost" of the report block about our SSRC drives RED and the encoder's FEC.
        """
        sender = transceiver.sender
        if not hasattr(sender, "_handle_rtcp_packet"):
            raise RuntimeError("aiortc RTCRtpSender._handle_rtcp_packet is gone")
        original = sender._handle_rtcp_packet
        loss = self.loss

        async def on_rtcp(packet: object) -> None:
            if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
                for report in packet.reports:
                    if report.ssrc == sender._ssrc:
                        loss.add(report.fraction_lost)
            await original(packet)  # type: ignore[arg-type]

        sender._handle_rtcp_packet = on_rtcp  # type: ignore[method-assign]

    async def add_ice(self, message: Ice) -> None:
        if not message.candidate:
            return  # end of candidates: aiortc needs no signal
        value = message.candidate.removeprefix("a=").split(":", 1)[-1]
        try:
            candidate = candidate_from_sdp(value)
        except (ValueError, IndexError, AssertionError) as exc:
            raise SignalError("ice: malformed candidate") from exc
        candidate.sdpMid = message.sdp_mid
        candidate.sdpMLineIndex = message.sdp_mline_index
        if self.pc.remoteDescription is None or self.transceiver is None:
            raise SignalError("ice: no offer yet for this session")
        mids = {t.mid for t in self.pc.getTransceivers()}
        lines = {t._get_mline_index() for t in self.pc.getTransceivers()}
        if message.sdp_mid is not None and message.sdp_mid not in mids:
            raise SignalError("ice: unknown sdpMid for this session")
        if message.sdp_mid is None and message.sdp_mline_index not in lines:
            raise SignalError("ice: unknown sdpMLineIndex for this session")
        if not _reachable_candidate(value):
            return  # an mDNS name, TCP or link-local: its checks arrive as peer-reflexive
        try:
            await self.pc.addIceCandidate(candidate)
        except _WEBRTC_ERRORS as exc:
            raise SignalError(f"ice: rejected: {exc or type(exc).__name__}") from exc

    def reset_uplink(self) -> None:
        self.uplink.reset()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._track.stop()
        async with self._lock:
            await self.pc.close()
