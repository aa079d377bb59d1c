"""Block and mute under /api/ (docs/api.md "Block and mute")."""

from __future__ import annotations

from aiohttp import web

from node.blocks import BlockService
from node.store.users import User
from node.web.api import resolve
from node.web.http import ACCOUNTS, current_user

BLOCKS = web.AppKey("blocks", BlockService)

routes = web.RouteTableDef()


def _answer(request: web.Request, target: User, viewer: User, changed: bool) -> web.Response:
    profile = request.app[ACCOUNTS].profile(target, viewer)
    return web.json_response({"changed": changed, "user": profile})


@routes.post("/api/users/{name}/block")
async def block(request: web.Request) -> web.Response:
    user = current_user(request)
    target = await resolve(request, request.match_info["name"])
    return _answer(request, target, user, request.app[BLOCKS].block(user, target))


@routes.delete("/api/users/{name}/block")
async def unblock(request: web.Request) -> web.Response:
    user = current_user(request)
    target = request.app[ACCOUNTS].by_name(request.match_info["name"])
    return _answer(request, target, user, request.app[BLOCKS].unblock(user, target))


@routes.post("/api/users/{name}/mute")
async def mute(request: web.Request) -> web.Response:
    user = current_user(request)
    target = await resolve(request, request.match_info["name"])
    return _answer(request, target, user, request.app[BLOCKS].mute(user, target))


@routes.delete("/api/users/{name}/mute")
async def unmute(request: web.Request) -> web.Response:
    user = current_user(request)
    target = request.app[ACCOUNTS].by_name(request.match_info["name"])
    return _answer(request, target, user, request.app[BLOCKS].unmute(user, target))


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
