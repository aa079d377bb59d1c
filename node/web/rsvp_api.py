"""RSVPs ("Notify me"), room calendars and the per-user calendar feed (docs/api.md).

Registered before the general ``/api/rooms/{id}/{action}`` and ``/rooms/{id}`` routes, so
``/api/rooms/{id}/rsvp`` and ``/rooms/{id}.ics`` land here.
"""

from __future__ import annotations

from aiohttp import web

from node.rsvp import RsvpError, RsvpService
from node.web.http import USER, current_user, read_json

RSVPS = web.AppKey("rsvps", RsvpService)
CALENDAR_TYPE = "text/calendar"

routes = web.RouteTableDef()


def _answer(key: str, notify: bool) -> web.Response:
    return web.json_response({"room": key, "notify": notify})


@routes.post("/api/rooms/{id}/rsvp")
async def rsvp_local(request: web.Request) -> web.Response:
    user = current_user(request)
    service = request.app[RSVPS]
    key = await service.ask(user, request.match_info["id"])
    return _answer(key, True)


@routes.delete("/api/rooms/{id}/rsvp")
async def unrsvp_local(request: web.Request) -> web.Response:
    user = current_user(request)
    service = request.app[RSVPS]
    key = service.cancel(user, request.match_info["id"])
    return _answer(key, False)


@routes.post("/api/rsvps")
async def rsvp_any(request: web.Request) -> web.Response:
    """``{"room": id or room URL, "notify": true|false}`` for local and remote rooms."""
    user = current_user(request)
    service = request.app[RSVPS]
    body = await read_json(request)
    unknown = sorted(set(body) - {"room", "notify"})
    if unknown:
        raise RsvpError("invalid", f"unknown field(s): {', '.join(unknown)}")
    notify = body.get("notify", True)
    if not isinstance(notify, bool):
        raise RsvpError("invalid", "notify must be true or false")
    if notify:
        key = await service.ask(user, body.get("room"))
    else:
        key = service.cancel(user, body.get("room"))
    return _answer(key, notify)


@routes.get("/api/me/rsvps")
async def my_rsvps(request: web.Request) -> web.Response:
    user = current_user(request)
    return web.json_response({"rooms": request.app[RSVPS].rooms_of(user)})


@routes.get("/rooms/{id}.ics")
async def room_ics(request: web.Request) -> web.Response:
    service = request.app[RSVPS]
    body = service.room_calendar(request.match_info["id"], request[USER])
    return _calendar(body, f"salon-{request.match_info['id']}.ics")


@routes.get("/api/me/calendar")
async def calendar_state(request: web.Request) -> web.Response:
    user = current_user(request)
    return web.json_response({"active": request.app[RSVPS].calendar_active(user)})


@routes.post("/api/me/calendar")
async def calendar_rotate(request: web.Request) -> web.Response:
    """A new feed URL; the previous one stops working. Shown once: only a hash is kept."""
    user = current_user(request)
    service = request.app[RSVPS]
    token = service.new_calendar_token(user)
    return web.json_response({"active": True, "url": service.feed_url(token)}, status=201)


@routes.delete("/api/me/calendar")
async def calendar_revoke(request: web.Request) -> web.Response:
    user = current_user(request)
    request.app[RSVPS].revoke_calendar(user)
    return web.json_response({"active": False})


@routes.get("/calendar/{token}.ics")
async def calendar_feed(request: web.Request) -> web.Response:
    body = request.app[RSVPS].feed(request.match_info["token"])
    if body is None:
        raise RsvpError("not_found", "no such calendar")
    return _calendar(body, "salon.ics")


def _calendar(body: bytes, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type=CALENDAR_TYPE,
        charset="utf-8",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )
