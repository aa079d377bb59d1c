"""Ogg pages (RFC 3533) and the Ogg Opus mapping (RFC 7845). Pure: bytes in, bytes out.

Page layout (RFC 3533 §6): ``OggS``, version 0, header type (0x01 continued packet, 0x02
beginning of stream, 0x04 end of stream), granule position (int64 LE), bitstream serial
(uint32 LE), page sequence number (uint32 LE), CRC-32 (uint32 LE), number of segments, the
segment table (lacing values: a packet is cut into 255-byte segments, the last one < 255),
then the data. The CRC is the non-reflected CRC-32 with polynomial 0x04C11DB7, initial
value 0 and no final XOR, over the whole page with the CRC field set to zero.

Ogg Opus (RFC 7845 §3-5): the first page (BOS) carries only the ``OpusHead`` identification
header, the second page only ``OpusTags``; audio pages follow. A page's granule position is
the number of 48 kHz samples (including the pre-skip) after the last packet that ends on
it. This writer never splits a packet across pages (a voice packet is at most 1275 bytes,
six lacing values), so every audio page ends a packet.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

CAPTURE = b"OggS"
CONTINUED = 0x01
BOS = 0x02
EOS = 0x04
MAX_SEGMENTS = 255
_HEADER = struct.Struct("<4sBBqIIIB")  # up to and including the segment count


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        value = byte << 24
        for _ in range(8):
            value = ((value << 1) ^ 0x04C11DB7) if value & 0x80000000 else (value << 1)
        table.append(value & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32(data: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, MSB first, init 0, no final XOR)."""
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) ^ byte) & 0xFF]
    return crc


def lacing(length: int) -> bytes:
    """The segment table entries of one whole packet of LENGTH bytes."""
    return bytes([255] * (length // 255) + [length % 255])


def page(packets: list[bytes], granule: int, serial: int, sequence: int, flags: int = 0) -> bytes:
    """One page holding PACKETS whole (the caller keeps the lacing values ≤ 255)."""
    table = b"".join(lacing(len(p)) for p in packets)
    if len(table) > MAX_SEGMENTS:
        raise ValueError("too many segments for one page")
    header = _HEADER.pack(CAPTURE, 0, flags, granule, serial, sequence, 0, len(table))
    body = header + table + b"".join(packets)
    crc = crc32(body)
    return body[:22] + struct.pack("<I", crc) + body[26:]


@dataclass(frozen=True)
class Page:
    flags: int
    granule: int
    serial: int
    sequence: int
    packets: tuple[bytes, ...]  # whole packets ending on this page (a trailing part is dropped)
    size: int  # bytes of the page


def parse_pages(data: bytes) -> Iterator[Page]:
    """Every whole, CRC-valid page from the start of DATA; stops at a torn or bad page."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        capture, version, flags, granule, serial, sequence, crc, count = _HEADER.unpack_from(
            data, offset
        )
        if capture != CAPTURE or version != 0:
            return
        table_end = offset + _HEADER.size + count
        if table_end > len(data):
            return
        table = data[offset + _HEADER.size : table_end]
        end = table_end + sum(table)
        if end > len(data):
            return
        raw = data[offset:end]
        if crc32(raw[:22] + b"\0\0\0\0" + raw[26:]) != crc:
            return
        packets: list[bytes] = []
        position, start = table_end, table_end
        for value in table:
            position += value
            if value < 255:
                packets.append(data[start:position])
                start = position
        yield Page(flags, granule, serial, sequence, tuple(packets), end - offset)
        offset = end


def opus_head(pre_skip: int, channels: int = 1, input_rate: int = 48_000) -> bytes:
    """The identification header (RFC 7845 §5.1), mapping family 0, output gain 0."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, input_rate, 0, 0)


def opus_tags(vendor: str, comments: list[str] | None = None) -> bytes:
    """The comment header (RFC 7845 §5.2): vendor string and ``KEY=value`` comments."""
    out = [b"OpusTags", _string(vendor), struct.pack("<I", len(comments or []))]
    out += [_string(comment) for comment in comments or []]
    return b"".join(out)


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<I", len(raw)) + raw


# A 20 ms CELT fullband mono frame (TOC 0xF8: config 31, code 0) that decodes to silence: the
# frame WebRTC sends for DTX. Missing ticks become this, so the file's clock never jumps.
SILENT_FRAME = b"\xf8\xff\xfe"


class OggOpusStream:
    """Builds one logical Ogg Opus stream packet by packet; returns bytes, writes nothing.

    ``headers()`` once, then ``add(packet)`` per 20 ms packet, ``pages()`` whenever the
    caller wants to flush (returns the pages of every packet added since), ``finish()``
    once (the remaining packets on a page flagged EOS).
    """

    def __init__(
        self,
        serial: int,
        pre_skip: int,
        vendor: str = "salon",
        samples_per_packet: int = 960,
        packets_per_page: int = 50,
    ) -> None:
        self.serial = serial & 0xFFFFFFFF
        self.pre_skip = pre_skip
        self.vendor = vendor
        self.samples_per_packet = samples_per_packet
        self.packets_per_page = packets_per_page
        self.sequence = 0
        self.granule = pre_skip  # after the last packet added
        self.packets = 0  # audio packets added so far
        self.finished = False
        self._pending: list[bytes] = []
        self._pending_segments = 0

    @classmethod
    def resume(cls, data: bytes, pre_skip: int, samples_per_packet: int = 960) -> OggOpusStream:
        """Continue the stream whose valid pages are DATA (a file after a crash).

        The caller truncates the file to ``valid_length(data)`` before appending.
        """
        last: Page | None = None
        audio = 0
        for index, item in enumerate(parse_pages(data)):
            last = item
            if index >= 2:
                audio += len(item.packets)
        if last is None or last.flags & EOS:
            raise ValueError("no open Ogg stream to resume")
        stream = cls(last.serial, pre_skip, samples_per_packet=samples_per_packet)
        stream.sequence = last.sequence + 1
        stream.packets = audio
        stream.granule = pre_skip + audio * samples_per_packet
        return stream

    @property
    def duration(self) -> float:
        """Seconds of audio added so far."""
        return self.packets * self.samples_per_packet / 48_000

    def headers(self) -> bytes:
        head = page([opus_head(self.pre_skip)], 0, self.serial, self.sequence, BOS)
        tags = page([opus_tags(self.vendor)], 0, self.serial, self.sequence + 1)
        self.sequence += 2
        return head + tags

    def add(self, packet: bytes) -> bytes:
        """Queue one packet; returns a full page when one filled up, else b""."""
        if self.finished:
            raise ValueError("stream finished")
        segments = len(packet) // 255 + 1
        out = b""
        if self._pending and (
            self._pending_segments + segments > MAX_SEGMENTS
            or len(self._pending) >= self.packets_per_page
        ):
            out = self.pages()
        self._pending.append(packet)
        self._pending_segments += segments
        self.packets += 1
        self.granule += self.samples_per_packet
        return out

    def pages(self, flags: int = 0) -> bytes:
        """A page of every packet queued since the last page (b"" when none and no flags)."""
        if not self._pending and not flags:
            return b""
        out = page(self._pending, self.granule, self.serial, self.sequence, flags)
        self.sequence += 1
        self._pending = []
        self._pending_segments = 0
        return out

    def finish(self) -> bytes:
        """The last page (EOS); nothing may be added after."""
        out = self.pages(EOS)
        self.finished = True
        return out


def valid_length(data: bytes) -> int:
    """Bytes of DATA made of whole, valid pages (where to truncate a torn file)."""
    return sum(item.size for item in parse_pages(data))
