"""Signalling wire types exchanged between a participant's client and its node.

Pure protocol code: parse a JSON-decoded dict into a typed message, serialize it back.
No I/O. Every rejection raises :class:`SignalError` with an exact, stable message that
the node can forward to the client as an error event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

MAX_SDP_CHARS = 64_000
MAX_CANDIDATE_CHARS = 1_000


class SignalError(ValueError):
    """Bad signalling input from a client; the message is safe to show to that client."""


def _require_str(data: dict[str, Any], key: str, kind: str, max_chars: int) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise SignalError(f"{kind}: '{key}' must be a string")
    if len(value) > max_chars:
        raise SignalError(f"{kind}: '{key}' is longer than {max_chars} characters")
    return value


def _check_sdp(kind: str, sdp: str) -> str:
    """Cheap structural check so obviously broken SDP never reaches aiortc."""
    if not sdp.startswith("v=0"):
        raise SignalError(f"{kind}: malformed SDP (must start with 'v=0')")
    if "\nm=audio " not in sdp.replace("\r\n", "\n"):
        raise SignalError(f"{kind}: malformed SDP (no audio m-line)")
    return sdp


def _check_candidate(candidate: str) -> None:
    """RFC 8839 shape: foundation component transport priority address port typ type ..."""
    line = candidate.removeprefix("a=")
    if not line.startswith("candidate:"):
        raise SignalError("ice: 'candidate' must start with 'candidate:'")
    bits = line[len("candidate:") :].split()
    if (
        len(bits) < 8
        or not bits[1].isdigit()
        or not bits[3].isdigit()
        or not bits[5].isdigit()
        or bits[6] != "typ"
    ):
        raise SignalError("ice: malformed candidate")


@dataclass(frozen=True)
class Offer:
    """Client → node: a full SDP offer (first one creates the session, later ones renegotiate)."""

    TYPE: ClassVar[str] = "offer"
    sdp: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Offer:
        return cls(sdp=_check_sdp("offer", _require_str(data, "sdp", "offer", MAX_SDP_CHARS)))

    def serialize(self) -> dict[str, Any]:
        return {"type": self.TYPE, "sdp": self.sdp}


@dataclass(frozen=True)
class Answer:
    """Node → client: the SDP answer to the client's latest offer."""

    TYPE: ClassVar[str] = "answer"
    sdp: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Answer:
        return cls(sdp=_check_sdp("answer", _require_str(data, "sdp", "answer", MAX_SDP_CHARS)))

    def serialize(self) -> dict[str, Any]:
        return {"type": self.TYPE, "sdp": self.sdp}


@dataclass(frozen=True)
class Ice:
    """Client → node: a trickled ICE candidate ("" candidate = end of candidates)."""

    TYPE: ClassVar[str] = "ice"
    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Ice:
        candidate = _require_str(data, "candidate", "ice", MAX_CANDIDATE_CHARS)
        if candidate:
            _check_candidate(candidate)
        mid = data.get("sdpMid")
        if mid is not None and not isinstance(mid, str):
            raise SignalError("ice: 'sdpMid' must be a string or null")
        index = data.get("sdpMLineIndex")
        if index is not None and (
            not isinstance(index, int) or isinstance(index, bool) or index < 0
        ):
            raise SignalError("ice: 'sdpMLineIndex' must be a non-negative integer or null")
        if mid is None and index is None:
            raise SignalError("ice: one of 'sdpMid' or 'sdpMLineIndex' is required")
        return cls(candidate=candidate, sdp_mid=mid, sdp_mline_index=index)

    def serialize(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "candidate": self.candidate,
            "sdpMid": self.sdp_mid,
            "sdpMLineIndex": self.sdp_mline_index,
        }


@dataclass(frozen=True)
class Renegotiate:
    """Node → client: please send a fresh offer (your permission to speak changed)."""

    TYPE: ClassVar[str] = "renegotiate"
    can_speak: bool | None = None  # hint for the client: offer sendrecv (True) or recvonly

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Renegotiate:
        value = data.get("canSpeak")
        if value is not None and not isinstance(value, bool):
            raise SignalError("renegotiate: 'canSpeak' must be a boolean")
        return cls(can_speak=value)

    def serialize(self) -> dict[str, Any]:
        if self.can_speak is None:
            return {"type": self.TYPE}
        return {"type": self.TYPE, "canSpeak": self.can_speak}


@dataclass(frozen=True)
class Reconnect:
    """Node → client: start a new peer connection (your media moved to another worker).

    Close the old connection once the new one carries audio (make-before-break)."""

    TYPE: ClassVar[str] = "reconnect"

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Reconnect:
        return cls()

    def serialize(self) -> dict[str, Any]:
        return {"type": self.TYPE}


Message = Offer | Answer | Ice | Renegotiate | Reconnect
_CLIENT_TYPES: dict[str, type[Offer] | type[Ice]] = {"offer": Offer, "ice": Ice}
_NODE_TYPES: dict[str, type[Answer] | type[Renegotiate] | type[Reconnect]] = {
    "answer": Answer,
    "renegotiate": Renegotiate,
    "reconnect": Reconnect,
}


def _message_type(data: object) -> str:
    if not isinstance(data, dict):
        raise SignalError("signal message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise SignalError("signal message: 'type' must be a string")
    return kind


def parse_client_message(data: object) -> Offer | Ice:
    """Parse a client → node message (what RoomMedia.signal accepts)."""
    kind = _message_type(data)
    parser = _CLIENT_TYPES.get(kind)
    if parser is None:
        raise SignalError(f"unknown signal type '{kind[:40]}' (expected 'offer' or 'ice')")
    assert isinstance(data, dict)
    return parser.parse(data)


def parse_node_message(data: object) -> Answer | Renegotiate | Reconnect:
    """Parse a node → client message (what a client such as BotPeer accepts)."""
    kind = _message_type(data)
    parser = _NODE_TYPES.get(kind)
    if parser is None:
        raise SignalError(
            f"unknown signal type '{kind[:40]}' (expected 'answer', 'renegotiate' or 'reconnect')"
        )
    assert isinstance(data, dict)
    return parser.parse(data)
