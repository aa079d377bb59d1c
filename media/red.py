"""RTP payload for redundant audio data (RED, RFC 2198): build, parse, and when to use it.

A RED payload carries the current (primary) encoded frame plus copies of the previous
one(s), so a receiver that lost packet n finds frame n again inside packet n+1. Layout
(RFC 2198 §3): one 4-byte header per redundant block — F=1 (1 bit), block payload type
(7 bits), timestamp offset (14 bits, how far *before* the packet's timestamp the block
starts), block length (10 bits) — then a 1-byte header for the primary (F=0, payload type),
then the blocks' data in the same order, primary last.

Pure: no I/O, no clock. ``RedStream`` keeps an encode-once stream's recent frames and builds
the RED payload once per tick per Opus payload type, shared by every listener that uses
RED; ``LossReports`` turns a listener's RTCP receiver reports into "send this one RED".
"""

from __future__ import annotations

import copy
import struct
from collections import deque
from dataclasses import dataclass

from aiortc import RTCRtpCodecParameters
from aiortc.sdp import SessionDescription

RED_MIME = "audio/red"
MAX_OFFSET = (1 << 14) - 1
MAX_BLOCK = (1 << 10) - 1
# Frames repeated in each RED packet, on every RED leg (a lossy listener's downlink, the
# bot's uplink): two, so a frame lost with the packet after it (5 % loss: ≈ 1 frame in 400,
# ≈ 5 in a 40 s session per leg) still arrives whole with the one after that, instead of
# being concealed. What is still missing then is three packets in a row (≈ 1 in 8 000).
# A listener's RED packet costs ≈ 3× a plain one (2× with one copy); only listeners that
# report loss get RED. The trunk carries two as well (media/recovery.py).
RED_DEPTH = 2
_BLOCK_HEADER = struct.Struct("!BHB")  # F|PT, offset(14)|length high bits, length low bits


class RedError(ValueError):
    """A RED payload that cannot be parsed or built."""


@dataclass(frozen=True)
class Block:
    """One encoded frame inside a RED payload; ``offset`` 0 is the primary."""

    payload_type: int
    offset: int  # RTP timestamp units before the packet's timestamp
    payload: bytes


def build(primary_type: int, primary: bytes, redundant: list[Block]) -> bytes:
    """A RED payload: REDUNDANT blocks (oldest first) then the primary frame."""
    if not 0 <= primary_type <= 127:
        raise RedError(f"payload type must be 0..127, got {primary_type}")
    headers = bytearray()
    for block in redundant:
        if not 0 < block.offset <= MAX_OFFSET:
            raise RedError(f"timestamp offset must be 1..{MAX_OFFSET}, got {block.offset}")
        if len(block.payload) > MAX_BLOCK:
            raise RedError(f"redundant block of {len(block.payload)} bytes exceeds {MAX_BLOCK}")
        word = (block.offset << 10) | len(block.payload)
        headers += bytes([0x80 | (block.payload_type & 0x7F)]) + word.to_bytes(3, "big")
    headers.append(primary_type & 0x7F)
    return bytes(headers) + b"".join(b.payload for b in redundant) + primary


def parse(payload: bytes) -> list[Block]:
    """The blocks of a RED payload, oldest first, the primary last (offset 0)."""
    pos = 0
    heads: list[tuple[int, int, int]] = []
    while True:
        if pos >= len(payload):
            raise RedError("red: header runs past the payload")
        first = payload[pos]
        if not first & 0x80:
            primary_type = first & 0x7F
            pos += 1
            break
        if pos + 4 > len(payload):
            raise RedError("red: truncated block header")
        word = int.from_bytes(payload[pos + 1 : pos + 4], "big")
        heads.append((first & 0x7F, word >> 10, word & 0x3FF))
        pos += 4
    blocks = []
    for payload_type, offset, length in heads:
        if pos + length > len(payload):
            raise RedError("red: block runs past the payload")
        blocks.append(Block(payload_type, offset, payload[pos : pos + length]))
        pos += length
    blocks.append(Block(primary_type, 0, payload[pos:]))
    return blocks


def sdp_red_codecs(sdp: str) -> list[RTCRtpCodecParameters]:
    """The ``audio/red`` codecs of an SDP's first audio section (aiortc drops RED itself)."""
    try:
        media = SessionDescription.parse(sdp).media
    except (ValueError, IndexError, KeyError, AssertionError):
        return []
    audio = [m for m in media if m.kind == "audio"][:1]
    return [
        copy.deepcopy(c)
        for m in audio
        for c in m.rtp.codecs
        if c.mimeType.lower() == RED_MIME and c.clockRate == 48000
    ]


