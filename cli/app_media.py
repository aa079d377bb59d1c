"""The node's media, composed: the engine from the settings, and who runs each room's
audio — the node's own engine (default) or media workers (docs/scaling.md).

Part of the composition root: ``build_node`` in cli/app.py calls ``media_engine`` and
``room_audio``.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from media.engine import MediaConfig, MediaEngine
from media.worker.bus import Hub, OnEvent
from media.worker.local import LocalHub
from media.worker.redis_bus import RedisHub
from node.rooms.audio import RoomAudio
from node.rooms.service import RoomService
from node.settings import Settings, worker_media_env
from node.workers.audio import WorkerAudio
from node.workers.local import LocalWorkers
from node.workers.pool import WorkerPool


def media_engine(settings: Settings) -> MediaEngine:
    """The node's media engine (the one media port, the 20 ms clock, the fan-out)."""
    return MediaEngine(
        MediaConfig(
            ice_addresses=settings.ice_addresses,
            bitrate=settings.audio_bitrate,
            media_host=settings.media_bind_address,
            media_port=settings.media_port,
            media_tcp_port=settings.media_tcp_port,
            stun_servers=settings.stun_servers,
            native_fanout=settings.native_fanout,
            tick=settings.media_tick,
            loss_protection=settings.loss_protection,
            speaker_passthrough=settings.speaker_passthrough,
            passthrough_max_bitrate=settings.speaker_passthrough_max_bitrate,
        )
    )


def room_audio(settings: Settings, rooms: RoomService, engine: MediaEngine) -> RoomAudio:
    """The node's own engine (default), or media workers (docs/scaling.md)."""
    if not settings.media_workers and not settings.redis_url:
        return RoomAudio(rooms, engine)
    secret = settings.worker_secret or secrets.token_hex(32)
    hub: Hub
    socket_path: Path | None = None
    if settings.redis_url:
        poll = min(0.2, settings.worker_heartbeat_seconds)
        hub = RedisHub(settings.redis_url, settings.base_url, secret.encode(), poll=poll)
    else:  # a private directory: a Unix socket path must stay short (108 bytes)
        socket_path = Path(tempfile.mkdtemp(prefix="salon-workers-")) / "bus.sock"
        hub = LocalHub(socket_path, secret.encode())
    children = None
    if settings.media_workers:
        advertise = settings.worker_advertise or (
            settings.ice_addresses[0] if settings.ice_addresses else "127.0.0.1"
        )
        children = LocalWorkers(
            settings.media_workers,
            settings.base_url,
            secret,
            advertise,
            socket_path=socket_path,
            redis_url=settings.redis_url,
            media_port=settings.media_port,
            media_tcp_port=settings.media_tcp_port,
            heartbeat_seconds=settings.worker_heartbeat_seconds,
            dead_seconds=settings.worker_dead_seconds,
            media_env=worker_media_env(settings),
        )

    def pool(on_event: OnEvent, on_gone: Callable[[str], None]) -> WorkerPool:
        return WorkerPool(
            hub,
            on_event,
            on_gone,
            command_timeout=settings.worker_command_timeout_seconds,
            max_workers=settings.max_workers,
        )

    return WorkerAudio(
        rooms, engine, pool, children, drain_overlap=settings.worker_drain_overlap_seconds
    )
