"""Joins rooms to the media engine: the room rules decide, the engine carries audio.

Signalling arrives on the room WebSocket as ``{"type": "signal", "signal": {...}}`` and
answers go back the same way. Who may be heard is decided here from the room state
(on stage and not muted), never by the client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from nacl.public import PrivateKey, PublicKey

from media.engine import MediaEngine, RoomMedia
from media.relay import OriginTrunk
from media.signaling import SignalError
from node.rooms.model import Participant, Room, RoomEvent, RoomRuleError
from node.rooms.service import RoomService
from node.store.users import User

log = logging.getLogger(__name__)


class TrunkHandle(Protocol):
    """The origin end of a remote node's relay trunk, as federation drives it."""

    def add_stream(self, stream: int, participant: str) -> None: ...

    def set_can_speak(self, participant: str, allowed: bool) -> None: ...

    async def close(self) -> None: ...


class RoomAudio:
    """A RoomObserver that keeps each room's media in step with its participants."""

    def __init__(self, rooms: RoomService, engine: MediaEngine) -> None:
        self.rooms = rooms
        self.engine = engine
        self._tasks: set[asyncio.Task[None]] = set()

    def media(self, room_id: str) -> RoomMedia:
        """The room's media engine room (created with this node's callbacks)."""

        def send(participant: str, message: dict[str, Any]) -> None:
            self.rooms.send_to(room_id, int(participant), {"type": "signal", "signal": message})

        def on_levels(levels: dict[str, float]) -> None:
            self.rooms.report_levels(room_id, {int(k): v for k, v in levels.items()})

        return self.engine.room(room_id, send, on_levels)

    async def trunk_media_address(self, room_id: str) -> tuple[str, int] | None:
        """Where a remote node's trunk to ROOM_ID sends (None: this node's media port)."""
        return None

    def origin_trunk(
        self,
        room_id: str,
        trunk_id: int,
        own: PrivateKey,
        peer: PublicKey,
        on_moved: Callable[[], object] = lambda: None,
    ) -> TrunkHandle:
        """The origin end of a remote node's trunk, attached to the room's mixer.

        ON_MOVED: the room's mixer moved elsewhere (media workers): the remote node must
        open its trunk again to learn the new address (the local mixer never moves)."""
        return OriginTrunk(self.media(room_id), trunk_id, own, peer, self.engine.port)

    def seated_signal(
        self, room_id: str, user: User, message: dict[str, Any]
    ) -> tuple[Participant, dict[str, Any]]:
        """USER's place in the live room ROOM_ID and the ``signal`` object of MESSAGE, or
        the RoomRuleError the client is told (every RoomAudio checks signals this way)."""
        room = self.rooms.live(room_id)
        if room is None:
            raise RoomRuleError("conflict", "the room is not live")
        participant = room.participants.get(user.id)
        if participant is None:
            raise RoomRuleError("forbidden", "you are not in this room")
        payload = message.get("signal")
        if not isinstance(payload, dict):
            raise RoomRuleError("invalid", "signal messages need a 'signal' object")
        return participant, payload

    async def signal(self, room_id: str, user: User, message: dict[str, Any]) -> None:
        """A signalling message from USER's client (the WebSocket handler calls this)."""
        participant, payload = self.seated_signal(room_id, user, message)
        media = self.media(room_id)
        media.set_can_speak(str(user.id), participant.can_speak)
        try:
            await media.signal(str(user.id), payload)
        except SignalError as exc:
            raise RoomRuleError("invalid", f"signalling: {exc}") from None

    def room_event(self, room: Room, event: RoomEvent) -> None:
        media = self.engine.get(room.id)
        if media is None:
            return
        if event.kind == "room_ended":
            self._spawn(self.engine.close_room(room.id))
            return
        user_id = event.data.get("user")
        if not isinstance(user_id, int):
            return
        if event.kind in ("left", "removed"):
            self._spawn(media.remove(str(user_id)))
        elif event.kind in ("role_changed", "muted", "joined"):
            participant = room.participants.get(user_id)
            if participant is not None:
                media.set_can_speak(str(user_id), participant.can_speak)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("audio: media task failed: %r", task.exception())

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.engine.close()
