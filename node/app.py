"""The composition root: builds the whole node from one frozen Settings object.

Nothing runs at import time; the clock is injected so tests can move time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from federation.wiring import install_federation
from media.engine import MediaConfig, MediaEngine
from node.accounts import AccountService
from node.clock import Clock, SystemClock
from node.datadir import ensure_data_dir
from node.rooms.audio import RoomAudio
from node.rooms.model import RoomRuleError
from node.rooms.service import RoomService
from node.settings import Settings
from node.store.db import Database, open_database
from node.web import api, pages, websocket
from node.web.http import (
    ACCOUNTS,
    API_BODY_LIMIT,
    TRUST_PROXY,
    auth_middleware,
    errors_middleware,
)

log = logging.getLogger(__name__)

DATABASE = web.AppKey("database", Database)
AUDIO = web.AppKey("audio", RoomAudio)
SWEEP_INTERVAL = 0.5
SESSION_CLEANUP_ROUNDS = 1200  # every ten minutes


def build_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    clock = clock or SystemClock()
    ensure_data_dir(settings.data_dir)
    db = open_database(settings.db_path)
    accounts = AccountService(db, settings, clock)
    rooms = RoomService(db, settings, clock)
    engine = MediaEngine(
        MediaConfig(
            ice_addresses=settings.ice_addresses,
            ice_port_range=settings.ice_port_range,
            bitrate=settings.audio_bitrate,
            stun_servers=settings.stun_servers,
        )
    )
    audio = RoomAudio(rooms, engine)
    rooms.observers.append(audio)

    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[errors_middleware, auth_middleware],
    )
    app[api.SETTINGS] = settings
    app[DATABASE] = db
    app[ACCOUNTS] = accounts
    app[api.ROOMS] = rooms
    app[API_BODY_LIMIT] = settings.api_body_bytes
    app[TRUST_PROXY] = settings.trust_proxy
    app[websocket.SOCKETS] = set()
    signal_handlers: list[websocket.SignalHandler] = [audio.signal]
    app[websocket.SIGNALS] = signal_handlers
    app[AUDIO] = audio
    app.add_routes(api.routes)
    app.add_routes(websocket.routes)
    app.add_routes(pages.routes)
    install_federation(app, settings, clock, db, accounts, rooms, audio)
    app.on_startup.append(_load_rooms)
    app.cleanup_ctx.append(_sweeper)
    app.on_shutdown.append(websocket.close_sockets)
    app.on_shutdown.append(_close_audio)
    app.on_cleanup.append(_close_db)
    return app


async def _load_rooms(app: web.Application) -> None:
    app[api.ROOMS].load()


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    """Frees unclaimed seats and ends empty rooms; a thin loop around ``sweep()``."""
    rooms = app[api.ROOMS]
    accounts = app[ACCOUNTS]

    async def loop() -> None:
        rounds = 0
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            rounds += 1
            try:
                rooms.sweep()
                if rounds % SESSION_CLEANUP_ROUNDS == 0:
                    accounts.sessions.delete_expired(accounts.clock.now())
            except RoomRuleError as exc:
                log.warning("sweep: %s", exc.message)
            except Exception:
                # the sweeper must outlive a bug in one room: log it loudly and go on
                log.exception("sweep: unexpected error; continuing")

    task = asyncio.create_task(loop(), name="room-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_audio(app: web.Application) -> None:
    """Every peer connection closed before the loop stops (no leaked sockets or tasks)."""
    await app[AUDIO].close()


async def _close_db(app: web.Application) -> None:
    app[DATABASE].close()


def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; aiohttp then runs the shutdown hooks above in order."""
    app = build_app(settings)
    print(f"Salon node listening on {settings.base_url}", flush=True)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        shutdown_timeout=5.0,
        print=None,
        access_log=None,
        handle_signals=True,
    )
