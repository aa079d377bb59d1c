"""The ``salon`` command. Thin: every command calls the services the web API calls."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:  # aiortc, federation and the store load slowly: commands import them
    from cli.bot import BotOptions
    from federation.store.deliveries import DeliveryStore
    from federation.store.policies import DomainPolicies
    from node.accounts import AccountService

from cli.admin import add_desk_commands
from cli.admin_replays import replays_app
from cli.social_commands import add_social_commands
from node.clock import SystemClock
from node.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="Salon: federated live audio rooms.", no_args_is_help=True)
user_app = typer.Typer(help="Manage the accounts of a node.", no_args_is_help=True)
app.add_typer(user_app, name="user")
admin_app = typer.Typer(
    help="Operator controls: reports, suspensions, domain policies, delivery queue.",
    no_args_is_help=True,
)
app.add_typer(admin_app, name="admin")
add_desk_commands(admin_app)
admin_app.add_typer(replays_app, name="replays")
bot_app = typer.Typer(help="Headless bot participants (tests, demos, load).", no_args_is_help=True)
app.add_typer(bot_app, name="bot")

DataOption = Annotated[
    Path, typer.Option("--data", help="Data directory (created on first start).")
]
DEFAULT_DATA = Path("salon-data")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings(data: Path, **overrides: object) -> Settings:
    try:
        return load_settings(data, overrides)
    except SettingsError as exc:
        fail(str(exc), 2)


def _accounts(data: Path, create: bool = True) -> AccountService:
    """CREATE False: the data directory must exist (listing a typo'd path creates nothing)."""
    from federation.identity import make_user_keys
    from federation.store.actors import KeyStore
    from node.accounts import AccountService
    from node.datadir import DataDirError, ensure_data_dir
    from node.store.db import StoreError, open_database
    from node.store.users import User

    if not create and not (data / "salon.db").exists():
        fail(f"no Salon data directory at {data} (see --data)")
    settings = _settings(data)
    try:
        ensure_data_dir(data)
        db = open_database(settings.db_path)
    except (DataDirError, StoreError) as exc:
        fail(str(exc))
    clock = SystemClock()
    store = KeyStore(db)

    async def make_keys(user: User) -> None:
        """Accounts added here can federate at once, like those signed up on the web."""
        await make_user_keys(store, user.id, clock.now())

    return AccountService(db, settings, clock, created_hooks=[make_keys])


@app.command()
def serve(
    data: DataOption = DEFAULT_DATA,
    url: Annotated[
        str | None, typer.Option(help="Public base URL, e.g. https://salon.example")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8080).")] = None,
    media_port: Annotated[
        int | None,
        typer.Option(
            "--media-port", help="The one UDP port for all audio and trunks (default 40000)."
        ),
    ] = None,
    media_tcp_port: Annotated[
        int | None,
        typer.Option("--media-tcp-port", help="The ICE-TCP port for audio (default 40000)."),
    ] = None,
    testnet: Annotated[
        bool | None,
        typer.Option(
            "--testnet/--no-testnet",
            help="Allow federation with loopback/private addresses (local test networks only).",
        ),
    ] = None,
    media_workers: Annotated[
        int | None,
        typer.Option(
            "--media-workers", help="Media worker processes to run beside the node (default 0)."
        ),
    ] = None,
    redis: Annotated[
        str | None,
        typer.Option("--redis", help="Redis URL: workers register and take commands there."),
    ] = None,
    metrics_address: Annotated[
        str | None,
        typer.Option(
            "--metrics-address",
            help="HOST:PORT of a separate site serving Prometheus /metrics (default: off).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Run a node until Ctrl-C / SIGTERM (first start creates DATA with defaults)."""
    from cli.app import serve as run_node
    from node.datadir import DataDirError
    from node.metrics.site import MetricsBindError
    from node.store.db import StoreError

    _logging(log_level)
    settings = _settings(
        data,
        url=url,
        host=host,
        port=port,
        media_port=media_port,
        media_tcp_port=media_tcp_port,
        testnet=testnet,
        media_workers=media_workers,
        redis_url=redis,
        metrics_address=metrics_address,
    )
    try:
        run_node(settings)
    except (DataDirError, StoreError, MetricsBindError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(
            f"cannot listen on {settings.host}:{settings.port} (HTTP) or media port UDP "
            f"{settings.media_port}/TCP {settings.media_tcp_port}: {exc.strerror or exc}"
        )


@app.command("media-worker")
def media_worker(
    node: Annotated[str, typer.Option("--node", help="The node's base URL.")],
    redis: Annotated[
        str,
        typer.Option(
            "--redis",
            envvar="SALON_REDIS_URL",
            help="The node's Redis URL (redis://[:password@]host:port/db).",
        ),
    ] = "",
    advertise: Annotated[
        str, typer.Option("--advertise", help="Address clients and workers reach us at.")
    ] = "127.0.0.1",
    media_port: Annotated[
        int, typer.Option("--media-port", help="UDP port for audio and trunks (0 = any).")
    ] = 0,
    media_tcp_port: Annotated[
        int,
        typer.Option("--media-tcp-port", help="ICE-TCP port for clients without UDP (0 = any)."),
    ] = 0,
    socket: Annotated[
        Path | None, typer.Option("--socket", help="The node's local bus (set by the node).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Run a media worker for NODE (the secret comes from SALON_WORKER_SECRET)."""
    from cli.worker import WorkerSetupError, options_from_env, run_worker

    _logging(log_level)
    try:
        options = options_from_env(node, redis, socket, advertise, media_port, media_tcp_port)
        asyncio.run(run_worker(options))
    except WorkerSetupError as exc:
        fail(str(exc), 2)
    except (OSError, ConnectionError) as exc:
        fail(f"cannot start the media worker: {exc}")


@app.command()
def init(data: DataOption = DEFAULT_DATA) -> None:
    """Create the data directory, config, database and keys without starting the node."""
    from node.datadir import DataDirError, ensure_data_dir
    from node.store.db import StoreError, open_database

    settings = _settings(data)
    try:
        created = ensure_data_dir(data)
        open_database(settings.db_path).close()
    except (DataDirError, StoreError) as exc:
        fail(str(exc))
    typer.echo(f"{'created' if created else 'already exists'}: {data}")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Username: 1-30 of a-z, 0-9, _")],
    password: Annotated[
        str | None, typer.Option(help="Password (prompted for when omitted).")
    ] = None,
    admin: Annotated[bool, typer.Option(help="Make the user a node admin.")] = False,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Add a local user (works while the node is running)."""
    from node.accounts import AccountError

    accounts = _accounts(data)
    if password is None:
        if not sys.stdin.isatty():
            fail("no --password given and no terminal to prompt on")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = asyncio.run(accounts.create_user(name, password, is_admin=admin))
    except AccountError as exc:
        fail(exc.message)
    typer.echo(f"added user {user.username}")


@user_app.command("list")
def user_list(data: DataOption = DEFAULT_DATA) -> None:
    """List local users."""
    accounts = _accounts(data, create=False)
    for user in accounts.users.list_local():
        flags = " (admin)" if user.is_admin else ""
        typer.echo(f"{user.username}\t{user.display_name or '-'}{flags}")


@user_app.command("remove")
def user_remove(
    name: Annotated[str, typer.Argument(help="Username to remove")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Remove a local user: sessions, follows, seats and the rooms they hosted.

    Refused while the user hosts a scheduled or live room (end it first)."""
    from node.accounts import AccountError

    accounts = _accounts(data, create=False)
    if not yes and not typer.confirm(f"Remove {name} and all their data?"):
        fail("not removed")
    try:
        accounts.remove_user(name)
    except AccountError as exc:
        fail(exc.message)
    typer.echo(f"removed user {name}")


def _federation_store(data: Path) -> tuple[DomainPolicies, DeliveryStore]:
    from federation.store.deliveries import DeliveryStore
    from federation.store.policies import DomainPolicies
    from node.datadir import DataDirError, ensure_data_dir
    from node.store.db import StoreError, open_database

    settings = _settings(data)
    try:
        ensure_data_dir(data)
        db = open_database(settings.db_path)
    except (DataDirError, StoreError) as exc:
        fail(str(exc))
    return DomainPolicies(db, allowlist_mode=settings.allowlist_mode), DeliveryStore(db)


@admin_app.command("block-domain")
def admin_block(
    domain: Annotated[str, typer.Argument(help="Domain (host or host:port) to block.")],
    mode: Annotated[
        str, typer.Option(help="suspend: no federation at all; limit: follows need approval.")
    ] = "suspend",
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Block a domain (takes effect at once, also on a running node)."""
    if mode not in ("suspend", "limit"):
        fail("--mode must be suspend or limit", 2)
    store, _ = _federation_store(data)
    store.set_policy(domain, mode, SystemClock().now())
    typer.echo(f"{mode}: {domain.lower()}")


@admin_app.command("allow-domain")
def admin_allow(
    domain: Annotated[str, typer.Argument(help="Domain to federate with in allowlist mode.")],
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Allow a domain (only matters when allowlist_mode is on)."""
    store, _ = _federation_store(data)
    store.set_policy(domain, "allow", SystemClock().now())
    typer.echo(f"allow: {domain.lower()}")


@admin_app.command("unblock-domain")
def admin_unblock(
    domain: Annotated[str, typer.Argument(help="Domain to remove from the policy list.")],
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Remove a domain's block (or allowlist entry)."""
    store, _ = _federation_store(data)
    if not store.remove_policy(domain):
        fail(f"no policy for {domain}")
    typer.echo(f"removed: {domain.lower()}")


@admin_app.command("blocks")
def admin_blocks(data: DataOption = DEFAULT_DATA) -> None:
    """List domain policies (suspend, limit, allow)."""
    store, _ = _federation_store(data)
    for domain, policy, _created in store.policies():
        typer.echo(f"{domain}\t{policy}")


@admin_app.command("deliveries")
def admin_deliveries(
    state: Annotated[
        str | None, typer.Option(help="Only rows in this state (pending, sent, failed, skipped).")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many recent rows to list.")] = 20,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Delivery queue: counts per state, then the most recent rows."""
    _, deliveries = _federation_store(data)
    summary = deliveries.summary()
    typer.echo("  ".join(f"{name}={count}" for name, count in summary.items()))
    for row in deliveries.recent(limit, state):
        status = row.last_status if row.last_status is not None else "-"
        typer.echo(
            f"{row.id}\t{row.state}\tattempts={row.attempts}\tstatus={status}\t{row.inbox}"
            f"\t{row.activity_id}\t{row.last_error}"
        )


NodeOption = Annotated[str, typer.Option("--node", help="Base URL of the bot's own node.")]
BotUserOption = Annotated[str, typer.Option("--user", help="The bot's username on its node.")]
PasswordOption = Annotated[str, typer.Option("--password", help="The bot's password.")]
PlayOption = Annotated[Path | None, typer.Option("--play", help="WAV file to speak (looped).")]
RecordOption = Annotated[
    Path | None, typer.Option("--record", help="Write what the bot hears to this WAV.")
]
SecondsOption = Annotated[
    float | None, typer.Option("--seconds", help="Stop after N seconds (default: until Ctrl-C).")
]
IceOption = Annotated[
    str | None,
    typer.Option("--ice-address", help="Comma-separated local addresses for ICE (e.g. 127.0.0.1)."),
]
RelayOption = Annotated[
    bool,
    typer.Option(
        "--relay-only", help="Connect only through the node's TURN server (relay candidates)."
    ),
]


def _bot_options(
    node: str,
    user: str,
    password: str,
    play: Path | None,
    record: Path | None,
    seconds: float | None,
    ice_address: str | None,
    relay_only: bool = False,
) -> BotOptions:
    from cli.bot import BotOptions

    addresses = tuple(a.strip() for a in (ice_address or "").split(",") if a.strip())
    if seconds is not None and seconds <= 0:
        fail("--seconds must be positive", 2)
    return BotOptions(
        node=node,
        user=user,
        password=password,
        play=play,
        record=record,
        seconds=seconds,
        ice_addresses=addresses,
        relay_only=relay_only,
        loss_protection=os.environ.get("SALON_LOSS_PROTECTION", "true").strip().lower()
        not in ("0", "false", "no", "off"),
    )


@bot_app.command("host")
def bot_host(
    node: NodeOption,
    user: BotUserOption,
    password: PasswordOption,
    title: Annotated[str, typer.Option("--title", help="Room title.")],
    play: PlayOption = None,
    record: RecordOption = None,
    seconds: SecondsOption = None,
    auto_invite: Annotated[
        bool, typer.Option("--auto-invite", help="Invite anyone who raises a hand.")
    ] = False,
    record_room: Annotated[
        bool, typer.Option("--record-room", help="Record the room on the node (a replay).")
    ] = False,
    ice_address: IceOption = None,
    relay_only: RelayOption = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "warning",
) -> None:
    """Open a live room, print its URL first, speak FILE, end the room on exit."""
    _logging(log_level)
    options = _bot_options(node, user, password, play, record, seconds, ice_address, relay_only)
    from cli import bot

    outcome = bot.run(bot.host(options, title, auto_invite, record_room))
    typer.echo(outcome.as_json())


@bot_app.command("listen")
def bot_listen(
    room_url: Annotated[str, typer.Argument(help="The room's URL (…/rooms/ID).")],
    node: NodeOption,
    user: BotUserOption,
    password: PasswordOption,
    record: RecordOption = None,
    raise_hand: Annotated[
        bool, typer.Option("--raise-hand", help="Ask to speak; accept the invitation.")
    ] = False,
    play: PlayOption = None,
    seconds: SecondsOption = None,
    ice_address: IceOption = None,
    relay_only: RelayOption = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "warning",
) -> None:
    """Join ROOM_URL through the bot's own node; print one JSON line on exit."""
    _logging(log_level)
    options = _bot_options(node, user, password, play, record, seconds, ice_address, relay_only)
    from cli import bot

    outcome = bot.run(bot.listen(options, room_url, raise_hand))
    typer.echo(outcome.as_json())


def _logging(level: str) -> None:
    numeric = getattr(logging, level.upper(), None)
    if not isinstance(numeric, int):
        fail(f"unknown log level {level!r}", 2)
    logging.basicConfig(
        level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if numeric > logging.DEBUG:
        # aioice logs every ICE check at INFO: noise for operators
        logging.getLogger("aioice").setLevel(logging.WARNING)


# ---- salon testnet (logic in cli/testnet.py) -------------------------------------------------
testnet_app = typer.Typer(help="A local test federation of several nodes.", no_args_is_help=True)
app.add_typer(testnet_app, name="testnet")


@testnet_app.command("up")
def testnet_up(
    nodes: Annotated[int, typer.Option("--nodes", help="How many nodes (1-9).")] = 3,
    base_port: Annotated[
        int, typer.Option("--base-port", help="Port of node 1; node K listens on P+K-1.")
    ] = 8101,
    directory: Annotated[
        Path, typer.Option("--dir", help="Holds one data directory per node (reused).")
    ] = Path("salon-testnet"),
    log_level: Annotated[str, typer.Option(help="The nodes' log level.")] = "info",
) -> None:
    """Start N nodes on 127.0.0.1 with demo users who follow each other; Ctrl-C stops all."""
    from cli import testnet

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        fail(f"unknown log level {log_level!r}", 2)
    try:
        code = testnet.up(nodes, base_port, directory, log_level.lower())
    except testnet.TestnetError as exc:
        fail(exc.message, exc.code)
    raise typer.Exit(code)


# ---- salon lookup/follow/…/hallway and admin worker list/drain (cli/social_commands.py) ----
add_social_commands(app, admin_app)


def main() -> None:
    app()
