"""A 100 ms first DTLS retransmission timer for the node's handshakes (OpenSSL's default: 1 s).

A DTLS handshake is a few flights of datagrams; when one is lost, the side waiting for the
answer sends its last flight again once its timer runs out. OpenSSL starts that timer at
1 s and doubles it (RFC 6347 §4.2.4.1: "SHOULD use an initial timer value of 1 second").
The node answers ``setup:active`` (it is the DTLS client), so the server's last flight —
its ChangeCipherSpec and Finished — is what the node waits for: when that datagram is lost
the peer is already connected and sending audio, and the node drops it for a whole second
until its timer runs out. Measured with bench/loss.py at 5 % loss on every packet: one
speaker's session in six lost its first second this way (the node's first uplink packet
was frame 49).

OpenSSL lets an application choose the timer: ``DTLS_set_timer_cb(SSL *, DTLS_timer_cb)``
(OpenSSL ≥ 1.1.1, ``man DTLS_set_timer_cb``) calls ``cb(ssl, previous_us)`` with 0 for the
first flight and with the expired value after each timeout, and uses what it returns.
Media servers built on OpenSSL set a short one: SRS (ossrs, ``dtls_timer_cb``: 50 ms,
doubling) and FFmpeg's WHIP muxer both call it. Here: **100 ms, doubling, at most 60 s**
(RFC 6347's maximum), so a lost flight costs 100 ms, then 200, 400 …; a path slower than
100 ms round trip only gets a flight repeated (a few hundred bytes) and the peer ignores
the copy. The number of retransmissions stays OpenSSL's (it fails the handshake after 12
timeouts), so a peer that never answers gets no more flights than before, only sooner —
and the ICE-lite silence timeout (30 s) ends such a session anyway.

Why this module reaches for an unexported symbol. pyOpenSSL (the DTLS under aiortc) runs on
the OpenSSL that cryptography's wheel links statically into
``cryptography/hazmat/bindings/_rust.abi3.so``, and its cffi bindings do not include
``DTLS_set_timer_cb``. The function is in that file, but as a local symbol. So the symbol
table of that file is read (ELF ``.symtab``): the address of ``DTLS_set_timer_cb`` there,
minus that of the exported ``PyInit__rust``, plus where the loader put ``PyInit__rust``, is
where the function is in this process. Calling the system's libssl instead would write into
an ``SSL`` of another OpenSSL build, whose struct layout may differ. If anything is missing
(a stripped build, another platform, a symbol that is not a function) nothing is changed
and the timer stays OpenSSL's 1 s: ``available()`` says why.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import struct
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

INITIAL_US = 100_000  # the first flight's timer
MAX_US = 60_000_000  # RFC 6347 §4.2.4.1: doubling "up to no less than" 60 s

_TIMER_CB = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_void_p, ctypes.c_uint)
_SET_TIMER_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, _TIMER_CB)
_ANCHOR = "PyInit__rust"  # exported by the module, so the loader tells where it is
_TARGET = "DTLS_set_timer_cb"
_SHT_SYMTAB = 2
_STT_FUNC = 2


def next_timeout(previous_us: int) -> int:
    """The timer for the next flight: INITIAL_US for the first, then doubled, up to MAX_US."""
    if previous_us <= 0:
        return INITIAL_US
    return min(previous_us * 2, MAX_US)


@_TIMER_CB
def _timer(_ssl: int | None, previous_us: int) -> int:
    return next_timeout(previous_us)


def elf_functions(path: Path, names: tuple[str, ...]) -> dict[str, int]:
    """The symbol-table values (addresses relative to the load base) of the functions
    NAMES in the ELF64 little-endian shared object PATH; a name not found is left out."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as elf:
        if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
            raise ValueError(f"{path.name}: not a 64-bit little-endian ELF file")
        (shoff,) = struct.unpack_from("<Q", elf, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize)
                    for i in range(shnum)]  # fmt: skip
        found: dict[str, int] = {}
        for _, kind, _, _, offset, size, link, _, _, entsize in sections:
            if kind != _SHT_SYMTAB or entsize != 24:
                continue
            strtab = sections[link]
            strings = elf[strtab[4] : strtab[4] + strtab[5]]
            # every place a wanted name starts (the linker may share a name's bytes with
            # the tail of a longer one, so look for the name followed by its NUL)
            starts: dict[int, str] = {}
            for name in names:
                key = name.encode() + b"\0"
                at = strings.find(key)
                while at != -1:
                    starts[at] = name
                    at = strings.find(key, at + 1)
            for i in range(size // 24):
                st_name, st_info, _, st_shndx, st_value, _ = struct.unpack_from(
                    "<IBBHQQ", elf, offset + i * 24
                )
                wanted = starts.get(st_name)
                if wanted and st_info & 0xF == _STT_FUNC and st_shndx != 0 and st_value:
                    found.setdefault(wanted, st_value)
        return found


class _Hook:
    """``DTLS_set_timer_cb`` of the OpenSSL pyOpenSSL runs on, found once."""

    def __init__(self) -> None:
        self.reason = ""
        self._set: Any = None
        self._ffi: Any = None
        try:
            import cryptography.hazmat.bindings._rust as rust
            from OpenSSL._util import ffi

            path = Path(rust.__file__ or "")
            symbols = elf_functions(path, (_ANCHOR, _TARGET))
            if _ANCHOR not in symbols or _TARGET not in symbols:
                raise LookupError(f"{path.name} has no {_TARGET} in its symbol table")
            loaded = ctypes.cast(getattr(ctypes.CDLL(str(path)), _ANCHOR), ctypes.c_void_p)
            assert loaded.value is not None
            base = loaded.value - symbols[_ANCHOR]
            self._set = _SET_TIMER_CB(base + symbols[_TARGET])
            self._ffi = ffi
        except Exception as exc:  # any platform or build where this cannot be done
            self.reason = f"{type(exc).__name__}: {exc}"
            logger.warning("DTLS retransmission timer stays at OpenSSL's 1 s (%s)", self.reason)

    def apply(self, connection: Any) -> bool:
        if self._set is None:
            return False
        ssl = connection._ssl  # pyOpenSSL's ``SSL *`` (a cffi pointer)
        self._set(int(self._ffi.cast("uintptr_t", ssl)), _timer)
        return True


_hook: _Hook | None = None


def _get() -> _Hook:
    global _hook
    if _hook is None:
        _hook = _Hook()
    return _hook


def available() -> str:
    """Why the short timer cannot be set here; empty when it can."""
    return _get().reason


def shorten(connection: Any) -> bool:
    """Give the pyOpenSSL ``Connection`` CONNECTION the short DTLS timer (before its
    handshake starts); False when this build of OpenSSL does not allow it."""
    return _get().apply(connection)
