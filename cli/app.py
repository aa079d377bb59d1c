"""The composition root: builds the whole node — node, media and federation — from one
frozen Settings object, passing every dependency in through constructors.

It sits above the library layers (``cli`` → here → ``federation`` → ``node`` → ``media``),
so it is the one module that names them all. Nothing runs at import time; the clock is
injected so tests can move time. Tests, benches and ``salon serve`` build nodes here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from cli.app_media import media_engine, room_audio
from cli.app_metrics import metrics_running
from federation import replay_proxy
from federation.actors import ActorDirectory, ActorDocuments
from federation.blocks import BlockBridge, BlockHandlers
from federation.fetch import SafeClient
from federation.flags import FlagDesk, ModerationRelay
from federation.handlers import ActorHandlers, FollowHandlers, Handlers, RoomAnnouncements
from federation.identity import Signers, Urls, load_node_keys
from federation.inbox import Inbox, SignedRequests
from federation.joins import JoinDesk, RemoteJoins
from federation.outbox import FollowBridge, Publisher, RoomAnnouncer, RoomDocuments
from federation.pings import InviteSender, PingDesk
from federation.remote_rooms import RemoteRooms
from federation.replay_proxy import RemoteReplays
from federation.routes import rooms_middleware
from federation.routes import routes as federation_routes
from federation.rsvp import RemoteRsvpClient, RsvpAudience, RsvpOrigin, RsvpRelay
from federation.sender import DeliveryWorker
from federation.service import FEDERATION, Federation, People
from federation.store.actors import FollowActivityStore, KeyStore, RemoteActorStore
from federation.store.deliveries import DeliveryStore
from federation.store.inbox import SeenActivities
from federation.store.policies import DomainPolicies
from federation.store.rooms import RemoteRoomStore
from federation.trunk_origin import TrunkDesk
from media.ticker import steady_process
from node.accounts import AccountService
from node.blocks import BlockService
from node.clock import Clock, SystemClock
from node.datadir import ensure_data_dir
from node.metrics.loads import WorkerLoads
from node.moderation import ModerationDesk
from node.notifications import Notifications
from node.pings import Pings
from node.recording import RecordingService
from node.replays import ReplayConfig, ReplayService
from node.room_notices import RoomNotices
from node.rooms.audio import RoomAudio
from node.rooms.gate import Gate
from node.rooms.model import RoomRuleError
from node.rooms.service import RoomService
from node.rsvp import RsvpService
from node.rsvp_reminders import RsvpReminders
from node.settings import Settings
from node.store.blocks import BlockStore
from node.store.db import Database, open_database
from node.store.follows import FollowStore
from node.store.notifications import NotificationStore
from node.store.replays import ReplayStore
from node.store.rooms import RoomStore
from node.store.rsvps import RsvpStore
from node.store.users import UserStore
from node.turn import IceServers
from node.web import (
    admin,
    api,
    blocks_api,
    ice,
    listeners_api,
    notifications_api,
    pages,
    recording_api,
    remote_rooms,
    replays,
    rsvp_api,
    websocket,
    workers_api,
)
from node.web.http import (
    ACCOUNTS,
    API_BODY_LIMIT,
    TRUST_PROXY,
    auth_middleware,
    errors_middleware,
)
from node.workers.audio import WorkerAudio

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 0.5
SESSION_CLEANUP_ROUNDS = 1200  # every ten minutes


@dataclass(frozen=True)
class Node:
    """Everything one node is made of (tests and benches reach parts through ``NODE``)."""

    settings: Settings
    db: Database
    accounts: AccountService
    blocks: BlockService
    rooms: RoomService
    audio: RoomAudio
    federation: Federation
    remote_rooms: RemoteRooms
    trunks: TrunkDesk
    desk: ModerationDesk
    notifications: Notifications
    pings: Pings
    rsvps: RsvpService
    reminders: RsvpReminders
    recording: RecordingService
    replays: ReplayService


NODE = web.AppKey("node", Node)


def build_app(
    settings: Settings, clock: Clock | None = None, worker_loads: WorkerLoads | None = None
) -> web.Application:
    """WORKER_LOADS: the media workers' loads for the metrics (None: the in-process engine)."""
    clock = clock or SystemClock()
    node = build_node(settings, clock)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        handler_args=connection_limits(settings),
        middlewares=[
            errors_middleware,
            auth_middleware,
            rooms_middleware(node.rooms),
        ],
    )
    app[NODE] = node
    app[api.SETTINGS] = settings
    app[ACCOUNTS] = node.accounts
    app[blocks_api.BLOCKS] = node.blocks
    app[api.HALLWAY_BLOCKS] = node.blocks
    app[api.ROOMS] = node.rooms
    app[api.REMOTE_PEOPLE] = People(
        node.federation.directory,
        node.federation.users,
        node.federation.follows,
        node.federation.remote_rooms,
    )
    app[API_BODY_LIMIT] = settings.api_body_bytes
    app[TRUST_PROXY] = settings.trust_proxy
    app[rsvp_api.RSVPS] = node.rsvps
    app[websocket.SOCKETS] = set()
    app[websocket.SOCKET_COUNTER] = websocket.SocketCounter(settings.room_sockets_per_user)
    signal_handlers: list[websocket.SignalHandler] = [node.audio.signal]
    app[websocket.SIGNALS] = signal_handlers
    app[remote_rooms.REMOTE_ROOMS] = node.remote_rooms
    app[notifications_api.NOTIFICATIONS] = node.notifications
    app[notifications_api.PINGS] = node.pings
    app[notifications_api.NOTIFICATION_SOCKETS] = websocket.SocketCounter(
        settings.notification_sockets_per_user
    )
    app[admin.DESK] = node.desk
    app[replays.REPLAYS] = node.replays
    app[api.ROOM_EXTRAS] = node.replays
    remote_replays = RemoteReplays(
        node.federation.remote_rooms,
        node.federation.users,
        node.federation.follows,
        node.federation.client,
        node.federation.signers,
        clock,
        hallway_days=settings.replay_hallway_days,
        hallway_cards=settings.replay_hallway_cards,
        proxy_bytes=settings.replay_proxy_bytes,
    )
    app[api.REMOTE_REPLAYS] = remote_replays
    app[replay_proxy.REMOTE_REPLAYS] = remote_replays
    app[replays.SIGNED_VIEWER] = replay_proxy.ReplayViewers(
        node.federation.signed,
        node.federation.actors,
        node.federation.users,
        node.federation.policies,
    )
    app[admin.MEDIA] = node.audio.engine
    app[FEDERATION] = node.federation
    app[ice.ICE_SERVERS] = IceServers(
        clock,
        settings.turn_servers,
        settings.stun_servers,
        ttl_seconds=settings.turn_ttl_seconds,
        policy=settings.ice_transport_policy,
        per_minute=settings.ice_servers_per_user_per_minute,
    )
    app[recording_api.RECORDING] = node.recording
    app.add_routes(recording_api.routes)  # before api's POST /api/rooms/{id}/{action}
    app.add_routes(notifications_api.routes)  # before api's POST /api/rooms/{id}/{action}
    app.add_routes(rsvp_api.routes)  # before api's /api/rooms/{id}/{action} and /rooms/{id}
    app.add_routes(api.routes)
    app.add_routes(ice.routes)
    app.add_routes(blocks_api.routes)
    app.add_routes(listeners_api.routes)
    app.add_routes(websocket.routes)
    app.add_routes(remote_rooms.routes)
    app.add_routes(admin.routes)
    app.add_routes(workers_api.routes)
    if isinstance(node.audio, WorkerAudio):
        app[workers_api.WORKERS] = node.audio
    app.add_routes(replays.routes)
    app.add_routes(replay_proxy.routes)
    app.add_routes(pages.routes)
    app.add_routes(federation_routes)
    app.router.add_route("GET", "/rooms/{id}/trunk", node.trunks.open)
    app.on_startup.append(_start_media)
    app.on_startup.append(_load_rooms)
    app.cleanup_ctx.append(_federation_running)
    app.cleanup_ctx.append(_sweeper)
    app.cleanup_ctx.append(_reminding)
    if settings.metrics_address:  # off by default (docs/operating.md "Metrics")
        if worker_loads is None and isinstance(node.audio, WorkerAudio):
            worker_loads = node.audio  # the workers' heartbeats (node/workers/audio.py)
        app.cleanup_ctx.append(metrics_running(node, worker_loads))
    app.on_shutdown.append(_close_remote_rooms)
    app.on_shutdown.append(websocket.close_sockets)
    app.on_shutdown.append(notifications_api.close_streams)
    app.on_shutdown.append(_close_audio)
    app.on_shutdown.append(_close_replays)
    app.on_cleanup.append(_close_media_port)
    app.on_cleanup.append(_close_db)
    return app


