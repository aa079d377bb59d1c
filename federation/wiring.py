"""Plugs federation into a node: routes, the AS2 room middleware, the hooks on accounts and
rooms, the outgoing HTTP session and the delivery worker. ``node/app.py`` calls
``install_federation`` once; nothing else in the node imports this module."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from federation.context import Context, load_node_keys
from federation.fetch import SafeClient, make_session
from federation.joins import JoinDesk
from federation.remote_api import REMOTE, RemoteRooms
from federation.remote_api import routes as remote_routes
from federation.routes import rooms_middleware, routes
from federation.service import FEDERATION, Federation
from federation.trunk_origin import trunk_route
from node.accounts import AccountService
from node.clock import Clock
from node.rooms.audio import RoomAudio
from node.rooms.model import Room
from node.rooms.service import RoomService
from node.settings import Settings
from node.store.db import Database
from node.store.users import User

log = logging.getLogger(__name__)


def install_federation(
    app: web.Application,
    settings: Settings,
    clock: Clock,
    db: Database,
    accounts: AccountService,
    rooms: RoomService,
    audio: RoomAudio,
) -> Federation:
    ctx = Context(
        settings=settings, clock=clock, db=db, node_keys=load_node_keys(settings.data_dir)
    )
    fed = Federation(ctx)
    app[FEDERATION] = fed
    accounts.follow_hooks.append(fed.bridge)
    accounts.created_hooks.append(lambda user: _make_keys(ctx, user))
    rooms.observers.append(fed.announcer)

    def get_room(request: web.Request, room_id: str) -> Room:
        return rooms.get(room_id)

    app.middlewares.append(rooms_middleware(get_room))
    app.add_routes(routes)
    # cross-node rooms: remote joins and relay trunks (docs/federation.md, "Rooms across nodes")
    fed.handlers.joins = JoinDesk(ctx, fed.directory, fed.publisher, rooms)
    app.router.add_route("GET", "/rooms/{id}/trunk", trunk_route(rooms, audio).handler)
    remote = RemoteRooms(fed, audio.engine.config)
    app[REMOTE] = remote
    app.add_routes(remote_routes)
    app.on_shutdown.append(lambda _app: remote.close())
    app.cleanup_ctx.append(_running(fed))
    return fed


def _make_keys(ctx: Context, user: User) -> None:
    ctx.store.ensure_keys(user.id, ctx.clock.now())


def _running(fed: Federation) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        session = make_session(fed.ctx.settings.testnet)
        fed.ctx.client = SafeClient(
            session,
            fed.ctx.clock,
            testnet=fed.ctx.settings.testnet,
            timeout=fed.ctx.settings.fetch_timeout_seconds,
            max_body=fed.ctx.settings.max_body_bytes,
        )
        fed.ctx.wake = asyncio.Event()
        task = asyncio.create_task(fed.worker.run(), name="federation-delivery")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await session.close()
        fed.ctx.client = None

    return context
