"""Encode-once fan-out: one loop per room writes each packet to every listener.

Per listener and per packet the work is: pack a 12-byte RTP header, append a precomputed
header-extension block and the shared Opus payload, SRTP-protect with that connection's
session, and one ``sendto`` on its selected ICE pair's UDP socket. No coroutine, no
``RtpPacket`` object, no per-listener task wake-up.

aiortc internals used (aiortc 1.16.0 / aioice 0.13.0, pinned in pyproject.toml, each one
checked by tests/media/test_media_internals.py):

- ``RTCRtpTransceiver._codecs`` / ``._headerExtensions``: the negotiated payload type and
  extension ids for this connection.
- ``RTCRtpSender._ssrc``: the SSRC announced in our SDP answer; aiortc's sender is started
  (so it answers RTCP and sends sender reports) but its track never yields, so its RTP
  loop sleeps forever instead of polling every 20 ms.
- ``RTCDtlsTransport._state`` / ``._tx_srtp``: the DTLS state and the pylibsrtp session
  keyed from the handshake.
- pylibsrtp 1.0.0 ``Session._srtp`` / ``._cdata`` / ``._buffer`` and ``lib.srtp_protect``:
  ``Session.protect`` copies the packet into the session's own 1500-byte C buffer, calls
  ``srtp_protect`` and copies the result out; we do the same with one preallocated length
  cell and send straight from that buffer (a memoryview, no copy out), which saves ≈ 1 µs
  of Python per listener-packet. Same C call, same buffer, same single-threaded use as
  aiortc's own RTCP path, so the two never interleave.
- ``RTCIceTransport._connection._nominated[1]``: aioice's selected candidate pair; for
  host/server-reflexive pairs ``pair.protocol.transport`` is the asyncio UDP transport,
  whose raw socket (``transport._sock``, asyncio's selector transport) we write to
  directly, falling back to ``transport.sendto`` when the socket buffer is full.
  Relayed (TURN) pairs have no synchronous send: they take a slower path through
  ``protocol.send_data`` (one task per packet), documented in docs/media.md.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aioice.ice import CandidatePair, StunProtocol
from aiortc import RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from pylibsrtp import SRTP_MAX_TRAILER_LEN
from pylibsrtp import Error as SrtpError
from pylibsrtp import Session as SrtpSession
from pylibsrtp._binding import ffi, lib

from media.red import RED_MIME, LossReports
from media.rtp import AUDIO_LEVEL_URI, MID_URI, RTP_HEADER, extension_block, one_byte_element

logger = logging.getLogger(__name__)

_OPUS = "audio/opus"
_pack_header = RTP_HEADER.pack
_srtp_protect = lib.srtp_protect


class SrtpWriter:
    """``pylibsrtp.Session.protect`` without its per-call allocations and copy-out."""

    __slots__ = ("_buffer", "_cdata", "_ctx", "_length", "_view", "capacity", "session")

    def __init__(self, session: SrtpSession) -> None:
        self.session = session
        self._ctx = session._srtp[0]
        self._cdata = session._cdata
        self._buffer = session._buffer
        self._view = memoryview(session._buffer)
        self._length = ffi.new("int *")
        self.capacity = len(session._cdata) - SRTP_MAX_TRAILER_LEN

    def protect(self, packet: bytes) -> memoryview:
        """Protect ``packet``; the result is a view of the session buffer (use it at once)."""
        n = len(packet)
        if n > self.capacity:
            raise ValueError("packet is too long")
        self._buffer[0:n] = packet
        length = self._length
        length[0] = n
        status = _srtp_protect(self._ctx, self._cdata, length)
        if status:
            raise SrtpError(f"srtp_protect failed: {status}")
        return self._view[: length[0]]


class IdleTrack(MediaStreamTrack):
    """A track whose ``recv`` waits until stopped: keeps aiortc's sender loop asleep.

    The fan-out writes the packets itself; aiortc only needs a track so that the SDP
    announces our SSRC and its RTCP loop runs.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._stopped = asyncio.Event()

    async def recv(self) -> object:  # type: ignore[override]
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._stopped.set()


class NotReady(Exception):
    """The connection has not finished DTLS/negotiation yet (try again next tick)."""


