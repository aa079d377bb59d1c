"""``GET /api/ice-servers``: the STUN/TURN servers a signed-in client's peer connection
uses, with TURN credentials minted for this request (docs/api.md "ICE servers")."""

from __future__ import annotations

from aiohttp import web

from node.turn import IceServers
from node.web.http import current_user

ICE_SERVERS = web.AppKey("ice_servers", IceServers)

routes = web.RouteTableDef()


@routes.get("/api/ice-servers")
async def ice_servers(request: web.Request) -> web.Response:
    user = current_user(request)
    body = request.app[ICE_SERVERS].for_user(user)
    # credentials are per request and short-lived: no cache may keep or share them
    return web.json_response(body, headers={"Cache-Control": "no-store"})
