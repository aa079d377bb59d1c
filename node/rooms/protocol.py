"""The room protocol, defined once: what clients and relay trunks say about a room.

Three conversations carry the same room messages (docs/api.md "Room WebSocket",
docs/federation.md §10.2):
- a client's room socket on its own node, for a local room or a remote one served through
  the node (``ClientMessage`` in, ``reply``/``error``/``pong``/``state``/events out);
- a relay trunk's control channel, from the user's node B to the room's node A
  (``TrunkRequest``: ``hello``, ``users``, ``command``, ``get_state``, ``chat``, ``react``,
  ``delete_message``);
- the same channel from A back to B (``TrunkAnswer``: ``media``, ``seats``, ``reply``,
  ``error``, ``state``, and the room's events and ``speaking`` levels, passed through).

Every frame is read by ``decode_frame`` (text only, a size cap, a nesting cap, a JSON
object), so all three refuse the same bad input the same way. Parsers raise
``ProtocolError`` with the message the peer is told.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.errors import DomainError
from node.jsonbody import MAX_JSON_DEPTH, JsonError, NotJsonObject, loads_object

MAX_FRAME = 256 * 1024  # bytes of one text frame
MAX_DEPTH = MAX_JSON_DEPTH  # JSON nesting of one message
MAX_ID = 2**53  # message ids are JSON-safe integers or short strings
MAX_ID_TEXT = 64


class ProtocolError(DomainError):
    """A message that is not part of the room protocol (answered with ``error``)."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid", message)


MessageId = int | str | None


def decode_frame(text: str) -> dict[str, Any]:
    """One text frame as a JSON object, refusing oversized and over-nested input before
    ``json.loads`` recurses into it (node/jsonbody.py)."""
    if len(text) > MAX_FRAME:
        raise ProtocolError(f"messages are at most {MAX_FRAME} bytes")
    try:
        return loads_object(text, MAX_DEPTH)
    except NotJsonObject:
        raise ProtocolError("messages must be JSON objects") from None
    except JsonError as exc:
        raise ProtocolError(str(exc)) from None


def message_id(data: dict[str, Any]) -> MessageId:
    """The client's ``id``, echoed in the answer: a small integer or a short string."""
    value = data.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ProtocolError("id must be an integer or a string")
    if isinstance(value, int) and not -MAX_ID <= value <= MAX_ID:
        raise ProtocolError("id is out of range")
    if isinstance(value, str) and len(value) > MAX_ID_TEXT:
        raise ProtocolError(f"id strings are at most {MAX_ID_TEXT} characters")
    return value


def _optional_handle(data: dict[str, Any]) -> str | None:
    target = data.get("user")
    if target is not None and not isinstance(target, str):
        raise ProtocolError("user must be a username string")
    return target


def _action(data: dict[str, Any]) -> str:
    action = data.get("action")
    if not isinstance(action, str):
        raise ProtocolError("command needs an 'action' string")
    return action


# ---- a client's room socket ------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    id: MessageId
    action: str
    user: str | None = None

    def serialize(self) -> dict[str, Any]:
        return {"type": "command", "id": self.id, "action": self.action, "user": self.user}


@dataclass(frozen=True)
class Signal:
    """WebRTC signalling, passed to the media engine (media/signaling.py parses it)."""

    id: MessageId
    signal: dict[str, Any]

    def serialize(self) -> dict[str, Any]:
        return {"type": "signal", "id": self.id, "signal": self.signal}


@dataclass(frozen=True)
class Ping:
    id: MessageId

    def serialize(self) -> dict[str, Any]:
        return {"type": "ping", "id": self.id}


@dataclass(frozen=True)
class Chat:
    """A chat message to the room (node/rooms/chat.py checks the text)."""

    id: MessageId
    text: str

    def serialize(self) -> dict[str, Any]:
        return {"type": "chat", "id": self.id, "text": self.text}


@dataclass(frozen=True)
class React:
    id: MessageId
    reaction: str

    def serialize(self) -> dict[str, Any]:
        return {"type": "react", "id": self.id, "reaction": self.reaction}