@dataclass
class Downlink:
    """The node → participant audio stream of one peer connection, written by hand."""

    name: str
    transceiver: RTCRtpTransceiver
    sequence: int
    loss: LossReports = field(default_factory=LossReports)  # the listener's RTCP reports
    red_type: int | None = field(init=False, default=None)  # negotiated audio/red, if any
    dtls: RTCDtlsTransport = field(init=False)
    ssrc: int = field(init=False)
    payload_type: int = field(init=False)
    ext_head: bytes = field(init=False, default=b"")  # 0xBEDE header + mid + level id byte
    ext_tail: bytes = field(init=False, default=b"")  # padding after the level byte
    has_level: bool = field(init=False, default=False)
    packets: int = 0
    octets: int = 0
    _pair: CandidatePair | None = field(init=False, default=None)
    send_errors: int = 0
    _transport: asyncio.DatagramTransport | None = field(init=False, default=None)
    _sendto: object = field(init=False, default=None)
    _addr: tuple[str, int] | None = field(init=False, default=None)
    _slow_tasks: set[asyncio.Task[None]] = field(init=False, default_factory=set)
    _srtp: SrtpWriter | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """(Re)read negotiated parameters; called after every answer."""
        t = self.transceiver
        opus = [c for c in t._codecs if c.mimeType.lower() == _OPUS]
        if not opus:
            raise NotReady("no Opus codec negotiated")
        if opus[0].payloadType is None:
            raise NotReady("Opus has no payload type")
        self.payload_type = opus[0].payloadType
        red = [c.payloadType for c in t._codecs if c.mimeType.lower() == RED_MIME]
        self.red_type = red[0] if red else None
        self.dtls = t.sender.transport
        self.ssrc = t.sender._ssrc
        ids = {e.uri: e.id for e in t._headerExtensions}
        mid_id = ids.get(MID_URI)
        level_id = ids.get(AUDIO_LEVEL_URI)
        mid = one_byte_element(mid_id, t.mid.encode()) if mid_id and t.mid else b""
        self.has_level = level_id is not None
        # The block is built once with a placeholder level byte, then split around it.
        elements = mid + (one_byte_element(level_id, b"\x00") if level_id else b"")
        block = extension_block(elements)
        if self.has_level:
            cut = 4 + len(elements) - 1
            self.ext_head, self.ext_tail = block[:cut], block[cut + 1 :]
        else:
            self.ext_head, self.ext_tail = block, b""

    @property
    def sends_red(self) -> bool:
        """RED for this listener: it negotiated ``audio/red`` and reports loss."""
        return self.red_type is not None and self.loss.lossy

    def skip(self, frames: int) -> None:
        """Leave a gap of FRAMES sequence numbers: the listener conceals what is missing."""
        self.sequence = (self.sequence + frames) & 0xFFFF

    @property
    def ready(self) -> bool:
        return self.dtls._state == State.CONNECTED and self.dtls._tx_srtp is not None

    def _resolve(self) -> bool:
        ice = self.dtls.transport
        pair = ice._connection._nominated.get(1)
        if pair is None:
            return False
        self._pair = pair
        protocol = pair.protocol
        if isinstance(protocol, StunProtocol):
            self._transport = protocol.transport
            # the raw socket: asyncio's sendto adds ~0.5 µs of checks per call; we fall back
            # to it (which buffers and waits for writability) only when the socket is full
            raw = getattr(protocol.transport, "_sock", None)
            self._sendto = raw.sendto if raw is not None else protocol.transport.sendto
            self._addr = pair.remote_addr
        else:  # TURN relay: asynchronous send only
            self._sendto = None
            self._addr = pair.remote_addr
        return True

    def write(
        self, payload: bytes, timestamp: int, level_byte: bytes, payload_type: int | None = None
    ) -> bool:
        """Write one packet; False when the connection cannot carry it (yet or anymore).

        PAYLOAD_TYPE: ``red_type`` for a RED payload; default the negotiated Opus type.
        """
        dtls = self.dtls
        if dtls._state != State.CONNECTED:
            return False
        if self._pair is None and not self._resolve():
            return False
        seq = self.sequence
        self.sequence = (seq + 1) & 0xFFFF
        header = _pack_header(
            0x90 if self.ext_head else 0x80,
            (0x80 if not self.packets else 0)  # marker: first packet
            | (self.payload_type if payload_type is None else payload_type),
            seq,
            timestamp,
            self.ssrc,
        )
        if self.has_level:
            packet = header + self.ext_head + level_byte + self.ext_tail + payload
        else:
            packet = header + self.ext_head + payload
        srtp = self._srtp
        if srtp is None or srtp.session is not dtls._tx_srtp:
            srtp = self._srtp = SrtpWriter(dtls._tx_srtp)
        try:
            data = srtp.protect(packet)  # a view of the session's buffer: send it now
        except (ValueError, SrtpError) as exc:
            self.send_errors += 1
            logger.debug("fan-out [%s] protect failed: %s", self.name, exc)
            return True
        sendto = self._sendto
        if sendto is None:
            self._send_slow(bytes(data))
        else:
            try:
                sendto(data, self._addr)  # type: ignore[operator]
            except (BlockingIOError, InterruptedError):
                assert self._transport is not None
                self._transport.sendto(bytes(data), self._addr)
            except OSError as exc:  # e.g. network unreachable: count, do not kill the room
                self.send_errors += 1
                logger.debug("fan-out [%s] send failed: %s", self.name, exc)
        self.packets += 1
        self.octets += len(payload)
        return True

    def _send_slow(self, data: bytes) -> None:
        assert self._pair is not None and self._addr is not None
        task = asyncio.ensure_future(self._pair.protocol.send_data(data, self._addr))
        self._slow_tasks.add(task)
        task.add_done_callback(self._slow_tasks.discard)

    def sync_sender_stats(self, rtp_timestamp: int, ntp_timestamp: int) -> None:
        """Keep aiortc's RTCP sender reports truthful (they read these private counters)."""
        sender = self.transceiver.sender
        sender._RTCRtpSender__packet_count = self.packets  # type: ignore[attr-defined]
        sender._RTCRtpSender__octet_count = self.octets  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
        sender._RTCRtpSender__ntp_timestamp = ntp_timestamp  # type: ignore[attr-defined]
