"""Chat and reactions as a running service: rules from ``chat``, delivery through the room.

Owned by the room service (node/rooms/service.py), which hands it the room and the acting
user after its own checks; everything here is in memory and goes when the room ends (a
node restart starts every room's chat empty and ``on``; docs/api.md). Sent to the room's
sockets, including relay trunks, which pass them to their own users:

- ``{"type": "chat", "message": {"id", "user", "text", "at"}}`` — not to local viewers
  who blocked the author;
- ``{"type": "chat_deleted", "ids": [...]}``; ``{"type": "chat_mode", "mode": ...}``;
- ``{"type": "reactions", "reactions": {handle: [reaction, ...]}}`` — reactions are
  coalesced per room: the first one starts a ``reactions_interval_seconds`` window, and
  one message at its end carries who reacted with what (each reaction once per person,
  at most ``reactions_batch_users`` people; later ones in a full window are dropped). In a
  coalesced room the room's broadcaster holds the batch for its next flush and sends it
  with the counts (node/rooms/broadcast.py ``RoomBroadcast.react``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any

from node.accounts import handle
from node.clock import Clock
from node.rooms import protocol
from node.rooms.chat import (
    HIDE_ACTION,
    MODE_ACTIONS,
    REACTIONS,
    Chat,
    ChatMessage,
    check_chat_text,
    check_reaction,
)
from node.rooms.gate import Gate
from node.rooms.limits import ActionLimiter
from node.rooms.model import Room, RoomRuleError
from node.settings import Settings
from node.store.users import User, UserStore

log = logging.getLogger(__name__)

#: (room id, message, user ids not to send it to, droppable)
Broadcast = Callable[[str, dict[str, Any], frozenset[int], bool], None]

BLOCKED_CHAT = "you cannot chat here: a host or moderator of this room has blocked you"


class ChatService:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        users: UserStore,
        gate: Gate,
        broadcast: Broadcast,
        find_user: Callable[[str], User | None],
    ) -> None:
        """FIND_USER: a handle to a user (``RoomService.find_user``), for ``hide_messages``."""
        self.settings = settings
        self.clock = clock
        self.users = users
        self.gate = gate
        self.broadcast = broadcast
        self.find_user = find_user
        self._chats: dict[str, Chat] = {}
        self._messages = ActionLimiter(
            clock, settings.chat_messages_per_second, settings.chat_messages_burst
        )
        self._reacts = ActionLimiter(clock, settings.reactions_per_second, settings.reactions_burst)
        # deletes and chat moderation: limited like room actions, in a bucket of their own
        self._moderation = ActionLimiter(
            clock, settings.room_actions_per_second, settings.room_actions_burst
        )
        self._pending: dict[str, dict[int, list[str]]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def chat(self, room: Room) -> Chat:
        found = self._chats.get(room.id)
        if found is None:
            found = self._chats[room.id] = Chat(self.settings.chat_history)
        return found

    # ---- what participants do -----------------------------------------------------------
    def handle(self, room: Room, user: User, request: protocol.ChatRequest) -> None:
        """One ``chat``, ``react`` or ``delete_message`` of USER, from their room socket
        or (for a remote user) their node's relay trunk: the same rules either way."""
        if isinstance(request, protocol.Chat):
            self.post(room, user, request.text)
        elif isinstance(request, protocol.React):
            self.react(room, user, request.reaction)
        else:
            self.delete(room, user, request.message)

    def post(self, room: Room, user: User, raw: object) -> dict[str, Any]:
        """USER says RAW in ROOM; the message as sent to the room."""
        text = check_chat_text(raw, self.settings.chat_max_chars)
        chat = self.chat(room)
        chat.check_post(room, user.id)
        if self.gate.blocked_by_moderators(room, {user.id}):
            raise RoomRuleError("forbidden", BLOCKED_CHAT)
        if not self._messages.allow((room.id, user.id)):
            raise RoomRuleError("rate_limited", "too many chat messages; slow down")
        message = ChatMessage(secrets.token_urlsafe(9), user.id, text, round(self.clock.now(), 3))
        chat.post(room, message)
        wire = {"type": "chat", "message": self._message_view(message, user)}
        self.broadcast(room.id, wire, frozenset(self.gate.blockers_of(user.id)), False)
        return wire

    def react(self, room: Room, user: User, raw: object) -> None:
        reaction = check_reaction(raw)
        self.chat(room).check_react(room, user.id)
        if not self._reacts.allow((room.id, user.id)):
            raise RoomRuleError("rate_limited", "too many reactions; slow down")
        pending = self._pending.setdefault(room.id, {})
        mine = pending.get(user.id)
        if mine is None:
            if len(pending) >= self.settings.reactions_batch_users:
                return  # a full window: this one is dropped (reactions are fleeting)
            mine = pending[user.id] = []
        if reaction not in mine:
            mine.append(reaction)
        if room.id not in self._timers:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a synchronous caller): send now
                self.flush_reactions(room.id)
                return
            self._timers[room.id] = loop.call_later(
                self.settings.reactions_interval_seconds, self.flush_reactions, room.id
            )

    def flush_reactions(self, room_id: str) -> None:
        """Send the room's reactions since the last batch, as one message."""
        timer = self._timers.pop(room_id, None)
        if timer is not None:
            timer.cancel()
        pending = self._pending.pop(room_id, None)
        if not pending:
            return
        users = self.users.many(list(pending))
        reactions = {handle(users[uid]): kinds for uid, kinds in pending.items() if uid in users}
        self.broadcast(room_id, {"type": "reactions", "reactions": reactions}, frozenset(), True)

    def delete(self, room: Room, user: User, message_id: str) -> None:
        if not self._moderation.allow((room.id, user.id)):
            raise RoomRuleError("rate_limited", "too many room actions; slow down")
        ids = self.chat(room).delete(room, user.id, message_id)
        self.broadcast(room.id, {"type": "chat_deleted", "ids": ids}, frozenset(), False)

    def command(self, room: Room, actor: User, action: str, target: str | None) -> None:
        """A moderator's ``chat_on``/``chat_speakers``/``chat_off``/``hide_messages``."""
        if not self._moderation.allow((room.id, actor.id)):
            raise RoomRuleError("rate_limited", "too many room actions; slow down")
        chat = self.chat(room)
        if action == HIDE_ACTION:
            if target is None:
                raise RoomRuleError("invalid", f"{action} needs a 'user'")
            who = self.find_user(target)
            if who is None:
                raise RoomRuleError("not_found", f"no user named {target!r}")
            ids = chat.hide_user(room, actor.id, who.id)
            if ids:
                self.broadcast(room.id, {"type": "chat_deleted", "ids": ids}, frozenset(), False)
            return
        if target is not None:
            raise RoomRuleError("invalid", f"{action} takes no 'user'")
        if chat.set_mode(room, actor.id, MODE_ACTIONS[action]):
            message = {"type": "chat_mode", "mode": chat.mode.value, "by": handle(actor)}
            self.broadcast(room.id, message, frozenset(), False)

    # ---- views and lifetime ---------------------------------------------------------------
    def view(self, room: Room, viewer: User | None) -> dict[str, Any]:
        """``state.room.chat``: the mode and the history, without authors VIEWER blocked;
        only people in the room see the messages (not a preview, nor someone removed)."""
        chat = self._chats.get(room.id)
        if chat is not None and (viewer is None or viewer.id not in room.participants):
            return {"mode": chat.mode.value, "messages": [], "reactions": list(REACTIONS)}
        if chat is None:
            return {"mode": "on", "messages": [], "reactions": list(REACTIONS)}
        authors = {m.user_id for m in chat.messages}
        users = self.users.many(list(authors))
        blocked = self.gate.blocked_by(viewer.id, authors) if viewer and authors else set()
        return {
            "mode": chat.mode.value,
            "messages": [
                self._message_view(m, users.get(m.user_id))
                for m in chat.messages
                if m.user_id not in blocked
            ],
            "reactions": list(REACTIONS),
        }

    def transcript(self, room_id: str) -> list[dict[str, Any]]:
        """Every kept message of the room, unfiltered (the recording's sidecar, at room end)."""
        chat = self._chats.get(room_id)
        if chat is None:
            return []
        users = self.users.many(list({m.user_id for m in chat.messages}))
        return [self._message_view(m, users.get(m.user_id)) for m in chat.messages]

    def forget(self, room_id: str) -> None:
        """The room ended: its chat, pending reactions and rate buckets go."""
        self._chats.pop(room_id, None)
        self._pending.pop(room_id, None)
        timer = self._timers.pop(room_id, None)
        if timer is not None:
            timer.cancel()
        for limiter in (self._messages, self._reacts, self._moderation):
            limiter.forget(lambda key: isinstance(key, tuple) and key[0] == room_id)

    @staticmethod
    def _message_view(message: ChatMessage, author: User | None) -> dict[str, Any]:
        return {
            "id": message.id,
            "user": handle(author) if author else None,
            "text": message.text,
            "at": message.at,
        }
