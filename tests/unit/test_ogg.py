"""media/ogg.py: RFC 3533 pages and RFC 7845 Ogg Opus, checked against vectors and PyAV."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from media.codec import OpusEncoder
from media.ogg import (
    BOS,
    EOS,
    SILENT_FRAME,
    OggOpusStream,
    crc32,
    lacing,
    opus_head,
    page,
    parse_pages,
    valid_length,
    valid_pages,
)
from tests.support.audio import RATE, decode_ogg, dominant_by_window

pytestmark = pytest.mark.timeout(60)


def test_crc_vectors() -> None:
    # CRC-32/MPEG-2 without the final inversion and init 0 (the Ogg CRC): "123456789" → 0x89A1897F
    assert crc32(b"123456789") == 0x89A1897F
    assert crc32(b"") == 0


def test_lacing_values() -> None:
    assert lacing(0) == b"\x00"
    assert lacing(254) == b"\xfe"
    assert lacing(255) == b"\xff\x00"
    assert lacing(600) == b"\xff\xff\x5a"


def test_page_layout() -> None:
    raw = page([b"abc", b"x" * 255], granule=960, serial=0x01020304, sequence=7, flags=BOS)
    assert raw[:4] == b"OggS" and raw[4] == 0 and raw[5] == BOS
    assert struct.unpack_from("<qII", raw, 6) == (960, 0x01020304, 7)
    assert raw[26] == 3 and raw[27:30] == b"\x03\xff\x00"
    (crc,) = struct.unpack_from("<I", raw, 22)
    assert crc == crc32(raw[:22] + b"\0\0\0\0" + raw[26:])
    (parsed,) = list(parse_pages(raw))
    assert parsed.packets == (b"abc", b"x" * 255) and parsed.granule == 960


def test_opus_head_fields() -> None:
    head = opus_head(312)
    assert head[:8] == b"OpusHead" and len(head) == 19
    assert struct.unpack("<BBHIhB", head[8:]) == (1, 1, 312, 48000, 0, 0)


def test_torn_page_is_dropped() -> None:
    stream = OggOpusStream(serial=5, pre_skip=312)
    data = stream.headers()
    for _ in range(10):
        stream.add(SILENT_FRAME)
    data += stream.pages()
    whole = len(data)
    stream.add(SILENT_FRAME)
    data += stream.pages()[:-3]  # a crash in the middle of a write
    assert valid_length(data) == whole
    corrupt = bytearray(data[:whole])
    corrupt[-1] ^= 0xFF  # a bad CRC ends the valid part at the page before
    assert [p.sequence for p in valid_pages(bytes(corrupt))] == [0, 1]


def test_resume_continues_sequence_and_granule() -> None:
    stream = OggOpusStream(serial=9, pre_skip=312)
    data = stream.headers()
    for _ in range(75):
        data += stream.add(SILENT_FRAME)
    data += stream.pages()
    again = OggOpusStream.resume(data, pre_skip=312)
    assert again.serial == 9 and again.sequence == stream.sequence
    assert again.granule == stream.granule == 312 + 75 * 960


def _encode_tones(tmp_path: Path, seconds_each: float = 1.0) -> tuple[Path, OggOpusStream]:
    encoder = OpusEncoder(32000, fec=False)
    stream = OggOpusStream(serial=1234, pre_skip=encoder.lookahead)
    out = stream.headers()
    t = np.arange(int(RATE * seconds_each)) / RATE
    pcm = np.concatenate(
        [0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 880 * t)]
    ).astype(np.float32)
    for start in range(0, len(pcm), 960):
        out += stream.add(encoder.encode(pcm[start : start + 960]))
        if start == 960 * 25:
            for _ in range(25):  # half a second of gap as the recorder fills it
                out += stream.add(SILENT_FRAME)
    out += stream.finish()
    path = tmp_path / "tones.ogg"
    path.write_bytes(out)
    return path, stream


def test_pyav_decodes_round_trip(tmp_path: Path) -> None:
    path, stream = _encode_tones(tmp_path)
    pcm = decode_ogg(path)
    assert abs(len(pcm) / RATE - stream.duration) < 0.03
    pages = list(parse_pages(path.read_bytes()))
    assert pages[0].flags & BOS and pages[-1].flags & EOS
    assert pages[-1].granule == 312 + stream.packets * 960
    windows = dominant_by_window(pcm, 0.1)
    # 0..0.5 s 440 Hz, 0.5..1.0 s silence, 1.0..1.5 s 440 Hz, 1.5..2.5 s 880 Hz
    assert all(abs(f - 440) < 20 for f in windows[1:4])
    gap = pcm[int(0.6 * RATE) : int(0.9 * RATE)]
    assert np.sqrt(np.mean(gap**2)) < 50
    assert all(abs(f - 880) < 20 for f in windows[16:24])