def connection_limits(settings: Settings) -> dict[str, float]:
    """Arguments for each connection's aiohttp ``RequestHandler`` (the app's public
    ``handler_args``, so ``salon serve``, tests and benches all get them).

    aiohttp has no header-read timeout, but its keep-alive timer starts when a connection
    opens and again after each response, and closes the connection if no complete request
    head arrived by then — bytes trickled into a partial head do not reset it. Setting it
    to ``header_timeout_seconds`` therefore bounds how long a client may take to send a
    request's line and headers (slowloris), and how long an idle connection is kept.
    """
    return {"keepalive_timeout": settings.header_timeout_seconds}


def build_node(settings: Settings, clock: Clock) -> Node:
    """The object graph, built once; every part gets what it uses and nothing else."""
    ensure_data_dir(settings.data_dir)
    db = open_database(settings.db_path)
    users, follows, block_store = UserStore(db), FollowStore(db), BlockStore(db)
    actors, follow_activities = RemoteActorStore(db), FollowActivityStore(db)
    remote_room_store, deliveries = RemoteRoomStore(db), DeliveryStore(db)
    policies = DomainPolicies(db, allowlist_mode=settings.allowlist_mode)
    urls = Urls(settings.base_url)
    signers = Signers(urls, load_node_keys(settings.data_dir), KeyStore(db), users, clock)
    client = SafeClient(
        None,
        clock,
        testnet=settings.testnet,
        timeout=settings.fetch_timeout_seconds,
        max_body=settings.max_body_bytes,
    )
    directory = ActorDirectory(
        urls,
        client,
        signers,
        actors,
        users,
        policies,
        clock,
        cache_seconds=settings.actor_cache_seconds,
        cache_entries=settings.actor_cache_entries,
        cache_bytes=settings.actor_cache_bytes,
        document_bytes=settings.actor_document_bytes,
        testnet=settings.testnet,
    )
    publisher = Publisher(urls, deliveries, clock)
    bridge = FollowBridge(urls, actors, follow_activities, directory, publisher)
    replay_store = ReplayStore(db)
    room_documents = RoomDocuments(urls, users, directory, clock, replay_store)
    rsvp_store = RsvpStore(db)
    announcer = RoomAnnouncer(
        users,
        actors,
        room_documents,
        publisher,
        clock,
        interval=settings.announce_interval_seconds,
        rsvps=RsvpAudience(rsvp_store, actors),
    )

    accounts = AccountService(
        db, settings, clock, follow_hooks=[bridge], created_hooks=[signers.user_created]
    )
    blocks = BlockService(
        accounts,
        block_store,
        clock,
        hooks=[BlockBridge(urls, actors, follow_activities, block_store, publisher)],
    )
    rooms = RoomService(db, settings, clock, Gate(follows, users, policies, block_store))
    notifications = Notifications(
        NotificationStore(db),
        users,
        clock,
        own_host=urls.host,
        keep=settings.notifications_per_user,
        queue_size=settings.ws_queue_size,
    )
    notices = RoomNotices(notifications, users, follows, block_store, settings.base_url)
    pings = Pings(
        rooms,
        notifications,
        follows,
        block_store,
        clock,
        per_minute=settings.pings_per_minute,
        remote=InviteSender(urls, actors, publisher, rooms, room_documents),
    )
    engine = media_engine(settings)
    replays = ReplayService(
        replay_store,
        RoomStore(db),
        users,
        follows,
        block_store,
        ReplayConfig(
            replay_dir=settings.replay_path,
            base_url=settings.base_url,
            peaks_buckets=settings.replay_peaks_buckets,
            hallway_days=settings.replay_hallway_days,
            hallway_cards=settings.replay_hallway_cards,
        ),
        clock,
        observers=[announcer],
    )
    audio = room_audio(settings, rooms, engine)
    rooms.observe(audio)
    rooms.observe(announcer)
    rooms.observe(notices)
    rsvps = RsvpService(
        rsvp_store,
        rooms,
        users,
        follows,
        settings,
        clock,
        RemoteRsvpClient(
            urls, client, signers, directory, actors, remote_room_store, users, publisher, clock
        ),
    )
    reminders = RsvpReminders(
        rsvp_store,
        rsvps,
        notifications,
        clock,
        lead_seconds=settings.rsvp_reminder_lead_seconds,
        poll_seconds=settings.rsvp_reminder_poll_seconds,
    )
    rooms.observe(reminders)
    if isinstance(audio, WorkerAudio):  # the node records a trunk of the mixer worker's mix
        recording = RecordingService(
            settings, rooms, replay_store, users, audio.recording_media, audio.recording_tap
        )
    else:
        recording = RecordingService(
            settings, rooms, replay_store, users, audio.media, audio.engine.get
        )
    rooms.observe(recording)
    recording.ready_listeners.append(replays.finished)
    rsvp_relay = RsvpRelay(urls, users, rsvp_store, reminders)

    joins = JoinDesk(urls, users, actors, publisher, rooms)
    desk = ModerationDesk(
        db,
        settings,
        clock,
        rooms=rooms,
        people=People(directory, users, follows, remote_room_store),
        relay=ModerationRelay(urls, users, actors, remote_room_store, publisher),
        domains=policies,
    )
    handlers = Handlers(
        FollowHandlers(
            urls,
            users,
            follows,
            actors,
            follow_activities,
            policies,
            directory,
            bridge,
            clock,
            block_store,
        ),
        ActorHandlers(actors, directory, rooms),
        RoomAnnouncements(
            actors, remote_room_store, client, signers, clock, rsvps=rsvp_relay, notices=notices
        ),
        joins,
        directory,
        users,
        FlagDesk(urls, users, rooms, desk),
        BlockHandlers(
            urls, users, follows, follow_activities, actors, block_store, directory, clock
        ),
        rsvps=RsvpOrigin(urls, users, actors, directory, publisher, rooms, rsvps),
        rsvp_answers=rsvp_relay,
        pings=PingDesk(urls, users, actors, client, signers, pings, notifications),
    )
    worker = DeliveryWorker(
        deliveries,
        policies,
        client,
        signers,
        clock,
        settings,
        publisher.wake,
        after_pass=announcer.flush,
    )
    signed = SignedRequests(settings.base_url, directory, clock, heard_from=worker.heard_from)
    seen = SeenActivities(db)
    inbox = Inbox(signed, policies, seen, handlers, clock)
    federation = Federation(
        settings=settings,
        clock=clock,
        db=db,
        urls=urls,
        users=users,
        follows=follows,
        actors=actors,
        remote_rooms=remote_room_store,
        policies=policies,
        deliveries=deliveries,
        seen=seen,
        client=client,
        signers=signers,
        directory=directory,
        documents=ActorDocuments(urls, signers, settings.node_name),
        room_documents=room_documents,
        signed=signed,
        inbox=inbox,
        publisher=publisher,
        bridge=bridge,
        announcer=announcer,
        worker=worker,
    )
    remote = RemoteRooms(
        urls,
        settings,
        engine.config,
        engine.port,
        policies,
        RemoteJoins(urls, client, signers, directory, publisher),
        client,
        signers,
        rooms=rooms,  # whom our users blocked: their chat messages are not passed on
        notifications=notifications,
        relays=audio.new_relay if isinstance(audio, WorkerAudio) else None,
    )
    trunks = TrunkDesk(signed, policies, actors, users, urls, settings, rooms, audio)
    return Node(
        settings,
        db,
        accounts,
        blocks,
        rooms,
        audio,
        federation,
        remote,
        trunks,
        desk,
        notifications,
        pings,
        rsvps,
        reminders,
        recording,
        replays,
    )