@dataclass(frozen=True)
class DeleteMessage:
    """Delete one chat message (its author, or a moderator)."""

    id: MessageId
    message: str

    def serialize(self) -> dict[str, Any]:
        return {"type": "delete_message", "id": self.id, "message": self.message}


ClientMessage = Command | Signal | Ping | Chat | React | DeleteMessage
ChatRequest = Chat | React | DeleteMessage
MAX_CHAT_FRAME_TEXT = 4096  # characters a chat's text may have on the wire (rules: chat.py)


def _chat_request(kind: object, msg_id: MessageId, data: dict[str, Any]) -> ChatRequest | None:
    """The chat messages, shared by the client socket and the trunk (None: not one)."""
    if kind == "chat":
        text = data.get("text")
        if not isinstance(text, str):
            raise ProtocolError("chat needs a 'text' string")
        if len(text) > MAX_CHAT_FRAME_TEXT:
            raise ProtocolError(f"chat text is at most {MAX_CHAT_FRAME_TEXT} characters")
        return Chat(msg_id, text)
    if kind == "react":
        reaction = data.get("reaction")
        if not isinstance(reaction, str) or len(reaction) > MAX_ID_TEXT:
            raise ProtocolError("react needs a 'reaction' name")
        return React(msg_id, reaction)
    if kind == "delete_message":
        target = data.get("message")
        if not isinstance(target, str) or not 0 < len(target) <= MAX_ID_TEXT:
            raise ProtocolError("delete_message needs a 'message' id string")
        return DeleteMessage(msg_id, target)
    return None


def parse_client(data: dict[str, Any]) -> ClientMessage:
    kind = data.get("type")
    msg_id = message_id(data)
    chat = _chat_request(kind, msg_id, data)
    if chat is not None:
        return chat
    if kind == "command":
        return Command(msg_id, _action(data), _optional_handle(data))
    if kind == "signal":
        payload = data.get("signal")
        if not isinstance(payload, dict):
            raise ProtocolError("signal messages need a 'signal' object")
        return Signal(msg_id, payload)
    if kind == "ping":
        return Ping(msg_id)
    raise ProtocolError(f"unknown message type {_shown(kind)}")


def reply(msg_id: MessageId) -> dict[str, Any]:
    return {"type": "reply", "id": msg_id, "ok": True}


def error(msg_id: MessageId, message: str, status: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "id": msg_id, "error": message}
    if status is not None:
        out["status"] = status  # trunks: the status the same refusal gets in the API
    return out


def pong(msg_id: MessageId) -> dict[str, Any]:
    return {"type": "pong", "id": msg_id}


def state(room: dict[str, Any], msg_id: MessageId = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "state", "room": room}
    if msg_id is not None:
        out["id"] = msg_id
    return out


# ---- the trunk control channel, B -> A ---------------------------------------------------


@dataclass(frozen=True)
class Hello:
    key: str  # B's X25519 public key, base64

    def serialize(self) -> dict[str, Any]:
        return {"type": "hello", "key": self.key}


@dataclass(frozen=True)
class Users:
    """B's users in the room (actor URIs) and the trunk stream that carries each."""

    streams: dict[str, int]

    def serialize(self) -> dict[str, Any]:
        return {"type": "users", "streams": self.streams}


@dataclass(frozen=True)
class TrunkCommand:
    id: MessageId
    actor: str
    action: str
    user: str | None = None

    def serialize(self) -> dict[str, Any]:
        return {
            "type": "command",
            "id": self.id,
            "actor": self.actor,
            "action": self.action,
            "user": self.user,
        }


@dataclass(frozen=True)
class GetState:
    id: MessageId
    actor: str

    def serialize(self) -> dict[str, Any]:
        return {"type": "get_state", "id": self.id, "actor": self.actor}


@dataclass(frozen=True)
class TrunkChat:
    """A chat, react or delete_message of one of B's users (``actor``), B -> A."""

    actor: str
    request: ChatRequest

    @property
    def id(self) -> MessageId:
        return self.request.id

    def serialize(self) -> dict[str, Any]:
        return {**self.request.serialize(), "actor": self.actor}


