"""The web client's pages: one HTML shell for every client route, plus its static files.

The client (``node/web/static/``) is plain ES modules with no build step. Every page a
person can open directly (``/``, ``/rooms/{id}``, ``/remote?url=``, ``/@{handle}``, ``/new``)
gets the same shell; the client's router then draws the page. The shell carries the page
title (and, for rooms, Open Graph tags) so links shared elsewhere preview sensibly.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from node.rooms.model import RoomRuleError
from node.web.api import ROOMS, SETTINGS

STATIC_DIR = Path(__file__).resolve().parent / "static"
SHELL_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # The client loads nothing from elsewhere; media devices are used only by this origin.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; "
        "connect-src 'self'; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
}

routes = web.RouteTableDef()


@cache
def _template() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


def shell(title: str, description: str = "", url: str = "") -> web.Response:
    """The client's HTML shell; federation's content negotiation can return this for browsers."""
    meta = ""
    if description or url:
        meta = (
            f'<meta property="og:title" content="{html.escape(title)}">'
            f'<meta property="og:description" content="{html.escape(description[:300])}">'
            f'<meta name="description" content="{html.escape(description[:300])}">'
        )
        if url:
            meta += f'<meta property="og:url" content="{html.escape(url)}">'
    text = _template().replace("{{title}}", html.escape(title)).replace("{{meta}}", meta)
    return web.Response(text=text, content_type="text/html", headers=SHELL_HEADERS)


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    return shell(request.app[SETTINGS].node_name)


@routes.get("/new")
async def new_room(request: web.Request) -> web.Response:
    return shell(f"Start a room · {request.app[SETTINGS].node_name}")


@routes.get("/@{handle}")
async def profile_page(request: web.Request) -> web.Response:
    handle = request.match_info["handle"]
    return shell(f"@{handle} · {request.app[SETTINGS].node_name}")


@routes.get("/rooms/{id}")
async def room_page(request: web.Request) -> web.Response:
    node_name = request.app[SETTINGS].node_name
    try:
        room = request.app[ROOMS].get(request.match_info["id"])
    except RoomRuleError:
        # The client shows "no such room" itself (and remote room ids are not ours to know).
        return shell(node_name)
    rooms = request.app[ROOMS]
    return shell(
        f"{room.title} · {node_name}",
        room.description or f"A live audio room on {node_name}",
        rooms.view(room, None)["url"],
    )


@routes.get("/remote")
async def remote_room_page(request: web.Request) -> web.Response:
    """``/remote?url=ROOM_URL``: a room on another node, which the client joins through us."""
    node_name = request.app[SETTINGS].node_name
    host = urlsplit(request.query.get("url", "")).netloc
    return shell(f"A room on {host} · {node_name}" if host else node_name)


@routes.get("/static/{path:.+}")
async def static_file(request: web.Request) -> web.StreamResponse:
    """The client's files; revalidated on every load so an upgraded node serves new code."""
    relative = Path(request.match_info["path"])
    target = (STATIC_DIR / relative).resolve()
    if not target.is_relative_to(STATIC_DIR) or not target.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        target, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    )
