"""Block and mute under /api/ (docs/api.md "Block and mute")."""

from __future__ import annotations

from aiohttp import web

from node.blocks import BlockService
from node.store.users import User
from node.web.api import resolve
from node.web.http import ACCOUNTS, current_user

BLOCKS = web.AppKey("blocks", BlockService)

routes = web.RouteTableDef()


async def _change(request: web.Request, what: str) -> web.Response:
    """POST adds a block or mute (a remote name may be looked up first), DELETE lifts it."""
    user = current_user(request)
    name = request.match_info["name"]
    adding = request.method == "POST"
    target = await resolve(request, name) if adding else request.app[ACCOUNTS].by_name(name)
    service = request.app[BLOCKS]
    change = {
        ("block", True): service.block,
        ("block", False): service.unblock,
        ("mute", True): service.mute,
        ("mute", False): service.unmute,
    }[what, adding]
    changed = change(user, target)
    profile = request.app[ACCOUNTS].profile(target, user)
    return web.json_response({"changed": changed, "user": profile})


@routes.post("/api/users/{name}/block")
@routes.delete("/api/users/{name}/block")
async def block(request: web.Request) -> web.Response:
    return await _change(request, "block")


@routes.post("/api/users/{name}/mute")
@routes.delete("/api/users/{name}/mute")
async def mute(request: web.Request) -> web.Response:
    return await _change(request, "mute")


def _list(request: web.Request, people: list[User], viewer: User) -> web.Response:
    accounts = request.app[ACCOUNTS]
    return web.json_response({"items": [accounts.profile(u, viewer) for u in people]})


@routes.get("/api/me/blocks")
async def my_blocks(request: web.Request) -> web.Response:
    user = current_user(request)
    return _list(request, request.app[BLOCKS].blocked(user), user)


@routes.get("/api/me/mutes")
async def my_mutes(request: web.Request) -> web.Response:
    user = current_user(request)
    return _list(request, request.app[BLOCKS].muted(user), user)
