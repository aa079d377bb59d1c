"""One tick's packets to every downlink in one call: native (C, sendmmsg) or Python.

Each ready ``Downlink`` (media/fanout.py) gives the tick one *entry*: its ``Target`` (what
is fixed for the connection: socket, destination, SRTP context, SSRC, extension block) plus
this packet's sequence number, marker|payload type and payload. Entries carry their own
payload and payload type, so listeners may get different payloads in one tick (a
mix-minus, or later RFC 2198 RED with its own payload type).

- Native: ``media/_fastpath.c`` builds every packet in a preallocated arena, calls libsrtp's
  ``srtp_protect`` (pylibsrtp's bundled copy, reached through its cffi ``lib``) and sends
  runs of consecutive entries on the same socket with one ``sendmmsg`` (≤ 1024 each). With
  one socket per connection (aioice today) that is one syscall per listener still, but no
  Python per packet; with one shared media socket it is one syscall per 1024 listeners.
- Python (``send_batch_python``): the same bytes, one ``sendto`` per entry. Used when the
  extension is not built (or ``native_fanout = false``), and as the byte-for-byte reference
  in tests/media/test_media_batch.py.

Both return the entries they did not send as ``(index, code, data)``: ``code`` is an errno
(``EAGAIN``/``ENOBUFS`` come with the protected ``data``, which the downlink then queues on
its asyncio transport), a negated libsrtp status, ``ERR_TOO_LONG`` or ``ERR_BAD_FD``.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import time
from collections.abc import Callable, Iterable
from socket import socket
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

from pylibsrtp import Error as SrtpError
from pylibsrtp._binding import ffi, lib

from media.meter import FanoutMeter
from media.rtp import RTP_HEADER

if TYPE_CHECKING:
    from media.fanout import Downlink, SrtpWriter

logger = logging.getLogger(__name__)

ERR_TOO_LONG = -1000  # same values as media/_fastpath.c
ERR_BAD_FD = -1001
ERR_PROTECT = -1  # the Python path does not learn libsrtp's status code
_pack_header = RTP_HEADER.pack


class Target(NamedTuple):
    """What the packets of one connection share; the C side reads the first eight items."""

    sock: socket | None  # None: no synchronous send (TURN relay), never batched
    sockaddr: bytes  # struct sockaddr of ``addr`` (pack_sockaddr), b"" without the extension
    srtp_ctx: int  # the session's srtp_t, valid as long as ``writer.session`` lives
    first_byte: int  # V=2, X when there is an extension block
    ssrc: int
    ext_head: bytes  # 0xBEDE header + elements before the level byte
    has_level: bool  # whether the tick's RFC 6464 level byte goes between head and tail
    ext_tail: bytes
    writer: SrtpWriter  # the Python path's protect (and what keeps srtp_ctx alive)
    addr: tuple[str, int]


Entry = tuple[Target, int, int, bytes]  # (target, sequence, marker | payload type, payload)
Failure = tuple[int, int, bytes | None]  # (entry index, code, protected bytes to queue)
SendBatch = Callable[[list[Entry], int, bytes], list[Failure]]

_native: ModuleType | None = None
_native_loaded = False


def load_native() -> ModuleType | None:
    """The C extension, wired to pylibsrtp's srtp_protect; None when it is not built."""
    global _native, _native_loaded
    if not _native_loaded:
        _native_loaded = True
        try:
            _fastpath = importlib.import_module("media._fastpath")
        except ImportError as exc:
            logger.info("native fan-out unavailable (%s): using the Python path", exc)
        else:
            _fastpath.set_protect(int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect"))))
            _native = _fastpath
    return _native


def pack_sockaddr(host: str, port: int) -> bytes:
    """The C ``struct sockaddr`` the native path sends to (b"" when it is not built)."""
    native = load_native()
    return bytes(native.pack_sockaddr(host, port)) if native is not None else b""


def protect_entry(entry: Entry, timestamp: int, level: bytes, seq_offset: int = 0) -> memoryview:
    """The packet of one entry, SRTP-protected: a view of the session's buffer (use at once).

    ValueError when too long, pylibsrtp.Error when libsrtp refuses.
    """
    target, seq, marker_pt, payload = entry
    header = _pack_header(
        target.first_byte, marker_pt, (seq + seq_offset) & 0xFFFF, timestamp, target.ssrc
    )
    if target.has_level:
        packet = header + target.ext_head + level + target.ext_tail + payload
    else:
        packet = header + target.ext_head + target.ext_tail + payload
    return target.writer.protect(packet)


def send_batch_python(
    entries: list[Entry], timestamp: int, level: bytes, seq_offset: int = 0
) -> list[Failure]:
    """The reference: what media/_fastpath.c ``send_batch`` does, one ``sendto`` at a time."""
    failures: list[Failure] = []
    for index, entry in enumerate(entries):
        target = entry[0]
        try:
            data = protect_entry(entry, timestamp, level, seq_offset)
        except ValueError:
            failures.append((index, ERR_TOO_LONG, None))
            continue
        except SrtpError:
            failures.append((index, ERR_PROTECT, None))
            continue
        if target.sock is None:
            failures.append((index, ERR_BAD_FD, None))
            continue
        try:
            target.sock.sendto(data, target.addr)
        except (BlockingIOError, InterruptedError):
            failures.append((index, errno.EAGAIN, bytes(data)))
        except OSError as exc:
            failures.append((index, exc.errno or errno.EIO, None))
    return failures


class BatchWriter:
    """Writes one tick to many downlinks: one native call (or the Python path) per tick."""

    def __init__(
        self,
        native: bool = True,
        meter: FanoutMeter | None = None,
        lock: contextlib.AbstractContextManager[object] | None = None,
    ) -> None:
        """METER (the node's, on its media port) counts each write's packets and time.
        LOCK (the node's ``srtp_lock``, media/dtls.py) is held for each write: the
        downlinks' outbound SRTP sessions are also aiortc's, whose RTCP the event loop
        protects under the same lock."""
        module = load_native() if native else None
        self.native = module is not None
        self.send_batch: SendBatch = module.send_batch if module is not None else send_batch_python
        self._meter = meter
        self.lock: contextlib.AbstractContextManager[object] = lock or contextlib.nullcontext()

    def write(
        self, items: Iterable[tuple[Downlink, bytes, int | None]], timestamp: int, level: bytes
    ) -> None:
        """Each (downlink, payload, payload type or None for Opus) gets one packet;
        downlinks that cannot batch write alone."""
        started = time.perf_counter()
        entries: list[Entry] = []
        owners: list[Downlink] = []
        add_entry, add_owner = entries.append, owners.append
        alone = 0
        with self.lock:
            for downlink, payload, payload_type in items:
                entry = downlink.entry(payload, payload_type)
                if entry is not None:
                    add_entry(entry)
                    add_owner(downlink)
                elif downlink.write(payload, timestamp, level, payload_type):  # ICE-TCP
                    alone += 1  # (not ready: a no-op, not counted)
            self.send(entries, owners, timestamp, level)
        if self._meter is not None:  # two clock reads and a few adds per room per tick
            self._meter.add(len(entries) + alone, time.perf_counter() - started)

    def send(
        self, entries: list[Entry], owners: list[Downlink], timestamp: int, level: bytes
    ) -> None:
        """Send prepared entries (``owners[i]`` made ``entries[i]``); hand back what failed."""
        if not entries:
            return
        for index, code, data in self.send_batch(entries, timestamp, level):
            owners[index].unsent(entries[index], code, data)
