"""``salon admin`` commands of the moderation desk: a thin shell over ``ModerationDesk``.

They act on the data directory (also while the node runs: every change is in the
database, and a suspension's ``Delete`` is queued for the running node's delivery worker).
Actions are written to the audit log as taken by the operator at the server's shell.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from node.moderation import ModerationDesk

from node.clock import SystemClock
from node.errors import DomainError
from node.settings import SettingsError, load_settings

DataOption = Annotated[
    Path, typer.Option("--data", help="Data directory (created on first start).")
]
DEFAULT_DATA = Path("salon-data")
NoteOption = Annotated[str, typer.Option("--note", help="Why (kept in the audit log).")]

report_app = typer.Typer(help="Reports on the moderation desk.", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def add_desk_commands(admin_app: typer.Typer) -> None:
    """Register the desk's commands under ``salon admin``."""
    admin_app.add_typer(report_app, name="report")
    admin_app.command("suspend")(suspend)
    admin_app.command("unsuspend")(unsuspend)
    admin_app.command("limit")(limit)
    admin_app.command("audit")(audit)


def _desk(data: Path) -> ModerationDesk:
    # federation's modules load slowly: only the commands that need them import them
    from federation.flags import ModerationRelay
    from federation.identity import Urls
    from federation.outbox import Publisher
    from federation.store.actors import RemoteActorStore
    from federation.store.deliveries import DeliveryStore
    from federation.store.policies import DomainPolicies
    from federation.store.rooms import RemoteRoomStore
    from node.moderation import ModerationDesk
    from node.store.db import StoreError, open_database
    from node.store.users import UserStore

    if not (data / "salon.db").exists():
        _fail(f"no Salon data directory at {data} (see --data)")
    try:
        settings = load_settings(data)
        db = open_database(settings.db_path)
    except (SettingsError, StoreError) as exc:
        _fail(str(exc))
    clock = SystemClock()
    urls = Urls(settings.base_url)
    relay = ModerationRelay(
        urls,
        UserStore(db),
        RemoteActorStore(db),
        RemoteRoomStore(db),
        Publisher(urls, DeliveryStore(db), clock),
    )
    policies = DomainPolicies(db, allowlist_mode=settings.allowlist_mode)
    return ModerationDesk(
        db, settings, clock, rooms=None, people=None, relay=relay, domains=policies
    )


def _run(action: Callable[[], Any]) -> Any:
    try:
        result = action()
        return asyncio.run(result) if asyncio.iscoroutine(result) else result
    except DomainError as exc:
        _fail(exc.message)


@report_app.command("list")
def report_list(
    status: Annotated[str | None, typer.Option(help="open or resolved (default: all).")] = None,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Reports, newest first: id, status, origin, category, target, comment."""
    desk = _desk(data)
    for r in _run(lambda: desk.reports(None, status)):
        origin = f"remote:{r['origin']}" if r["remote"] else f"local:{r['reporter']}"
        typer.echo(
            f"{r['id']}\t{r['status']}\t{origin}\t{r['category']}\t{r['target']}\t{r['comment']}"
        )


@report_app.command("show")
def report_show(
    report_id: Annotated[int, typer.Argument(help="The report's id.")],
    data: DataOption = DEFAULT_DATA,
) -> None:
    """One report with its context (room, speakers), as JSON."""
    desk = _desk(data)
    typer.echo(json.dumps(_run(lambda: desk.report_view(None, report_id)), indent=2))


@report_app.command("resolve")
def report_resolve(
    report_id: Annotated[int, typer.Argument(help="The report's id.")],
    note: NoteOption = "",
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Mark a report resolved, with a note."""
    desk = _desk(data)
    _run(lambda: desk.resolve(None, report_id, note))
    typer.echo(f"resolved report {report_id}")


def suspend(
    user: Annotated[str, typer.Argument(help="alice (local) or bob@host (remote).")],
    note: NoteOption = "",
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Suspend an account: sessions revoked, sign-in refused, actor 410, Delete sent to
    followers' nodes (local); refused everywhere on this node (remote)."""
    desk = _desk(data)
    result = _run(lambda: desk.suspend(None, user, note))
    typer.echo(
        f"suspended {result['user']} (Delete queued for {result['delete_sent_to']} inbox(es))"
    )


def unsuspend(
    user: Annotated[str, typer.Argument(help="The suspended account.")],
    note: NoteOption = "",
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Lift a suspension (follows severed by it stay severed)."""
    desk = _desk(data)
    _run(lambda: desk.unsuspend(None, user, note))
    typer.echo(f"unsuspended {user}")


def limit(
    handle: Annotated[str, typer.Argument(help="A remote account, bob@host.")],
    note: NoteOption = "",
    undo: Annotated[bool, typer.Option("--undo", help="Lift the limit.")] = False,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Limit a remote account: its rooms leave hallways, its follows wait for approval."""
    desk = _desk(data)
    _run(lambda: desk.limit(None, handle, note, limited=not undo))
    typer.echo(f"{'unlimited' if undo else 'limited'} {handle}")


def audit(data: DataOption = DEFAULT_DATA) -> None:
    """The moderation audit log, newest first."""
    desk = _desk(data)
    for e in _run(lambda: desk.audit_log(None)):
        typer.echo(f"{e['id']}\t{e['admin']}\t{e['action']}\t{e['target']}\t{e['note']}")
