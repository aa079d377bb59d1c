"""``Subscription``: one client's ordered event stream for one room (a room WebSocket, or
another node's relay trunk watching), with the slow-client policy. ``RoomService`` makes
them (``connect``, ``watch``); node/rooms/broadcast.py fans events out to them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from node.store.users import User


class Subscription:
    """One client's ordered event stream for one room, with a bounded queue.

    Policy for slow clients: ``speaking`` messages are dropped once the queue is half full;
    if the queue fills up anyway the client is disconnected (close code 4008) and must
    reconnect, receiving a fresh full state. One slow client never stalls the others.
    """

    def __init__(self, room_id: str, user: User | None, maxsize: int) -> None:
        """USER None: a watcher that is not a participant (another node's relay trunk)."""
        self.room_id = room_id
        self.user = user
        self.maxsize = maxsize
        # unbounded underneath; the bound is enforced in offer(), so close() never has to
        # drop a queued message to make room for its sentinel
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.overflowed = False
        self.closed = False
        self.close_code = 1000
        self.close_reason = ""

    def offer(self, message: dict[str, Any], droppable: bool = False) -> None:
        if self.closed:
            return
        size = self.queue.qsize()
        if droppable and size >= self.maxsize // 2:
            return
        if size >= self.maxsize:
            self.overflowed = True
            self.close(4008, "client too slow; reconnect for a fresh state")
            return
        self.queue.put_nowait(message)

    def close(self, code: int, reason: str) -> None:
        """End the stream; the WebSocket closes with CODE once queued messages are sent."""
        if self.closed:
            return
        self.closed = True
        self.close_code, self.close_reason = code, reason
        self.queue.put_nowait(None)
