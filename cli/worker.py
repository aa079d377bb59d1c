"""``salon media-worker``: one media worker process (media/worker/runtime.py).

The worker secret comes from ``SALON_WORKER_SECRET`` (never the command line, where
other users of the machine could read it in the process list).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from media.engine import MediaConfig, MediaEngine
from media.ticker import steady_process
from media.worker.bus import Outbox
from media.worker.local import LocalLink
from media.worker.redis_bus import RedisLink
from media.worker.runtime import MediaWorker, WorkerConfig
from node.settings import SettingsError, worker_media_settings

log = logging.getLogger(__name__)


class WorkerSetupError(ValueError):
    """A worker that cannot start as asked (the message is for the operator)."""


@dataclass(frozen=True)
class WorkerOptions:
    node: str
    redis: str = ""
    socket: Path | None = None
    advertise: str = "127.0.0.1"
    media_port: int = 0
    media_tcp_port: int = 0  # passive ICE-TCP (RFC 6544) for clients without UDP; 0 = any
    worker_id: str = ""
    bitrate: int = 32000
    speaker_passthrough: bool = True  # the node's pass-through settings (docs/media.md)
    passthrough_max_bitrate: int = 48000
    loss_protection: bool = True  # concealment, FEC, RED, trunk redundancy (docs/media.md)
    native_fanout: bool = True  # media/_fastpath.c when built
    tick: str = "thread"  # the 20 ms clock: "thread" or "loop" (media/ticker.py)
    heartbeat_seconds: float = 0.3
    dead_seconds: float = 1.2


def _float_env(name: str, default: float, environ: Mapping[str, str]) -> float:
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise WorkerSetupError(f"{name} must be a number") from None


def options_from_env(
    node: str,
    redis: str,
    socket: Path | None,
    advertise: str,
    media_port: int,
    media_tcp_port: int = 0,
    environ: Mapping[str, str] | None = None,
) -> WorkerOptions:
    """The worker's options; its media settings (``node.settings.WORKER_MEDIA_SETTINGS``)
    come from SALON_* variables as the node's do."""
    env = os.environ if environ is None else environ
    if not node.startswith(("http://", "https://")):
        raise WorkerSetupError("--node must be the node's base URL (http:// or https://)")
    if bool(redis) == bool(socket):
        raise WorkerSetupError("give exactly one of --redis URL or --socket PATH")
    if not 0 <= media_port <= 65535:
        raise WorkerSetupError("--media-port must be 0-65535")
    if not 0 <= media_tcp_port <= 65535:
        raise WorkerSetupError("--media-tcp-port must be 0-65535")
    heartbeat = _float_env("SALON_WORKER_HEARTBEAT_SECONDS", 0.3, env)
    dead = _float_env("SALON_WORKER_DEAD_SECONDS", 1.2, env)
    if not 0.05 <= heartbeat < dead <= 60:
        raise WorkerSetupError("worker heartbeat must be ≥ 0.05 s and below its dead time")
    try:
        media = worker_media_settings(env)
    except SettingsError as exc:
        raise WorkerSetupError(str(exc)) from None
    return WorkerOptions(
        node=node.rstrip("/"),
        redis=redis,
        socket=socket,
        advertise=advertise,
        media_port=media_port,
        media_tcp_port=media_tcp_port,
        worker_id="w-" + secrets.token_hex(4),
        bitrate=media.audio_bitrate,
        speaker_passthrough=media.speaker_passthrough,
        passthrough_max_bitrate=media.speaker_passthrough_max_bitrate,
        loss_protection=media.loss_protection,
        native_fanout=media.native_fanout,
        tick=media.media_tick,
        heartbeat_seconds=heartbeat,
        dead_seconds=dead,
    )


def _secret() -> bytes:
    secret = os.environ.get("SALON_WORKER_SECRET", "")
    if len(secret) < 16:
        raise WorkerSetupError("SALON_WORKER_SECRET must be set (at least 16 characters)")
    return secret.encode()


def media_config(options: WorkerOptions) -> MediaConfig:
    """The worker's media engine, with the node's media settings (``options_from_env``)."""
    return MediaConfig(
        ice_addresses=(options.advertise,),
        bitrate=options.bitrate,
        media_port=options.media_port,
        media_tcp_port=options.media_tcp_port,
        speaker_passthrough=options.speaker_passthrough,
        passthrough_max_bitrate=options.passthrough_max_bitrate,
        loss_protection=options.loss_protection,
        native_fanout=options.native_fanout,
        tick=options.tick,
    )


async def run_worker(options: WorkerOptions) -> None:
    secret = _secret()
    link: Outbox
    if options.redis:
        link = RedisLink(options.redis, options.node, secret, options.worker_id)
    else:
        assert options.socket is not None
        link = LocalLink(options.socket, secret, options.worker_id)
    engine = MediaEngine(media_config(options))
    worker = MediaWorker(
        WorkerConfig(
            options.worker_id,
            options.advertise,
            heartbeat_seconds=options.heartbeat_seconds,
            dead_seconds=options.dead_seconds,
        ),
        engine,
        link,
    )
    if options.tick == "thread":
        steady_process()  # as `salon serve` does: the tick thread's GIL wait and GC pauses
    task = asyncio.ensure_future(worker.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            # the flag too: a cancellation can be lost inside redis-py (media/worker/bus.py)
            loop.add_signal_handler(sig, lambda: (link.stop(), task.cancel()))
    print(f"media worker {options.worker_id} for {options.node}", flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await task
