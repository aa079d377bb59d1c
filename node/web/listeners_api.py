"""The paged listener list of a room: ``GET /api/rooms/{id}/listeners`` (docs/api.md).

A coalesced room's view (node/rooms/broadcast.py) lists only its first listeners; clients
page through the rest here, in user-id order, ``limit`` at a time, with the opaque
``next`` cursor of the previous page as ``after``. A closed room's audience is visible
only to its members (participants, invitees, the host and moderators).
"""

from __future__ import annotations

import re

from aiohttp import web

from node.rooms.model import JoinMode, Room
from node.rooms.service import RoomService
from node.store.users import User
from node.web.api import ROOMS, SETTINGS
from node.web.http import USER, HttpError

DEFAULT_LIMIT = 50
CURSOR = re.compile(r"[0-9]{1,15}")
LIMIT = re.compile(r"[0-9]{1,6}")

routes = web.RouteTableDef()


def _may_see(rooms: RoomService, room: Room, viewer: User | None) -> None:
    if room.join_mode is not JoinMode.CLOSED:
        return
    if viewer is None:
        raise HttpError(401, "sign in first")
    rooms.views.check_listeners_access(room, viewer)


def parse_page(after: str | None, limit: str | None, most: int) -> tuple[int, int]:
    """The cursor and page size from the query; HttpError 400 for anything else."""
    cursor = 0
    if after is not None and after != "":
        if not CURSOR.fullmatch(after):
            raise HttpError(400, "after must be the 'next' cursor of a previous page")
        cursor = int(after)
    size = min(DEFAULT_LIMIT, most)
    if limit is not None:
        if not LIMIT.fullmatch(limit) or not 1 <= int(limit) <= most:
            raise HttpError(400, f"limit must be an integer from 1 to {most}")
        size = int(limit)
    return cursor, size


@routes.get("/api/rooms/{id}/listeners")
async def listeners(request: web.Request) -> web.Response:
    rooms = request.app[ROOMS]
    most = request.app[SETTINGS].listeners_page_max
    after, limit = parse_page(request.query.get("after"), request.query.get("limit"), most)
    room = rooms.get(request.match_info["id"])
    _may_see(rooms, room, request[USER])
    items, cursor = rooms.views.listener_page(room, after, limit)
    return web.json_response(
        {
            "listeners": items,
            "next": None if cursor is None else str(cursor),
            "listener_count": sum(1 for p in room.participants.values() if not p.on_stage),
        }
    )