@dataclass(frozen=True)
class GetListeners:
    """A page of the room's audience for one of B's users (``GET …/listeners`` on B)."""

    id: MessageId
    actor: str
    after: int
    limit: int

    def serialize(self) -> dict[str, Any]:
        return {
            "type": "get_listeners",
            "id": self.id,
            "actor": self.actor,
            "after": self.after,
            "limit": self.limit,
        }


TrunkRequest = Users | TrunkCommand | GetState | TrunkChat | GetListeners
MAX_STREAMS = 1024  # users one node may seat over one trunk
MAX_CURSOR = 10**15  # listener page cursors are below this
MAX_PAGE = 10_000  # the most listeners one page may ask for (each node caps it lower)


def parse_hello(data: dict[str, Any]) -> Hello:
    if data.get("type") != "hello" or not isinstance(data.get("key"), str):
        raise ProtocolError("expected hello")
    return Hello(data["key"])


def parse_trunk_request(data: dict[str, Any]) -> TrunkRequest:
    kind = data.get("type")
    msg_id = message_id(data)
    if kind == "users":
        streams = data.get("streams")
        if not isinstance(streams, dict):
            raise ProtocolError("users needs a 'streams' object")
        if len(streams) > MAX_STREAMS:
            raise ProtocolError(f"at most {MAX_STREAMS} users per trunk")
        return Users(dict(streams))
    if kind == "get_listeners":
        actor, after, limit = data.get("actor"), data.get("after"), data.get("limit")
        if not isinstance(actor, str):
            raise ProtocolError("actor must be a string")
        if type(after) is not int or not 0 <= after < MAX_CURSOR:
            raise ProtocolError("after must be a listener cursor")
        if type(limit) is not int or not 1 <= limit <= MAX_PAGE:
            raise ProtocolError(f"limit must be an integer from 1 to {MAX_PAGE}")
        return GetListeners(msg_id, actor, after, limit)
    if kind in ("command", "get_state", "chat", "react", "delete_message"):
        actor = data.get("actor")
        if not isinstance(actor, str):
            raise ProtocolError("actor must be a string")
        chat = _chat_request(kind, msg_id, data)
        if chat is not None:
            return TrunkChat(actor, chat)
        if kind == "get_state":
            return GetState(msg_id, actor)
        return TrunkCommand(msg_id, actor, _action(data), _optional_handle(data))
    raise ProtocolError(f"unknown trunk message {_shown(kind)}")


# ---- the trunk control channel, A -> B ---------------------------------------------------


def listeners_page(
    msg_id: MessageId, items: list[dict[str, Any]], cursor: int | None, count: int
) -> dict[str, Any]:
    """A's answer to ``get_listeners`` (the same page ``GET /api/rooms/{id}/listeners``
    gives, with the request's id)."""
    return {
        "type": "listeners",
        "id": msg_id,
        "listeners": items,
        "next": None if cursor is None else str(cursor),
        "listener_count": count,
    }


@dataclass(frozen=True)
class Media:
    """A's half of the key agreement and where its UDP end listens."""

    trunk_id: int
    host: str
    port: int
    key: str

    def serialize(self) -> dict[str, Any]:
        return {
            "type": "media",
            "trunk_id": self.trunk_id,
            "udp": [self.host, self.port],
            "key": self.key,
        }


@dataclass(frozen=True)
class Seats:
    missing: list[str]

    def serialize(self) -> dict[str, Any]:
        return {"type": "seats", "missing": self.missing}


def parse_media(data: dict[str, Any]) -> Media:
    udp = data.get("udp")
    trunk_id, key = data.get("trunk_id"), data.get("key")
    if (
        data.get("type") != "media"
        or not isinstance(udp, list)
        or len(udp) != 2
        or not isinstance(udp[0], str)
        or type(udp[1]) is not int
        or not 1 <= udp[1] <= 65535
        or type(trunk_id) is not int
        or not 0 <= trunk_id < 2**32
        or not isinstance(key, str)
    ):
        raise ProtocolError("origin did not answer hello with media")
    return Media(trunk_id, udp[0], udp[1], key)


def parse_seats(data: dict[str, Any]) -> Seats:
    missing = data.get("missing")
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        raise ProtocolError("seats needs a 'missing' list of actor URIs")
    return Seats(missing)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
