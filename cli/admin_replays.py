"""``salon admin replays list`` / ``delete ROOM_ID``: a thin shell over ``ReplayLibrary``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from node.errors import DomainError
from node.settings import SettingsError, load_settings

if TYPE_CHECKING:  # the store loads slowly: the commands import it
    from node.replay_library import ReplayLibrary

DataOption = Annotated[
    Path, typer.Option("--data", help="Data directory (created on first start).")
]
DEFAULT_DATA = Path("salon-data")

replays_app = typer.Typer(help="Recorded rooms (replays).", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _library(data: Path) -> ReplayLibrary:
    from node.replay_library import ReplayLibrary
    from node.store.db import StoreError, open_database
    from node.store.replays import ReplayStore

    if not (data / "salon.db").exists():
        _fail(f"no Salon data directory at {data} (see --data)")
    try:
        settings = load_settings(data)
        db = open_database(settings.db_path)
    except (SettingsError, StoreError) as exc:
        _fail(str(exc))
    return ReplayLibrary(ReplayStore(db), settings.replay_path)


@replays_app.command("list")
def list_replays(data: DataOption = DEFAULT_DATA) -> None:
    """Every replay that is not deleted, newest first, one JSON object a line."""
    for replay in _library(data).list():
        typer.echo(
            json.dumps(
                {
                    "room_id": replay.room_id,
                    "host_id": replay.host_id,
                    "title": replay.title,
                    "status": replay.status,
                    "bytes": replay.bytes,
                    "duration": round(replay.duration, 2),
                    "started": replay.started,
                    "ended": replay.ended,
                },
                ensure_ascii=False,
            )
        )


@replays_app.command("delete")
def delete_replay(
    room_id: Annotated[str, typer.Argument(help="The room's id.")],
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Delete a finished replay: its Ogg file, its sidecar; the row is marked deleted."""
    try:
        _library(data).delete(room_id)
    except DomainError as exc:
        _fail(exc.message)
    typer.echo(f"deleted the replay of room {room_id}")