def offer_red(sdp: str, red_type: int, opus_type: int) -> str:
    """SDP with ``audio/red`` (RED_TYPE, carrying OPUS_TYPE) added to its first audio
    section, after the codecs already there (aiortc cannot offer RED itself)."""
    newline = "\r\n" if "\r\n" in sdp else "\n"
    out: list[str] = []
    in_audio = done = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            if in_audio and not done:
                out += _red_lines(red_type, opus_type)
                done = True
            in_audio = line.startswith("m=audio") and not done
            if in_audio:
                line = f"{line} {red_type}"
        out.append(line)
    if in_audio and not done:
        out += _red_lines(red_type, opus_type)
    return newline.join(out) + newline


def _red_lines(red_type: int, opus_type: int) -> list[str]:
    return [f"a=rtpmap:{red_type} red/48000/2", f"a=fmtp:{red_type} {opus_type}/{opus_type}"]


class RedStream:
    """The last DEPTH frames of one encode-once stream, and its RED payload for this tick.

    ``push`` once per tick with the frame just encoded; ``payload(pt)`` builds the RED
    payload for Opus payload type PT the first time a listener asks in that tick and hands
    the same bytes to every later listener with that PT.
    """

    def __init__(self, depth: int = RED_DEPTH) -> None:
        self.depth = depth
        self._frames: deque[tuple[int, bytes]] = deque(maxlen=depth + 1)
        self._built: dict[int, bytes] = {}

    def push(self, payload: bytes, timestamp: int) -> None:
        self._frames.append((timestamp, payload))
        self._built = {}

    def payload(self, opus_type: int) -> bytes:
        built = self._built.get(opus_type)
        if built is None:
            built = self._built[opus_type] = self._build(opus_type)
        return built

    def _build(self, opus_type: int) -> bytes:
        if not self._frames:
            raise RedError("red: nothing pushed yet")
        now, primary = self._frames[-1]
        redundant = []
        for timestamp, payload in list(self._frames)[:-1]:
            offset = (now - timestamp) & 0xFFFFFFFF
            # an empty frame (DTX) or one too far back or too big is simply not repeated
            if payload and 0 < offset <= MAX_OFFSET and len(payload) <= MAX_BLOCK:
                redundant.append(Block(opus_type, offset, payload))
        return build(opus_type, primary, redundant)


class RedStreams:
    """The RED payloads of one room's encode-once streams: the mix ("") and each
    speaker's mix-minus, kept every tick so RED is ready the moment a listener needs it."""

    def __init__(self, depth: int = RED_DEPTH) -> None:
        self.depth = depth
        self._streams: dict[str, RedStream] = {}

    def keep(self, main: bytes, personal: dict[str, bytes], timestamp: int) -> None:
        for name, payload in [("", main), *personal.items()]:
            stream = self._streams.get(name)
            if stream is None:
                stream = self._streams[name] = RedStream(self.depth)
            stream.push(payload, timestamp)

    def forget(self, name: str) -> None:
        self._streams.pop(name, None)

    def payload(self, name: str, opus_type: int) -> bytes:
        """NAME's RED payload this tick: their mix-minus if they speak, else the mix."""
        return (self._streams.get(name) or self._streams[""]).payload(opus_type)


# A receiver report's fraction lost is 8-bit fixed point (RFC 3550 §6.4.1): 3/256 ≈ 1.2 %.
RED_ON_FRACTION = 3
RED_HOLD_REPORTS = 10  # reports without loss (≈ 10 s with aiortc/browsers) before RED stops


@dataclass
class LossReports:
    """What one listener's RTCP receiver reports say about its downlink."""

    last_fraction: int = 0  # 0..255, the last report's "fraction lost"
    clean_reports: int = RED_HOLD_REPORTS  # consecutive reports under the threshold
    reports: int = 0

    def add(self, fraction_lost: int) -> None:
        self.reports += 1
        self.last_fraction = fraction_lost
        if fraction_lost >= RED_ON_FRACTION:
            self.clean_reports = 0
        else:
            self.clean_reports += 1

    @property
    def lossy(self) -> bool:
        """Whether this listener lost packets recently (send it RED if it negotiated it)."""
        return self.clean_reports < RED_HOLD_REPORTS

    @property
    def percent(self) -> int:
        return round(self.last_fraction * 100 / 256)
