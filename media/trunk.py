"""The relay trunk's wire format: encrypted UDP datagrams between two nodes (pure, no I/O).

One trunk carries one room's audio between the room's origin node (A) and one remote node
(B). Keys come from an X25519 agreement over the authenticated control channel; every
datagram is sealed with XSalsa20-Poly1305 (libsodium ``crypto_box`` precomputed key, via
pynacl). Layout (all integers big-endian)::

    datagram  = marker:u8=0x08  trunk_id:u32  counter:u64  sealed(frame)   # 13 + 16 (MAC)
    frame     = kind:u8 stream:u16 seq:u16 timestamp:u32 level:u8 payload
    nonce     = direction:u8 · 15 zero bytes · counter:u64    # never reused per direction

``kind``: bit 0x80 set means the payload is an RFC 2198 RED payload (media/red.py, block
payload types 0): copies of the stream's previous frame(s), timestamp offsets counted back
from this frame's, then this frame — a relay recovers a lost datagram from the next one.
The low bits: MIX (A→B, the room's listener mix, stream 0), MINUS (A→B, the mix-minus for B's
speaker ``stream``), UPLINK (B→A, B's speaker ``stream``), KEEPALIVE (either way, empty).
Stream ids are assigned by B for its own users and announced on the control channel.
Replayed or reordered-too-far counters are dropped by a 64-entry sliding window.

The marker byte lets a trunk share the node's one media port with WebRTC (media/port.py):
RFC 7983 §7 (updated by RFC 9443) sorts datagrams by their first byte — 0-3 STUN, 16-19
ZRTP, 20-63 DTLS, 64-79 TURN channels, 64-127 and 192-255 QUIC, 128-191 RTP/RTCP — and
leaves 4-15 unassigned; 8 is one of those.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import nacl.bindings
import nacl.exceptions
from nacl.public import PrivateKey, PublicKey

from media import red

MARKER = 0x08
HEADER = struct.Struct("!BIQ")
FRAME = struct.Struct("!BHHIB")
MAX_PAYLOAD = 1200
WINDOW = 64
REDUNDANT = 0x80  # kind flag: the payload is RED (previous frames + this one)


class TrunkError(ValueError):
    """A datagram or key that cannot be used (malformed, forged, replayed)."""


class Kind(IntEnum):
    MIX = 0
    MINUS = 1
    UPLINK = 2
    KEEPALIVE = 3


class Direction(IntEnum):
    ORIGIN_TO_RELAY = 1  # A → B
    RELAY_TO_ORIGIN = 2  # B → A


@dataclass(frozen=True)
class Frame:
    kind: Kind
    stream: int
    seq: int
    timestamp: int
    level: int
    payload: bytes
    redundant: tuple[red.Block, ...] = ()  # earlier frames of the same stream, oldest first

    def serialize(self) -> bytes:
        kind: int = self.kind
        payload = self.payload
        if self.redundant:
            kind |= REDUNDANT
            try:
                payload = red.build(0, payload, list(self.redundant))
            except red.RedError as exc:
                raise TrunkError(f"frame: {exc}") from None
        if len(payload) > MAX_PAYLOAD:
            raise TrunkError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
        return FRAME.pack(kind, self.stream, self.seq, self.timestamp, self.level) + payload

    @classmethod
    def parse(cls, data: bytes) -> Frame:
        if len(data) < FRAME.size:
            raise TrunkError("frame: shorter than its header")
        kind, stream, seq, timestamp, level = FRAME.unpack_from(data)
        try:
            parsed_kind = Kind(kind & ~REDUNDANT)
        except ValueError:
            raise TrunkError(f"frame: unknown kind {kind}") from None
        payload = bytes(data[FRAME.size :])
        if not kind & REDUNDANT:
            return cls(parsed_kind, stream, seq, timestamp, level, payload)
        try:
            *earlier, primary = red.parse(payload)
        except red.RedError as exc:
            raise TrunkError(f"frame: {exc}") from None
        return cls(parsed_kind, stream, seq, timestamp, level, primary.payload, tuple(earlier))


def new_keypair() -> tuple[PrivateKey, bytes]:
    key = PrivateKey.generate()
    return key, bytes(key.public_key)


def parse_public_key(raw: bytes) -> PublicKey:
    if len(raw) != 32:
        raise TrunkError("trunk key: an X25519 public key is 32 bytes")
    return PublicKey(raw)


class Sealer:
    """Seals and opens datagrams of one trunk for one side."""

    def __init__(self, trunk_id: int, own: PrivateKey, peer: PublicKey, sending: Direction) -> None:
        self.trunk_id = trunk_id
        try:
            self._key = nacl.bindings.crypto_box_beforenm(bytes(peer), bytes(own))
        except nacl.exceptions.RuntimeError:
            # a low-order point: no shared secret can come of it
            raise TrunkError("trunk key: unusable X25519 public key") from None
        self._send_dir = sending
        self._recv_dir = (
            Direction.RELAY_TO_ORIGIN
            if sending is Direction.ORIGIN_TO_RELAY
            else Direction.ORIGIN_TO_RELAY
        )
        self._counter = 0
        self._highest = -1
        self._seen = 0  # bit i set: counter (highest - i) was accepted

    def _nonce(self, direction: Direction, counter: int) -> bytes:
        return bytes([direction]) + bytes(15) + counter.to_bytes(8, "big")

    def seal(self, frame: Frame) -> bytes:
        self._counter += 1
        counter = self._counter
        sealed = nacl.bindings.crypto_box_easy_afternm(
            frame.serialize(), self._nonce(self._send_dir, counter), self._key
        )
        return HEADER.pack(MARKER, self.trunk_id, counter) + sealed

    def open(self, datagram: bytes) -> Frame:
        if len(datagram) < HEADER.size + 16:
            raise TrunkError("datagram: too short")
        marker, trunk_id, counter = HEADER.unpack_from(datagram)
        if marker != MARKER:
            raise TrunkError("datagram: not a trunk datagram")
        if trunk_id != self.trunk_id:
            raise TrunkError("datagram: wrong trunk id")
        if not self._fresh(counter):
            raise TrunkError("datagram: replayed or too old")
        try:
            plain = nacl.bindings.crypto_box_open_easy_afternm(
                datagram[HEADER.size :], self._nonce(self._recv_dir, counter), self._key
            )
        except nacl.exceptions.CryptoError:
            raise TrunkError("datagram: authentication failed") from None
        self._accept(counter)
        return Frame.parse(plain)

    def _fresh(self, counter: int) -> bool:
        if counter > self._highest:
            return True
        age = self._highest - counter
        return age < WINDOW and not (self._seen >> age) & 1

    def _accept(self, counter: int) -> None:
        if counter > self._highest:
            shift = counter - self._highest
            self._seen = ((self._seen << shift) | 1) & ((1 << WINDOW) - 1)
            self._highest = counter
        else:
            self._seen |= 1 << (self._highest - counter)
