"""What a node and its media workers say to each other (pure: no I/O).

Every message travels in a signed ``Envelope``: the sender's id, the recipient's id, a
sequence number that only grows per sender, a timestamp, the body and an HMAC-SHA256 of
all of it under the node's ``worker_secret``. A receiver (``Verifier``) refuses a wrong
MAC, a message for someone else, a timestamp outside ``MAX_SKEW_SECONDS`` and any sequence
number not above the last one it accepted from that sender — so a client of the same Redis
without the secret cannot inject a command, and a captured one cannot be played again.

Bodies are typed: ``Command`` (node → worker) and ``Event`` (worker → node), each a kind
and its fields, checked against one table (``COMMANDS``, ``EVENTS``) with exact messages.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

MAX_SKEW_SECONDS = 30.0
MAX_MESSAGE_BYTES = 256_000  # an SDP is at most 64 000 characters (media/signaling.py)
MAX_SENDERS = 4096  # senders a Verifier remembers (their last sequence numbers)
NODE = "node"  # the node's id as sender and recipient


class ProtocolError(ValueError):
    """A message that must not be acted on (malformed, forged, replayed, misaddressed)."""


def _str(limit: int) -> tuple[type, int]:
    return (str, limit)


_ID = _str(200)
_KEY = _str(64)  # hex of a 32-byte X25519 key
# kind → {field: (type, limit)}; every field is required. Limits: characters or max value.
COMMANDS: dict[str, dict[str, tuple[type, int]]] = {
    "open_mixer": {"room": _ID},
    "open_relay": {
        "room": _ID,
        "trunk": (int, 0xFFFFFFFF),
        "own_key": _KEY,
        "peer_key": _KEY,
        "origin_host": _str(100),
        "origin_port": (int, 65535),
    },
    "open_trunk": {"room": _ID, "trunk": (int, 0xFFFFFFFF), "own_key": _KEY, "peer_key": _KEY},
    "close_trunk": {"room": _ID, "trunk": (int, 0xFFFFFFFF)},
    "trunk_stream": {
        "room": _ID,
        "trunk": (int, 0xFFFFFFFF),
        "stream": (int, 0xFFFF),
        "participant": _ID,
    },
    "relay_stream": {"room": _ID, "participant": _ID, "stream": (int, 0xFFFF)},
    "signal": {"room": _ID, "participant": _ID, "message": (dict, 0)},
    "set_can_speak": {"room": _ID, "participant": _ID, "allowed": (bool, 0)},
    "remove": {"room": _ID, "participant": _ID},
    "close_room": {"room": _ID},
}
EVENTS: dict[str, dict[str, tuple[type, int]]] = {
    "hello": {"advertise": _str(100), "media_port": (int, 65535), "pid": (int, 1 << 31)},
    "result": {"command": (int, 1 << 62), "error": _str(1000)},
    "to_participant": {"room": _ID, "participant": _ID, "message": (dict, 0)},
    "levels": {"room": _ID, "levels": (dict, 0)},
    "heartbeat": {"load": (dict, 0)},
}


def _check(
    kind: str, fields: dict[str, Any], table: dict[str, dict[str, tuple[type, int]]]
) -> None:
    schema = table.get(kind)
    if schema is None:
        raise ProtocolError(f"unknown kind {kind[:40]!r}")
    for name, (kind_type, limit) in schema.items():
        if name not in fields:
            raise ProtocolError(f"{kind}: '{name}' is required")
        value = fields[name]
        if kind_type is int:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
                raise ProtocolError(f"{kind}: '{name}' must be an integer 0-{limit}")
        elif not isinstance(value, kind_type):
            raise ProtocolError(f"{kind}: '{name}' must be a {kind_type.__name__}")
        elif isinstance(value, str) and len(value) > limit:
            raise ProtocolError(f"{kind}: '{name}' is longer than {limit} characters")
    extra = sorted(set(fields) - set(schema))
    if extra:
        raise ProtocolError(f"{kind}: unknown field '{extra[0][:40]}'")


@dataclass(frozen=True)
class Command:
    """Node → worker: one thing to do; ``id`` comes back in the worker's ``result``."""

    kind: str
    id: int
    fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.kind, self.fields, COMMANDS)

    @classmethod
    def parse(cls, data: object) -> Command:
        if not isinstance(data, dict):
            raise ProtocolError("command: must be an object")
        kind, ident, fields = data.get("command"), data.get("id"), data.get("fields")
        if not isinstance(kind, str) or not isinstance(fields, dict):
            raise ProtocolError("command: 'command' (string) and 'fields' (object) are required")
        if not isinstance(ident, int) or isinstance(ident, bool) or ident < 0:
            raise ProtocolError("command: 'id' must be a non-negative integer")
        return cls(kind, ident, fields)

    def serialize(self) -> dict[str, Any]:
        return {"command": self.kind, "id": self.id, "fields": self.fields}


