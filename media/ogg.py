"""Ogg pages (RFC 3533) and the Ogg Opus mapping (RFC 7845). Pure: bytes in, bytes out.

Page layout (RFC 3533 §6): ``OggS``, version 0, header type (0x01 continued packet, 0x02
beginning of stream, 0x04 end of stream), granule position (int64 LE), bitstream serial
(uint32 LE), page sequence number (uint32 LE), CRC-32 (uint32 LE), number of segments, the
segment table (lacing values: a packet is cut into 255-byte segments, the last one < 255),
then the data. The CRC is the non-reflected CRC-32 with polynomial 0x04C11DB7, initial
value 0 and no final XOR, over the whole page with the CRC field set to zero.

Ogg Opus (RFC 7845 §3-5): the first page (BOS) carries only the ``OpusHead`` identification
header, the second page only ``OpusTags``; audio pages follow. A page's granule position is
the number of 48 kHz samples (including the pre-skip) after the last packet that ends on it.

Writing: ``OggOpusStream`` builds a stream packet by packet as the recorder goes (it never
splits a packet across pages: a voice packet is at most 1275 bytes, six lacing values);
``write_opus`` builds a whole file at once (tests, benches). Reading: ``parse_pages`` (strict),
``valid_pages``/``valid_length`` (a torn file after a crash), ``read_opus``. Trimming:
``trim`` keeps the header pages, then only the audio pages inside the kept span, with granule
positions rebased so that playback starts at zero, page sequence numbers renumbered without
gaps, the last page flagged end-of-stream and every CRC recomputed; nothing is re-encoded.
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
# byte and of the result turns one into the other, at C speed (the only table: 256 bytes).
_REVERSE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


class OggError(ValueError):
    """The bytes are not the Ogg Opus stream this module expects."""


def crc32(data: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, MSB first, init 0, no final XOR)."""
    reflected = zlib.crc32(data.translate(_REVERSE), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def lacing(length: int) -> bytes:
    """The segment table entries of one whole packet of LENGTH bytes."""
    return bytes([MAX_SEGMENTS] * (length // MAX_SEGMENTS) + [length % MAX_SEGMENTS])


def _lacing(sizes: Iterable[int]) -> bytes:
    table = b"".join(lacing(size) for size in sizes)
    if len(table) > MAX_SEGMENTS:
        raise OggError("too many segments for one page")
    return table


@dataclass(frozen=True)
class Page:
    flags: int  # the header type: CONTINUED | BOS | EOS
    granule: int
    serial: int
    sequence: int
    lacing: bytes  # the segment table
    body: bytes

    @property
    def size(self) -> int:
        return HEADER.size + len(self.lacing) + len(self.body)

    @property
    def packets(self) -> tuple[bytes, ...]:
        """The packets (or a continued packet's tail) that end on this page; a last packet
        that goes on in the next page is left out."""
        out, start, size = [], 0, 0
        for value in self.lacing:
            size += value
            if value < MAX_SEGMENTS:
                out.append(self.body[start : start + size])
                start, size = start + size, 0
        return tuple(out)

    def serialize(self) -> bytes:
        """The page with a freshly computed CRC."""
        head = HEADER.pack(
            CAPTURE, 0, self.flags, self.granule, self.serial, self.sequence, 0,
            len(self.lacing),
        )  # fmt: skip
        raw = head + self.lacing + self.body
        return raw[:22] + struct.pack("<I", crc32(raw)) + raw[26:]


def page(packets: list[bytes], granule: int, serial: int, sequence: int, flags: int = 0) -> bytes:
    """One page holding PACKETS whole (at most 255 lacing values in all)."""
    return Page(
        flags, granule, serial, sequence, _lacing(map(len, packets)), b"".join(packets)
    ).serialize()


def _pages(data: bytes, strict: bool) -> Iterator[Page]:
    offset = 0
    while offset + HEADER.size <= len(data):
        capture, version, flags, granule, serial, seq, checksum, count = HEADER.unpack_from(
            data, offset
        )
        if capture != CAPTURE or version != 0:
            if strict:
                raise OggError(f"no Ogg page at byte {offset}")
            return
        lacing_end = offset + HEADER.size + count
        if lacing_end > len(data):
            return
        table = bytes(data[offset + HEADER.size : lacing_end])
        end = lacing_end + sum(table)
        if end > len(data):
            return
        raw = bytes(data[offset:end])
        if crc32(raw[:22] + b"\0\0\0\0" + raw[26:]) != checksum:
            if strict:
                raise OggError(f"bad CRC in the page at byte {offset}")
            return
        yield Page(flags, granule, serial, seq, table, raw[lacing_end - offset :])
        offset = end


def parse_pages(data: bytes) -> Iterator[Page]:
    """Every page of DATA; a truncated last page ends the stream (a file cut by a crash),
    anything else malformed (no capture pattern, a bad CRC) raises OggError."""
    return _pages(data, strict=True)


def valid_pages(data: bytes) -> Iterator[Page]:
    """Every whole, CRC-valid page from the start of DATA; stops at a torn or bad page."""
    return _pages(data, strict=False)


def valid_length(data: bytes) -> int:
    """Bytes of DATA made of whole, valid pages (where to truncate a torn file)."""
    return sum(item.size for item in valid_pages(data))


def opus_head(pre_skip: int = 312, channels: int = 1, input_rate: int = OPUS_RATE) -> bytes:
    """The identification header (RFC 7845 §5.1), mapping family 0, output gain 0."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, input_rate, 0, 0)


def opus_tags(vendor: str = "salon", comments: list[str] | None = None) -> bytes:
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
        for index, item in enumerate(valid_pages(data)):
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
    pages = list(parse_pages(data))
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
        if base is None and ends_after_start and not page.flags & CONTINUED:
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
        flags = page.flags & ~EOS
        if index == len(kept) - 1:
            flags |= EOS
        out.append(replace(page, granule=granule, flags=flags))
    renumbered = (replace(p, sequence=i) for i, p in enumerate(out))
    return (
        b"".join(p.serialize() for p in renumbered),
        (base - pre) / OPUS_RATE,
        (last_granule - pre) / OPUS_RATE,
    )


def _continues(page: Page) -> bool:
    """Whether the page's last packet goes on in the next page (RFC 3533 §6: lacing 255)."""
    return bool(page.lacing) and page.lacing[-1] == MAX_SEGMENTS


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
    pages[-1] = replace(pages[-1], flags=pages[-1].flags | EOS)
    return b"".join(p.serialize() for p in pages)