async def _start_media(app: web.Application) -> None:
    """Bind the media port (UDP and TCP) before any room can take a session."""
    await app[NODE].audio.engine.start()
    audio = app[NODE].audio
    if isinstance(audio, WorkerAudio):  # the bus, local children, the first worker
        await audio.start()


async def _close_media_port(app: web.Application) -> None:
    await app[NODE].audio.engine.close_port()


async def _load_rooms(app: web.Application) -> None:
    app[NODE].rooms.load()
    app[NODE].recording.load()


async def _federation_running(app: web.Application) -> AsyncIterator[None]:
    """The outgoing HTTP session and the delivery worker live as long as the app runs."""
    federation = app[NODE].federation
    await federation.client.start()
    task = asyncio.create_task(federation.worker.run(), name="federation-delivery")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await federation.client.close()


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    """Frees unclaimed seats and ends empty rooms; a thin loop around ``sweep()``."""
    node = app[NODE]

    async def loop() -> None:
        rounds = 0
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            rounds += 1
            try:
                node.rooms.sweep()
                node.recording.sweep()
                await node.replays.sweep(node.settings.replay_retention_days)
                if rounds % SESSION_CLEANUP_ROUNDS == 0:
                    node.accounts.sessions.delete_expired(node.accounts.clock.now())
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


