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
import logging
import secrets
from collections.abc import Callable

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError
from aiortc.rtp import RtpPacket
from aiortc.sdp import candidate_from_sdp

from media import ice
from media.codec import OpusDecoder
from media.fanout import Downlink, IdleTrack, NotReady
from media.jitter import JitterBuffer
from media.signaling import Ice, SignalError

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


def _random_sequence() -> int:
    return secrets.randbelow(0x8000)  # lower half: avoids early wrap, as aiortc does


class Uplink:
    """A speaker's incoming Opus stream: jitter buffer and decoder, fed by the tap."""

    def __init__(self) -> None:
        self.jitter = JitterBuffer(prefetch=1, max_depth=5)
        self.decoder = OpusDecoder()
        self.opus_types: frozenset[int] = frozenset()


class ParticipantSession:
    def __init__(
        self,
        room_id: str,
        name: str,
        ice_addresses: tuple[str, ...],
        stun_servers: tuple[str, ...],
        may_speak: Callable[[], bool],
        on_failed: Callable[[str], None],
        forward: Callable[[int, int, bytes], None] | None = None,
        ice_ports: tuple[int, int] | None = None,
    ) -> None:
        """``forward(seq, timestamp, payload)``: relay the speaker's packets untouched
        (a relay node sends them on to the origin) instead of buffering them here."""
        self.room_id = room_id
        self.name = name
        self._ice_addresses = ice_addresses
        self._may_speak = may_speak
        self._forward = forward
        self._ice_ports = ice_ports
        servers = [RTCIceServer(urls=url) for url in stun_servers]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.uplink = Uplink()
        self.downlink: Downlink | None = None
        self.transceiver: RTCRtpTransceiver | None = None
        self._track = IdleTrack()
        self._lock = asyncio.Lock()
        self.closed = False

        @self.pc.on("connectionstatechange")
        def _state_changed() -> None:
            state = self.pc.connectionState
            logger.debug("media [%s/%s] connection %s", room_id, name, state)
            if state == "failed":
                on_failed(name)

    @property
    def negotiated_direction(self) -> str | None:
        """The node-side direction of the last completed negotiation."""
        return self.transceiver.currentDirection if self.transceiver else None

    async def answer(self, sdp: str) -> str:
        """Apply a client offer and return the answer SDP (raises SignalError)."""
        async with self._lock:
            if self.closed:
                raise SignalError("offer: media session is closed")
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
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
            transceiver.direction = "sendrecv" if self._may_speak() else "sendonly"
            try:
                answer = await self.pc.createAnswer()
                with ice.host_addresses(self._ice_addresses, self._ice_ports):
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
                self.downlink = Downlink(self.name, transceiver, _random_sequence())
            else:
                self.downlink.refresh()
        except NotReady as exc:
            logger.info("media [%s/%s] no downlink: %s", self.room_id, self.name, exc)
            self.downlink = None
        self.uplink.opus_types = frozenset(
            c.payloadType
            for c in transceiver._codecs
            if c.mimeType.lower() == "audio/opus" and c.payloadType is not None
        )

    def _tap(self, transceiver: RTCRtpTransceiver) -> None:
        """Replace the receiver's packet handler with ours (see module docstring)."""
        receiver = transceiver.receiver
        if not hasattr(receiver, "_handle_rtp_packet"):
            raise RuntimeError("aiortc RTCRtpReceiver._handle_rtp_packet is gone")
        uplink = self.uplink
        may_speak = self._may_speak
        forward = self._forward

        async def on_rtp(packet: RtpPacket, arrival_time_ms: int = 0) -> None:
            if not may_speak() or packet.payload_type not in uplink.opus_types:
                return  # cut at the node: a listener's or muted speaker's audio goes nowhere
            if forward is not None:
                forward(packet.sequence_number, packet.timestamp, packet.payload)
            else:
                uplink.jitter.push(packet.sequence_number, packet.payload)

        receiver._handle_rtp_packet = on_rtp  # type: ignore[method-assign]

    async def add_ice(self, message: Ice) -> None:
        if not message.candidate:
            return  # end of candidates: aiortc needs no signal
        try:
            candidate = candidate_from_sdp(message.candidate.removeprefix("a=").split(":", 1)[1])
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
        try:
            await self.pc.addIceCandidate(candidate)
        except _WEBRTC_ERRORS as exc:
            raise SignalError(f"ice: rejected: {exc or type(exc).__name__}") from exc

    def reset_uplink(self) -> None:
        self.uplink.jitter.reset()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._track.stop()
        async with self._lock:
            await self.pc.close()
