"""HTML pages served by the node (the web client replaces the placeholder)."""

from __future__ import annotations

import html

from aiohttp import web

from node.web.api import ROOMS, SETTINGS

routes = web.RouteTableDef()


def _page(title: str, body: str) -> web.Response:
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    )
    return web.Response(text=text, content_type="text/html")


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return _page(
        settings.node_name,
        f"<main><h1>{html.escape(settings.node_name)}</h1>"
        "<p>A Salon node: live audio rooms. The web client is not built yet; "
        "use the JSON API under <code>/api/</code> (docs/api.md).</p></main>",
    )


@routes.get("/rooms/{id}")
async def room_page(request: web.Request) -> web.Response:
    room = request.app[ROOMS].get(request.match_info["id"])
    return _page(
        room.title,
        f"<main><h1>{html.escape(room.title)}</h1><p>{html.escape(room.description)}</p>"
        f"<p>Status: {room.status.value}</p></main>",
    )