async def _reminding(app: web.Application) -> AsyncIterator[None]:
    """RSVP reminders ("starts in 10 minutes", "starting now"): a thin loop."""
    task = asyncio.create_task(app[NODE].reminders.run(), name="rsvp-reminders")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_remote_rooms(app: web.Application) -> None:
    await app[NODE].remote_rooms.close()


async def _close_audio(app: web.Application) -> None:
    """Every peer connection closed before the loop stops (no leaked sockets or tasks)."""
    app[NODE].recording.close()
    await app[NODE].audio.close()


async def _close_replays(app: web.Application) -> None:
    await app[NODE].replays.close()


async def _close_db(app: web.Application) -> None:
    app[NODE].db.close()


def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; aiohttp then runs the shutdown hooks above in order."""
    app = build_app(settings)
    if settings.media_tick == "thread":
        steady_process()

    async def announce(app: web.Application) -> None:
        port = app[NODE].audio.engine.port
        print(f"Salon node listening on {settings.base_url}", flush=True)
        print(
            f"HTTP port {settings.port}; media port UDP {port.udp_port}, TCP {port.tcp_port}",
            flush=True,
        )
        if settings.metrics_address:
            print(f"Metrics on http://{settings.metrics_address}/metrics", flush=True)

    app.on_startup.append(announce)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        shutdown_timeout=5.0,
        print=None,
        access_log=None,
        handle_signals=True,
    )
