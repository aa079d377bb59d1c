"""A room's chat and reactions: the rules, as pure state (no I/O, no clock).

One ``Chat`` per live room, held in memory by the chat service (node/rooms/chat_service.py)
and dropped when the room ends (docs/api.md "Chat and reactions"). Every operation checks
first and changes after, so a refused one leaves the chat as it was:

- who may post: ``on`` — every participant; ``speakers`` — those on stage (host,
  moderators, speakers); ``off`` — nobody, moderators included. A user whose messages a
  moderator hid may not post again in this room.
- the text: NFC-normalized and trimmed, 1 to ``max_chars`` characters, valid Unicode,
  no control characters except newlines and tabs, and no bidirectional embedding,
  override or isolate controls (text that reads differently than it is stored).
- deleting: the author deletes their own messages; moderators delete anyone's, change
  the mode and hide every message of a user (also one who already left or was removed).
- history: the last ``history`` messages, for late joiners.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from node.errors import DomainError
from node.rooms.model import Room, RoomRuleError, RoomStatus
from node.text import check_text


class ChatMode(StrEnum):
    ON = "on"
    SPEAKERS = "speakers"
    OFF = "off"


#: The fixed reaction set: wire name -> accessible name (the client's button labels).
REACTIONS: dict[str, str] = {
    "clap": "Clap",
    "laugh": "Laugh",
    "heart": "Heart",
    "plus_one": "Plus one",
    "fire": "Fire",
    "hundred": "Hundred points",
}

#: Moderator commands that change the chat (sent as room ``command`` actions).
MODE_ACTIONS: dict[str, ChatMode] = {
    "chat_on": ChatMode.ON,
    "chat_speakers": ChatMode.SPEAKERS,
    "chat_off": ChatMode.OFF,
}
HIDE_ACTION = "hide_messages"
CHAT_ACTIONS = frozenset({*MODE_ACTIONS, HIDE_ACTION})

# bidi embeddings, overrides and isolates (the "Trojan Source" characters)
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

CHAT_OFF = "chat is off in this room"
CHAT_SPEAKERS = "only people on stage may chat now"
CHAT_HIDDEN = "a moderator hid your messages in this room"
NOT_IN_ROOM = "join the room first"
NO_MESSAGE = "no such chat message"


@dataclass(frozen=True)
class ChatMessage:
    id: str
    user_id: int
    text: str
    at: float


def check_chat_text(raw: object, max_chars: int) -> str:
    """RAW as a chat message's text, or DomainError("invalid")."""
    if not isinstance(raw, str):
        raise DomainError("invalid", "chat text must be a string")
    text = unicodedata.normalize("NFC", raw).strip()
    if not text:
        raise DomainError("invalid", "chat messages cannot be empty")
    if len(text) > max_chars:
        raise DomainError("invalid", f"chat messages are at most {max_chars} characters")
    check_text(text, "chat text", max_chars, lines=True)
    if any(char in BIDI_CONTROLS for char in text):
        raise DomainError("invalid", "chat text must not contain bidirectional controls")
    return text


def check_reaction(raw: object) -> str:
    if not isinstance(raw, str) or raw not in REACTIONS:
        raise DomainError("invalid", "reaction must be one of " + ", ".join(REACTIONS))
    return raw


class Chat:
    def __init__(self, history: int) -> None:
        self.mode = ChatMode.ON
        self.messages: deque[ChatMessage] = deque(maxlen=history)
        self.hidden: set[int] = set()

    # ---- who may do what --------------------------------------------------------------
    @staticmethod
    def _live_member(room: Room, user_id: int) -> None:
        if room.status is not RoomStatus.LIVE:
            raise RoomRuleError("conflict", f"the room is {room.status.value}")
        if user_id not in room.participants:
            raise RoomRuleError("forbidden", NOT_IN_ROOM)

    @staticmethod
    def _moderator(room: Room, user_id: int) -> None:
        Chat._live_member(room, user_id)
        if not room.participants[user_id].is_moderator:
            raise RoomRuleError("forbidden", "only moderators can do that")

    def check_post(self, room: Room, user_id: int) -> None:
        self._live_member(room, user_id)
        if user_id in self.hidden:
            raise RoomRuleError("forbidden", CHAT_HIDDEN)
        if self.mode is ChatMode.OFF:
            raise RoomRuleError("forbidden", CHAT_OFF)
        if self.mode is ChatMode.SPEAKERS and not room.participants[user_id].on_stage:
            raise RoomRuleError("forbidden", CHAT_SPEAKERS)

    def check_react(self, room: Room, user_id: int) -> None:
        """Reactions follow the room, not the chat mode: any participant may react."""
        self._live_member(room, user_id)

    # ---- changes ------------------------------------------------------------------------
    def post(self, room: Room, message: ChatMessage) -> None:
        self.check_post(room, message.user_id)
        self.messages.append(message)

    def delete(self, room: Room, actor_id: int, message_id: str) -> list[str]:
        self._live_member(room, actor_id)
        found = next((m for m in self.messages if m.id == message_id), None)
        if found is None:
            raise RoomRuleError("not_found", NO_MESSAGE)
        if found.user_id != actor_id and not room.participants[actor_id].is_moderator:
            raise RoomRuleError("forbidden", "only its author or a moderator can delete it")
        self.messages.remove(found)
        return [found.id]

    def set_mode(self, room: Room, actor_id: int, mode: ChatMode) -> bool:
        """True if the mode changed."""
        self._moderator(room, actor_id)
        changed = self.mode is not mode
        self.mode = mode
        return changed

    def hide_user(self, room: Room, actor_id: int, target_id: int) -> list[str]:
        """Hide every message of TARGET (the ids removed); they may not post again here."""
        self._moderator(room, actor_id)
        if target_id == actor_id:
            raise RoomRuleError("invalid", "you cannot hide your own messages")
        if target_id in room.moderator_ids():
            raise RoomRuleError("forbidden", "moderators' messages cannot be hidden")
        gone = [m.id for m in self.messages if m.user_id == target_id]
        self.hidden.add(target_id)
        if gone:
            kept = [m for m in self.messages if m.user_id != target_id]
            self.messages.clear()
            self.messages.extend(kept)
        return gone
