"""A small ctypes binding to libopus: the copy bundled in PyAV's wheel, else the system's.

PyAV reaches libopus only through FFmpeg, which hides the two calls loss handling needs:
the decoder's packet-loss concealment (``opus_decode`` with no data) and in-band FEC
(``opus_decode`` with ``decode_fec=1`` on the packet *after* a loss, which rebuilds the lost
frame from the low-bit-rate copy (LBRR) that packet carries), and the encoder's run-time
``OPUS_SET_PACKET_LOSS_PERC`` (FFmpeg sets it once, at open). The API used here is the
documented libopus API (opus.h / opus_defines.h, libopus 1.3); request numbers and
constants are the values of the ``#define``s in opus_defines.h.

Which library: PyAV's wheel ships libopus (1.6.1 in av 18.1.0, ``av.libs/libopus-*.so*``,
already mapped into the process by PyAV's libavcodec) and it is used first: it encodes a
20 ms voice frame in ≈ 115 µs here against ≈ 290 µs for Debian's libopus 1.3.1; the system
``libopus.so.0`` (Debian ``libopus0``) is the fallback when the wheel has none.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

# opus_defines.h
OPUS_OK = 0
OPUS_APPLICATION_VOIP = 2048
OPUS_SET_BITRATE_REQUEST = 4002
OPUS_SET_COMPLEXITY_REQUEST = 4010
OPUS_SET_INBAND_FEC_REQUEST = 4012
OPUS_SET_PACKET_LOSS_PERC_REQUEST = 4014
OPUS_SET_DTX_REQUEST = 4016
OPUS_GET_LOOKAHEAD_REQUEST = 4027

MAX_PACKET = 1275  # the largest Opus frame (RFC 6716 §3.4)


class OpusError(RuntimeError):
    """libopus returned an error code (negative) for a call that must not fail."""


# opus.h: (return type, argument types) of each function used; the variadic ``_ctl`` calls
# declare no argument types (ctypes then passes each argument as given)
_SIGNATURES: dict[str, tuple[Any, list[Any] | None]] = {
    "opus_encoder_create": (
        ctypes.c_void_p,
        [ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)],
    ),
    "opus_encoder_destroy": (None, [ctypes.c_void_p]),
    "opus_encode_float": (
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int32],
    ),
    "opus_encoder_ctl": (ctypes.c_int, None),
    "opus_decoder_create": (
        ctypes.c_void_p,
        [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)],
    ),
    "opus_decoder_destroy": (None, [ctypes.c_void_p]),
    "opus_decode_float": (
        ctypes.c_int,
        [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int32,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ],
    ),
    "opus_strerror": (ctypes.c_char_p, [ctypes.c_int]),
}

_lib: ctypes.CDLL | None = None


def _load() -> ctypes.CDLL:
    """Load libopus once, on first use (nothing runs at import time)."""
    global _lib
    if _lib is None:
        name = _library_path()
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise OpusError(f"cannot load libopus ({name}): install libopus0") from exc
        for function, (restype, argtypes) in _SIGNATURES.items():
            entry = getattr(lib, function)
            entry.restype = restype
            if argtypes is not None:
                entry.argtypes = argtypes
        _lib = lib
    return _lib


def _library_path() -> str:
    bundled = sorted(Path(av.__file__).parent.parent.glob("av.libs/libopus*.so*"))
    if bundled:
        return str(bundled[0])
    return ctypes.util.find_library("opus") or "libopus.so.0"


def _check(code: int, what: str) -> int:
    if code < 0:
        reason = _load().opus_strerror(code).decode()
        raise OpusError(f"{what}: {reason} ({code})")
    return code


class Encoder:
    """One libopus encoder: mono float PCM in, one packet per call out."""

    def __init__(self, sample_rate: int, bitrate: int, fec: bool = True) -> None:
        lib = _load()
        error = ctypes.c_int(0)
        handle = lib.opus_encoder_create(sample_rate, 1, OPUS_APPLICATION_VOIP, error)
        _check(error.value, "opus_encoder_create")
        self._lib = lib
        self._handle: Any = ctypes.c_void_p(handle)  # a pointer, also for variadic ctl
        self._out = ctypes.create_string_buffer(MAX_PACKET)
        self.packet_loss = 0
        self.ctl(OPUS_SET_BITRATE_REQUEST, bitrate)
        self.ctl(OPUS_SET_INBAND_FEC_REQUEST, 1 if fec else 0)

    def ctl(self, request: int, value: int) -> None:
        code = self._lib.opus_encoder_ctl(
            self._handle, ctypes.c_int(request), ctypes.c_int32(value)
        )
        _check(code, f"opus_encoder_ctl({request})")

    def lookahead(self) -> int:
        """Samples of encoder delay (the Ogg Opus pre-skip, RFC 7845 §4.2)."""
        value = ctypes.c_int32(0)
        code = self._lib.opus_encoder_ctl(
            self._handle, ctypes.c_int(OPUS_GET_LOOKAHEAD_REQUEST), ctypes.byref(value)
        )
        _check(code, "opus_encoder_ctl(OPUS_GET_LOOKAHEAD)")
        return int(value.value)

    def set_packet_loss(self, percent: int) -> None:
        """Expected loss (0-100): libopus spends that much more on the LBRR copy."""
        percent = max(0, min(100, percent))
        if percent != self.packet_loss:
            self.ctl(OPUS_SET_PACKET_LOSS_PERC_REQUEST, percent)
            self.packet_loss = percent

    def encode(self, pcm: npt.NDArray[np.float32]) -> bytes:
        frame = np.ascontiguousarray(pcm, dtype=np.float32)
        n = self._lib.opus_encode_float(
            self._handle, frame.ctypes.data, len(frame), self._out, MAX_PACKET
        )
        return self._out.raw[: _check(n, "opus_encode_float")]

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._lib.opus_encoder_destroy(handle)


class Decoder:
    """One libopus decoder: packets, concealment and FEC recovery to mono float PCM."""

    def __init__(self, sample_rate: int, frame_samples: int) -> None:
        lib = _load()
        error = ctypes.c_int(0)
        handle = lib.opus_decoder_create(sample_rate, 1, error)
        _check(error.value, "opus_decoder_create")
        self._lib = lib
        self._handle: Any = ctypes.c_void_p(handle)  # a pointer, also for variadic ctl
        self.frame_samples = frame_samples
        self._pcm = np.zeros(frame_samples * 6, dtype=np.float32)  # up to 120 ms

    def _run(self, data: bytes | None, samples: int, fec: int) -> npt.NDArray[np.float32]:
        n = self._lib.opus_decode_float(
            self._handle, data, len(data) if data else 0, self._pcm.ctypes.data, samples, fec
        )
        return self._pcm[: _check(n, "opus_decode_float")].copy()

    def decode(self, packet: bytes) -> npt.NDArray[np.float32]:
        """Decode one packet (raises OpusError on a corrupt one)."""
        return self._run(packet, len(self._pcm), 0)

    def conceal(self, samples: int | None = None) -> npt.NDArray[np.float32]:
        """Packet-loss concealment for one missing frame (extrapolated from the past)."""
        return self._run(None, samples or self.frame_samples, 0)

    def recover(self, next_packet: bytes, samples: int | None = None) -> npt.NDArray[np.float32]:
        """The lost frame *before* NEXT_PACKET, from its in-band FEC (PLC if it has none).

        Call ``decode(next_packet)`` afterwards for the packet itself (libopus docs).
        """
        return self._run(next_packet, samples or self.frame_samples, 1)

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._lib.opus_decoder_destroy(handle)
