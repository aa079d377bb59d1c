"""Ogg pages (RFC 3533) of an Ogg Opus file (RFC 7845): read, rewrite, trim by page.

Pure functions over bytes, no I/O. A replay is trimmed without re-encoding: the header
pages (``OpusHead``, ``OpusTags``) are kept, then only the audio pages inside the kept span,
with granule positions rebased so that playback starts at zero, page sequence numbers
renumbered without gaps, the last page flagged end-of-stream and every CRC recomputed.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

CAPTURE = b"OggS"
HEADER = struct.Struct("<4sBBqIIIB")  # RFC 3533 §6: the 27 bytes before the segment table
CONTINUED, BOS, EOS = 0x01, 0x02, 0x04
OPUS_RATE = 48_000  # RFC 7845 §4: granule positions count 48 kHz samples
NO_GRANULE = -1  # a page on which no packet ends
MAX_SEGMENTS = 255
# The Ogg CRC is CRC-32 with polynomial 0x04C11DB7, not reflected, initial value 0, no final
# xor (RFC 3533 §6). zlib computes the reflected variant; reversing the bits of every input
# byte and of the result turns one into the other, at C speed.
_REVERSE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


class OggError(ValueError):
    """The bytes are not the Ogg Opus stream this module expects."""


def crc(data: bytes) -> int:
    reflected = zlib.crc32(data.translate(_REVERSE), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


@dataclass(frozen=True)
class Page:
    header_type: int
    granule: int
    serial: int
    sequence: int
    lacing: bytes  # the segment table
    body: bytes

    @property
    def size(self) -> int:
        return HEADER.size + len(self.lacing) + len(self.body)

    def serialize(self) -> bytes:
        """The page with a freshly computed CRC."""
        head = HEADER.pack(
            CAPTURE, 0, self.header_type, self.granule, self.serial, self.sequence, 0,
            len(self.lacing),
        )  # fmt: skip
        raw = head + self.lacing + self.body
        return raw[:22] + struct.pack("<I", crc(raw)) + raw[26:]

    def packets(self) -> list[bytes]:
        """Packet pieces on this page (the last may continue on the next page)."""
        out, start, size = [], 0, 0
        for value in self.lacing:
            size += value
            if value < MAX_SEGMENTS:
                out.append(self.body[start : start + size])
                start, size = start + size, 0
        if size:
            out.append(self.body[start : start + size])
        return out


def parse_pages(data: bytes, *, check_crc: bool = True) -> Iterator[tuple[int, Page]]:
    """(offset, page) for every page of DATA; a truncated last page ends the stream (a file
    cut by a crash), anything else malformed raises OggError."""
    offset = 0
    while offset + HEADER.size <= len(data):
        capture, version, kind, granule, serial, seq, checksum, count = HEADER.unpack_from(
            data, offset
        )
        if capture != CAPTURE or version != 0:
            raise OggError(f"no Ogg page at byte {offset}")
        lacing_end = offset + HEADER.size + count
        if lacing_end > len(data):
            return
        lacing = data[offset + HEADER.size : lacing_end]
        end = lacing_end + sum(lacing)
        if end > len(data):
            return
        page = Page(kind, granule, serial, seq, bytes(lacing), bytes(data[lacing_end:end]))
        if check_crc:
            raw = bytearray(data[offset:end])
            raw[22:26] = b"\0\0\0\0"
            if crc(bytes(raw)) != checksum:
                raise OggError(f"bad CRC in the page at byte {offset}")
        yield offset, page
        offset = end


@dataclass(frozen=True)
class OpusStream:
    """An Ogg Opus file split into its header pages and its audio pages."""

    headers: list[Page]
    audio: list[Page]
    pre_skip: int

    @property
    def duration(self) -> float:
        """Seconds of audio (RFC 7845 §4: last granule minus pre-skip)."""
        last = next((p.granule for p in reversed(self.audio) if p.granule >= 0), None)
        if last is None:
            return 0.0
        return max(0, last - self.pre_skip) / OPUS_RATE


def read_opus(data: bytes) -> OpusStream:
    pages = [page for _, page in parse_pages(data)]
    if not pages or not pages[0].body.startswith(b"OpusHead") or len(pages[0].body) < 19:
        raise OggError("not an Ogg Opus file: the first page has no OpusHead")
    pre_skip = struct.unpack_from("<H", pages[0].body, 10)[0]
    headers = [pages[0]]
    rest = pages[1:]
    # OpusTags may span several pages; its last page is the first to end a packet (§5.2)
    while rest:
        page = rest.pop(0)
        headers.append(page)
        if page.granule != NO_GRANULE:
            break
    if len(headers) < 2 or not headers[1].body.startswith(b"OpusTags"):
        raise OggError("not an Ogg Opus file: no OpusTags after OpusHead")
    return OpusStream(headers, rest, pre_skip)


def trim(data: bytes, start: float, end: float | None) -> tuple[bytes, float, float]:
    """DATA keeping only the audio pages that overlap [START, END) seconds.

    Returns the new file and the kept span's (start, end) in the old timeline, in seconds:
    cutting by page rounds the span outwards to page boundaries.
    """
    stream = read_opus(data)
    if start < 0 or (end is not None and end <= start):
        raise OggError("trim needs 0 ≤ start < end")
    pre = stream.pre_skip
    kept: list[Page] = []
    previous = pre  # granule at the end of the page before (audio starts at pre-skip)
    base: int | None = None
    for page in stream.audio:
        page_end = page.granule if page.granule != NO_GRANULE else previous
        ends_after_start = (page_end - pre) / OPUS_RATE > start
        starts_before_end = end is None or (previous - pre) / OPUS_RATE < end
        if base is None and ends_after_start and not page.header_type & CONTINUED:
            base = previous
        if base is not None:
            # past the end, but a packet still running on from the last kept page is
            # finished first: the trimmed stream ends on a whole packet
            if not starts_before_end and not _continues(kept[-1]):
                break
            kept.append(page)
        previous = page_end
    if base is None or not kept:
        raise OggError("nothing left to keep: the span holds no audio")
    last_granule = next((p.granule for p in reversed(kept) if p.granule != NO_GRANULE), base)
    out = [*stream.headers]
    for index, page in enumerate(kept):
        granule = page.granule if page.granule == NO_GRANULE else page.granule - base + pre
        flags = page.header_type & ~EOS
        if index == len(kept) - 1:
            flags |= EOS
        out.append(replace(page, granule=granule, header_type=flags))
    renumbered = (replace(p, sequence=i) for i, p in enumerate(out))
    return (
        b"".join(p.serialize() for p in renumbered),
        (base - pre) / OPUS_RATE,
        (last_granule - pre) / OPUS_RATE,
    )


def _continues(page: Page) -> bool:
    """Whether the page's last packet goes on in the next page (RFC 3533 §6: lacing 255)."""
    return bool(page.lacing) and page.lacing[-1] == MAX_SEGMENTS