@dataclass(frozen=True)
class Event:
    """Worker → node: an answer for a participant, levels, a result, a heartbeat."""

    kind: str
    fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.kind, self.fields, EVENTS)

    @classmethod
    def parse(cls, data: object) -> Event:
        if not isinstance(data, dict):
            raise ProtocolError("event: must be an object")
        kind, fields = data.get("event"), data.get("fields")
        if not isinstance(kind, str) or not isinstance(fields, dict):
            raise ProtocolError("event: 'event' (string) and 'fields' (object) are required")
        return cls(kind, fields)

    def serialize(self) -> dict[str, Any]:
        return {"event": self.kind, "fields": self.fields}


def _mac(secret: bytes, unsigned: dict[str, Any]) -> str:
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(secret, canonical, hashlib.sha256).hexdigest()


class Signer:
    """Seals one sender's messages: growing sequence numbers, timestamps, the HMAC."""

    def __init__(self, secret: bytes, sender: str) -> None:
        if len(secret) < 16:
            raise ProtocolError("worker secret: at least 16 bytes")
        self._secret = secret
        self.sender = sender
        # starts at the clock so that a restarted sender with the same id is still ahead
        self._seq = time.time_ns() // 1000

    def seal(self, recipient: str, body: dict[str, Any]) -> bytes:
        self._seq += 1
        unsigned = {
            "from": self.sender,
            "to": recipient,
            "seq": self._seq,
            "ts": round(time.time(), 3),
            "body": body,
        }
        return json.dumps({**unsigned, "mac": _mac(self._secret, unsigned)}).encode()


@dataclass(frozen=True)
class Opened:
    sender: str
    body: dict[str, Any]


class Verifier:
    """Opens messages for RECIPIENT; refuses forged, misaddressed, stale and replayed ones."""

    def __init__(self, secret: bytes, recipient: str) -> None:
        self._secret = secret
        self.recipient = recipient
        self._last: OrderedDict[str, int] = OrderedDict()  # sender → highest seq accepted
        self.refused = 0

    def open(self, raw: bytes, now: float | None = None) -> Opened:
        try:
            return self._open(raw, time.time() if now is None else now)
        except ProtocolError:
            self.refused += 1
            raise

    def _open(self, raw: bytes, now: float) -> Opened:
        if len(raw) > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"message: longer than {MAX_MESSAGE_BYTES} bytes")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ProtocolError("message: not JSON") from None
        if not isinstance(data, dict):
            raise ProtocolError("message: must be an object")
        mac = data.pop("mac", None)
        sender, recipient, seq, ts = (data.get(k) for k in ("from", "to", "seq", "ts"))
        if not isinstance(mac, str) or set(data) != {"from", "to", "seq", "ts", "body"}:
            raise ProtocolError("message: fields from, to, seq, ts, body and mac are required")
        if not hmac.compare_digest(mac, _mac(self._secret, data)):
            raise ProtocolError("message: bad MAC (not signed with this node's worker secret)")
        if not isinstance(sender, str) or not isinstance(data["body"], dict):
            raise ProtocolError("message: malformed sender or body")
        if recipient != self.recipient:
            raise ProtocolError("message: addressed to someone else")
        if not isinstance(ts, int | float) or abs(now - ts) > MAX_SKEW_SECONDS:
            raise ProtocolError("message: timestamp too far from now")
        if not isinstance(seq, int) or seq <= self._last.get(sender, -1):
            raise ProtocolError("message: replayed (sequence number not above the last)")
        self._last[sender] = seq
        self._last.move_to_end(sender)
        while len(self._last) > MAX_SENDERS:
            self._last.popitem(last=False)
        return Opened(sender, data["body"])
