"""The ``salon`` command. Thin: every command calls the services the web API calls."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from node.accounts import AccountError, AccountService
from node.clock import SystemClock
from node.datadir import DataDirError, ensure_data_dir
from node.settings import Settings, SettingsError, load_settings
from node.store.db import StoreError, open_database

app = typer.Typer(help="Salon: federated live audio rooms.", no_args_is_help=True)
user_app = typer.Typer(help="Manage the accounts of a node.", no_args_is_help=True)
app.add_typer(user_app, name="user")

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


def _accounts(data: Path) -> AccountService:
    settings = _settings(data)
    try:
        ensure_data_dir(data)
        db = open_database(settings.db_path)
    except (DataDirError, StoreError) as exc:
        fail(str(exc))
    return AccountService(db, settings, SystemClock())


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
    testnet: Annotated[
        bool | None,
        typer.Option(
            "--testnet/--no-testnet",
            help="Allow federation with loopback/private addresses (local test networks only).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Run a node until Ctrl-C / SIGTERM (first start creates DATA with defaults)."""
    from node.app import serve as run_node

    _logging(log_level)
    settings = _settings(data, url=url, host=host, port=port, testnet=testnet)
    try:
        run_node(settings)
    except (DataDirError, StoreError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")


@app.command()
def init(data: DataOption = DEFAULT_DATA) -> None:
    """Create the data directory, config, database and keys without starting the node."""
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
    accounts = _accounts(data)
    for user in accounts.users.list_local():
        flags = " (admin)" if user.is_admin else ""
        typer.echo(f"{user.username}\t{user.display_name or '-'}{flags}")


@user_app.command("remove")
def user_remove(
    name: Annotated[str, typer.Argument(help="Username to remove")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Remove a local user with their sessions, follows and room seats."""
    accounts = _accounts(data)
    if not yes and not typer.confirm(f"Remove {name} and all their data?"):
        fail("not removed")
    try:
        accounts.remove_user(name)
    except AccountError as exc:
        fail(exc.message)
    typer.echo(f"removed user {name}")


def _logging(level: str) -> None:
    numeric = getattr(logging, level.upper(), None)
    if not isinstance(numeric, int):
        fail(f"unknown log level {level!r}", 2)
    logging.basicConfig(
        level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def main() -> None:
    app()
