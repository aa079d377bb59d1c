"""Minimal RTP packet writing for the fan-out (RFC 3550, RFC 8285 one-byte extensions).

Pure functions, no I/O. aiortc's ``RtpPacket.serialize`` builds an object and a header
extension map per packet; the fan-out writes the same fixed header for thousands of
listeners, so it keeps a precomputed per-listener extension block and packs 12 bytes.
"""

from __future__ import annotations

import struct

RTP_VERSION_BYTE_EXT = 0x90  # V=2, P=0, X=1, CC=0
RTP_VERSION_BYTE = 0x80  # V=2, P=0, X=0, CC=0
RTP_HEADER = struct.Struct("!BBHII")

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def one_byte_element(ext_id: int, value: bytes) -> bytes:
    """One RFC 8285 one-byte-header extension element."""
    if not 1 <= ext_id <= 14:
        raise ValueError(f"one-byte extension id must be 1..14, got {ext_id}")
    if not 1 <= len(value) <= 16:
        raise ValueError(f"one-byte extension value must be 1..16 bytes, got {len(value)}")
    return bytes([(ext_id << 4) | (len(value) - 1)]) + value


def extension_block(elements: bytes) -> bytes:
    """Wrap elements in the 0xBEDE header and pad to a 32-bit boundary."""
    if not elements:
        return b""
    padded = elements + b"\x00" * (-len(elements) % 4)
    return struct.pack("!HH", 0xBEDE, len(padded) // 4) + padded


def audio_level_byte(level_dbov: int, voice: bool = True) -> bytes:
    """RFC 6464 level byte: V flag and -dBov in 0..127."""
    level = min(127, max(0, -level_dbov))
    return bytes([(0x80 if voice else 0) | level])


def pack_header(
    payload_type: int, sequence: int, timestamp: int, ssrc: int, marker: bool, extension: bool
) -> bytes:
    """The fixed 12-byte header."""
    return RTP_HEADER.pack(
        RTP_VERSION_BYTE_EXT if extension else RTP_VERSION_BYTE,
        (0x80 if marker else 0) | (payload_type & 0x7F),
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )


def header_length(packet: bytes) -> int:
    """Bytes before the payload of an RTP packet: fixed header, CSRCs, extension block."""
    if len(packet) < 12:
        raise ValueError("RTP packet shorter than its fixed header")
    length = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        if len(packet) < length + 4:
            raise ValueError("RTP header extension runs past the packet")
        length += 4 + 4 * int.from_bytes(packet[length + 2 : length + 4], "big")
    if len(packet) < length:
        raise ValueError("RTP header runs past the packet")
    return length


def seq_diff(a: int, b: int) -> int:
    """Signed distance a - b between 16-bit sequence numbers, in -32768..32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000
