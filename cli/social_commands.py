"""``salon lookup``, ``follow``, ``unfollow``, ``followers``, ``following``, ``hallway``
and ``salon admin worker list/drain``: commands that talk to a running node's HTTP API as
one of its accounts (the client and the printing are in cli/social.py). cli/main.py
registers them with ``add_social_commands``.
"""

from __future__ import annotations

import json
from typing import Annotated, NoReturn

import typer

from cli import social


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def add_social_commands(app: typer.Typer, admin_app: typer.Typer) -> None:
    """Register the commands under ``salon`` and ``salon admin worker``."""
    worker_app = typer.Typer(
        help="The node's media workers (docs/scaling.md).", no_args_is_help=True
    )
    admin_app.add_typer(worker_app, name="worker")
    worker_app.command("list")(admin_worker_list)
    worker_app.command("drain")(admin_worker_drain)
    app.command("lookup")(social_lookup)
    app.command("follow")(social_follow)
    app.command("unfollow")(social_unfollow)
    app.command("followers")(social_followers)
    app.command("following")(social_following)
    app.command("hallway")(social_hallway)


SocialNode = Annotated[
    str | None, typer.Option("--node", envvar="SALON_NODE", help="Base URL of your node.")
]
SocialUser = Annotated[
    str | None, typer.Option("--user", envvar="SALON_USER", help="Your username there.")
]
SocialPassword = Annotated[
    str | None,
    typer.Option("--password", envvar="SALON_PASSWORD", help="Your password.", show_default=False),
]
SocialJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead.")]
WhoArgument = Annotated[
    str | None, typer.Argument(help="alice or bob@host[:port] (default: you).", show_default=False)
]


def _social(node: str | None, user: str | None, password: str | None) -> social.Credentials:
    try:
        return social.credentials(node, user, password)
    except social.SocialError as exc:
        _fail(str(exc), 2)


def admin_worker_list(
    node: SocialNode = None,
    user: SocialUser = None,
    password: SocialPassword = None,
    as_json: SocialJson = False,
) -> None:
    """The node's media workers: address, load, alive, draining (an admin account)."""
    data = social.run(_social(node, user, password), lambda c: c.call("GET", "/api/admin/workers"))
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for worker in data.get("workers", []):
        load = worker.get("load") or {}
        state = "draining" if worker.get("draining") else "alive"
        typer.echo(
            f"{worker['id']}  {worker['address']}  {state}  placed={worker.get('placed', 0)}"
            f"  sessions={load.get('sessions', 0)}  cpu={load.get('cpu_percent', 0)}%"
        )


def admin_worker_drain(
    worker: Annotated[str, typer.Argument(help="The worker's id (salon admin worker list).")],
    node: SocialNode = None,
    user: SocialUser = None,
    password: SocialPassword = None,
) -> None:
    """No new sessions on WORKER; its sessions move to other workers (make-before-break)."""
    path = f"/api/admin/workers/{worker}/drain"
    data = social.run(_social(node, user, password), lambda c: c.call("POST", path))
    typer.echo(f"draining {data['worker']['id']}: {data['worker'].get('placed', 0)} sessions left")


def social_lookup(
    acct: Annotated[str, typer.Argument(help="@bob@host[:port] (WebFinger) or a local name.")],
    node: SocialNode = None,
    user: SocialUser = None,
    password: SocialPassword = None,
    as_json: SocialJson = False,
) -> None:
    """Look up a local or remote user's profile through your node."""
    profile = social.run(_social(node, user, password), lambda c: c.lookup(acct))
    social.output(profile, as_json, social.show_profile)


def social_follow(
    name: Annotated[str, typer.Argument(help="alice or bob@host[:port].")],
    node: SocialNode = None,
    user: SocialUser = None,
    password: SocialPassword = None,
    as_json: SocialJson = False,
) -> None:
    """Follow a user (remote follows stay pending until their node accepts)."""
    result = social.run(_social(node, user, password), lambda c: c.follow(name))
    social.output(result, as_json, social.show_follow)


def social_unfollow(
    name: Annotated[str, typer.Argument(help="alice or bob@host[:port].")],
    node: SocialNode = None,
    user: SocialUser = None,
    password: SocialPassword = None,
    as_json: SocialJson = False,
) -> None:
    """Stop following a user (or withdraw a pending request)."""
    result = social.run(_social(node, user, password), lambda c: c.unfollow(name))
    social.output(result, as_json, social.show_unfollow)


def _social_list(direction: str, name: str | None, creds: social.Credentials, js: bool) -> None:
    people = social.run(creds, lambda c: c.follow_list(name, direction))
    social.output({"items": people}, js, lambda d: social.show_people(direction, name, d))


def social_followers(
    name: WhoArgument = None,
    node: SocialNode = None,
    user: SocialUser = None,
    password: SocialPassword = None,
    as_json: SocialJson = False,
) -> None:
    """List who follows NAME (accepted follows, as your node knows them)."""
    _social_list("followers", name, _social(node, user, password), as_json)


def social_following(
    name: WhoArgument = None,
    node: SocialNode = None,
    user: SocialUser = None,
    password: SocialPassword = None,
    as_json: SocialJson = False,
) -> None:
    """List whom NAME follows (accepted follows, as your node knows them)."""
    _social_list("following", name, _social(node, user, password), as_json)


def social_hallway(
    node: SocialNode = None,
    user: SocialUser = None,
    password: SocialPassword = None,
    as_json: SocialJson = False,
) -> None:
    """Live and upcoming rooms for you, local and from people you follow on other nodes."""
    rooms = social.run(_social(node, user, password), lambda c: c.hallway())
    social.output(rooms, as_json, social.show_hallway)
