"""Recording controls besides the room's ``record`` field (docs/api.md "Recording").

``POST /api/rooms/{id}/mark`` ``{"title": "..."}``: a chapter mark at the recording's current
time (host and moderators). Registered before ``/api/rooms/{id}/{action}``.
"""

from __future__ import annotations

from aiohttp import web

from node.recording import RecordingService
from node.web.http import current_user, read_json

RECORDING = web.AppKey("recording", RecordingService)

routes = web.RouteTableDef()


@routes.post("/api/rooms/{id}/mark")
async def mark(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await read_json(request)
    chapter = request.app[RECORDING].mark(request.match_info["id"], user, body.get("title"))
    return web.json_response(chapter, status=201)