def opus_head(pre_skip: int = 312, channels: int = 1, rate: int = OPUS_RATE) -> bytes:
    """The identification header (RFC 7845 §5.1), mapping family 0."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, rate, 0, 0)


def opus_tags(vendor: str = "salon") -> bytes:
    raw = vendor.encode()
    return b"OpusTags" + struct.pack("<I", len(raw)) + raw + struct.pack("<I", 0)


def write_opus(
    packets: Iterable[tuple[bytes, int]], serial: int = 1, pre_skip: int = 312,
    per_page: int = 50,
) -> bytes:  # fmt: skip
    """An Ogg Opus file from (packet, samples) pairs, PER_PAGE packets a page (tests and the
    seek bench; the recorder writes its own pages as the room goes)."""
    pages = [
        Page(BOS, 0, serial, 0, _lacing([len(opus_head(pre_skip))]), opus_head(pre_skip)),
        Page(0, 0, serial, 1, _lacing([len(opus_tags())]), opus_tags()),
    ]
    granule, batch = pre_skip, []
    for packet, samples in packets:
        batch.append(packet)
        granule += samples
        if len(batch) == per_page:
            pages.append(
                Page(0, granule, serial, len(pages), _lacing(map(len, batch)), b"".join(batch))
            )
            batch = []
    if batch:
        pages.append(
            Page(0, granule, serial, len(pages), _lacing(map(len, batch)), b"".join(batch))
        )
    pages[-1] = replace(pages[-1], header_type=pages[-1].header_type | EOS)
    return b"".join(p.serialize() for p in pages)


def _lacing(sizes: Iterable[int]) -> bytes:
    table = bytearray()
    for size in sizes:
        table.extend([MAX_SEGMENTS] * (size // MAX_SEGMENTS))
        table.append(size % MAX_SEGMENTS)
    if len(table) > MAX_SEGMENTS:
        raise OggError("too many segments for one page")
    return bytes(table)
