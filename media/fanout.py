"""Encode-once fan-out: per listener, only an RTP header, SRTP protect and a send.

A ``Downlink`` is the per-listener state (sequence, SSRC, negotiated payload type and
extension ids, counters). Each tick it hands the room a batch *entry* and media/batch.py
sends the whole tick in one call: the native extension (media/_fastpath.c: header +
``srtp_protect`` + ``sendmmsg``, no Python per packet) or the Python path (pack the
header, protect on the pylibsrtp session's buffer, one ``sendto``), which writes the same
bytes. No coroutine, no ``RtpPacket`` object, no per-listener task wake-up.

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
  of Python per listener-packet. On a node session it is the DTLS transport's one outbound
  session (``RTCDtlsTransport._tx_srtp``), shared with aiortc's RTCP: every batch holds
  the node's ``srtp_lock`` (media/batch.py ``BatchWriter``) and so does the protection of
  aiortc's RTCP on the event loop (media/dtls.py ``NodeDtlsTransport._send_rtp``), so the
  tick thread and the loop never use that libsrtp context or its buffer at once. On any
  other transport the fan-out keys a session of its own (media/srtp.py).
- that session's ``srtp_t`` (``Session._srtp[0]``) and the address of the bundled
  ``srtp_protect`` (``ffi.addressof(lib, "srtp_protect")``), as integers, for the native
  path, which calls that same libsrtp copy on its own buffer.
- ``RTCIceTransport._connection``: on the node it is our ``LiteConnection`` (media/lite.py),
  whose ``selected`` path says where the client is. A UDP path is batched on the media
  port's raw socket (``MediaPort.sock``); a batch that finds the socket full hands the
  protected bytes to the port's asyncio transport (on the loop), which buffers them. A TCP
  path (ICE-TCP) is not batched: ``write`` sends one RFC 4571 framed packet on its stream.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from socket import socket

from aiortc import RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from pylibsrtp import SRTP_MAX_TRAILER_LEN
from pylibsrtp import Error as SrtpError
from pylibsrtp import Session as SrtpSession
from pylibsrtp._binding import ffi, lib

from media.batch import (
    ERR_PROTECT,
    Entry,
    Target,
    pack_sockaddr,
    protect_entry,
    send_batch_python,
)
from media.dtls import NodeDtlsTransport
from media.lite import LiteConnection
from media.port import MediaPath
from media.red import RED_MIME, LossReports
from media.rtp import AUDIO_LEVEL_URI, MID_URI, extension_block, one_byte_element
from media.srtp import outbound_rtp_session

logger = logging.getLogger(__name__)

_OPUS = "audio/opus"
_CONNECTED = State.CONNECTED
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
        # a future, not an asyncio.Event: no deque block per connection (≈ 0.7 KB)
        self._stopped: asyncio.Future[None] | None = None

    async def recv(self) -> object:  # type: ignore[override]
        if self.readyState != "ended":
            stopped = self._stopped
            if stopped is None or stopped.cancelled():  # (a cancelled recv cancels it)
                stopped = self._stopped = asyncio.get_running_loop().create_future()
            await stopped  # one waiter (aiortc's sender loop): no shield needed
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        stopped = self._stopped
        if stopped is not None and not stopped.done():
            stopped.set_result(None)


class NotReady(Exception):
    """The connection has not finished DTLS/negotiation yet (try again next tick)."""


@dataclass
class Downlink:
    """The node → participant audio stream of one peer connection, written by hand.

    Per tick the room asks ``entry(payload)`` for this connection's batch entry (media/
    batch.py sends the whole tick in one call); ``write`` is the per-listener path for the
    connections a batch cannot carry (an ICE-TCP path: framed writes on its stream).
    """

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
    send_errors: int = 0
    _connection: LiteConnection | None = field(init=False, default=None)
    _path: MediaPath | None = field(init=False, default=None)
    _transport: asyncio.DatagramTransport | None = field(init=False, default=None)
    _sock: socket | None = field(init=False, default=None)
    _addr: tuple[str, int] | None = field(init=False, default=None)
    _target: Target | None = field(init=False, default=None)
    _srtp: SrtpWriter | None = field(init=False, default=None)  # the outbound session
    _keyed_from: SrtpSession | None = field(init=False, default=None)  # aiortc's session
    _keying: bool = field(init=False, default=False)
    _loop: asyncio.AbstractEventLoop | None = field(init=False, default=None)
    _loop_thread: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        # writes may come from the tick thread; keying and slow sends go back to this loop
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
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
        self._target = None  # rebuilt from the new parameters on the next packet

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
        """Find the client's selected path (again, when the client moved it)."""
        connection = self.dtls.transport._connection
        if not isinstance(connection, LiteConnection):
            return False  # not served on the media port: nothing to write to
        self._connection = connection
        path = self._path = connection.selected
        if path is None:
            return False
        self._addr = path.addr
        port = connection.port
        if path.tcp is None:
            if port.transport is None:
                return False  # the port is closed (node shutting down)
            self._transport = port.transport
            self._sock = port.sock
        else:  # ICE-TCP: framed writes on the stream
            self._sock = None
        return True

    def _moved(self) -> bool:
        """Whether the client's selected path is no longer the one the target was built for."""
        connection = self._connection
        return connection is None or connection.selected is not self._path

    def _current_target(self) -> Target | None:
        """This connection's batch target, rebuilt when the pair or the SRTP session changed."""
        target = self._target
        tx = self.dtls._tx_srtp
        if target is not None and self._keyed_from is tx and not self._moved():
            return target
        if tx is None or not self._resolve():
            return None
        writer = self._srtp
        if writer is None or self._keyed_from is not tx:
            if threading.get_ident() != self._loop_thread:
                self._key_on_loop()  # the DTLS connection is the loop's: key there
                return None
            self._key()
            writer = self._srtp
            if writer is None:
                return None
        assert self._addr is not None
        sock = self._sock
        target = self._target = Target(
            sock=sock,
            sockaddr=pack_sockaddr(*self._addr[:2]) if sock is not None else b"",
            srtp_ctx=int(ffi.cast("uintptr_t", writer.session._srtp[0])),
            first_byte=0x90 if self.ext_head else 0x80,
            ssrc=self.ssrc,
            ext_head=self.ext_head,
            has_level=self.has_level,
            ext_tail=self.ext_tail,
            writer=writer,
            addr=self._addr,
        )
        return target

    def udp_route(self) -> tuple[socket, tuple[str, int]] | None:
        """``(media port socket, client address)`` of a connected UDP path, else None
        (not connected yet, or an ICE-TCP path, which writes alone)."""
        if self.dtls._state is not _CONNECTED:
            return None
        target = self._current_target()
        if target is None or target.sock is None:
            return None
        return target.sock, target.addr

    def _next(self, target: Target, payload: bytes, payload_type: int | None) -> Entry:
        seq = self.sequence
        self.sequence = (seq + 1) & 0xFFFF
        marker = 0x80 if not self.packets else 0  # marker: first packet of the stream
        self.packets += 1
        self.octets += len(payload)
        pt = self.payload_type if payload_type is None else payload_type
        return (target, seq, marker | pt, payload)

    def entry(self, payload: bytes, payload_type: int | None = None) -> Entry | None:
        """This tick's batch entry (counted as sent), or None: not ready, or ICE-TCP (``write``).

        The hot path of the fan-out's Python part: one call, a handful of attribute reads.
        """
        dtls = self.dtls
        target = self._target
        if (
            target is None
            or self._keyed_from is not dtls._tx_srtp
            or dtls._state is not _CONNECTED
            or self._connection.selected is not self._path  # type: ignore[union-attr]
        ):
            if dtls._state is not _CONNECTED:
                return None
            target = self._current_target()
            if target is None:
                return None
        if target.sock is None:
            return None
        seq = self.sequence
        self.sequence = (seq + 1) & 0xFFFF
        packets = self.packets
        self.packets = packets + 1
        self.octets += len(payload)
        pt = self.payload_type if payload_type is None else payload_type
        return (target, seq, pt if packets else 0x80 | pt, payload)  # marker: first packet

    def write(
        self, payload: bytes, timestamp: int, level_byte: bytes, payload_type: int | None = None
    ) -> bool:
        """Write one packet alone; False when the connection cannot carry it (yet or anymore)."""
        if self.dtls._state != State.CONNECTED:
            return False
        target = self._current_target()
        if target is None:
            return False
        entry = self._next(target, payload, payload_type)
        if target.sock is not None:
            for _, code, data in send_batch_python([entry], timestamp, level_byte):
                self.unsent(entry, code, data)
            return True
        try:
            protected = bytes(protect_entry(entry, timestamp, level_byte))
        except (ValueError, SrtpError) as exc:
            self.unsent(entry, ERR_PROTECT, None)
            logger.debug("fan-out [%s] protect failed: %s", self.name, exc)
            return True
        path = self._path
        if path is None or path.tcp is None:
            self.unsent(entry, ERR_PROTECT, None)
            return True
        self._on_loop(path.tcp.send, protected)  # the stream is the loop's
        return True

    def unsent(self, entry: Entry, code: int, data: bytes | None) -> None:
        """A batch could not send ENTRY: queue it on asyncio (socket full) or count the error."""
        transport = self._transport
        if data is not None and transport is not None and not transport.is_closing():
            # buffered; asyncio waits for writability (on its loop: we may be the tick thread)
            self._on_loop(transport.sendto, data, self._addr)
            return
        self.send_errors += 1
        self.packets -= 1  # not sent: sender reports must not count it
        self.octets -= len(entry[3])
        logger.debug("fan-out [%s] packet not sent: code %d", self.name, code)

    def _on_loop(self, callback: Callable[..., object], *args: object) -> None:
        """Run CALLBACK on the event loop: now if we are on it, else soon (tick thread)."""
        if threading.get_ident() == self._loop_thread:
            callback(*args)
        else:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(callback, *args)

    def _key(self) -> None:
        """The outbound SRTP session (on the loop's thread): a node transport's own, shared
        under its ``srtp_lock``; else one of ours keyed from the DTLS keying material."""
        self._keying = False
        dtls = self.dtls
        if dtls._state == State.CONNECTED and dtls._tx_srtp is not None:
            shared = isinstance(dtls, NodeDtlsTransport)
            self._srtp = SrtpWriter(dtls._tx_srtp if shared else outbound_rtp_session(dtls))
            self._keyed_from = dtls._tx_srtp
            self._target = None

    def _key_on_loop(self) -> None:
        if not self._keying:
            assert self._loop is not None
            self._keying = True
            self._loop.call_soon_threadsafe(self._key)

    def sync_sender_stats(self, rtp_timestamp: int, ntp_timestamp: int) -> None:
        """Keep aiortc's RTCP sender reports truthful (they read these private counters)."""
        sender = self.transceiver.sender
        sender._RTCRtpSender__packet_count = self.packets  # type: ignore[attr-defined]
        sender._RTCRtpSender__octet_count = self.octets  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
        sender._RTCRtpSender__ntp_timestamp = ntp_timestamp  # type: ignore[attr-defined]
