"""``salon lookup|follow|unfollow|followers|following|hallway``: a signed-in user's client.

Thin: every command signs in on the user's own node with a bearer token
(``POST /api/auth/token``), makes the same client API calls the web client makes
(docs/api.md), prints the answer, and revokes the token again. The node decides
everything (WebFinger lookups, follow states, which rooms are in the hallway).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
from rich.console import Console
from rich.table import Table

T = TypeVar("T")
TIMEOUT_SECONDS = 30.0
MAX_PAGES = 1000  # 50 profiles per page: a runaway `next_page` cannot loop forever


class SocialError(RuntimeError):
    """A problem the user can fix: missing credentials, unreachable node, API refusal."""


@dataclass(frozen=True)
class Credentials:
    node: str
    user: str
    password: str


def credentials(node: str | None, user: str | None, password: str | None) -> Credentials:
    """Options (or their SALON_* environment defaults, filled in by typer) made complete."""
    missing = [
        f"{flag} (or {env})"
        for value, flag, env in (
            (node, "--node URL", "SALON_NODE"),
            (user, "--user NAME", "SALON_USER"),
            (password, "--password PW", "SALON_PASSWORD"),
        )
        if not value
    ]
    if missing:
        raise SocialError("missing " + ", ".join(missing) + ": sign in as a user of a node")
    assert node and user and password
    base = node.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SocialError(f"--node must be an http(s) URL like http://127.0.0.1:8080, not {node!r}")
    return Credentials(base, user, password)


class Client:
    """One signed-in session against the user's own node."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        self.base = creds.node
        self.http: aiohttp.ClientSession | None = None
        self.me: dict[str, Any] = {}
        self._token = ""

    async def __aenter__(self) -> Client:
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            headers={"Accept": "application/json"},
        )
        try:
            data = await self.call(
                "POST",
                "/api/auth/token",
                {
                    "username": self.creds.user,
                    "password": self.creds.password,
                    "label": "salon cli",
                },
            )
        except BaseException:
            await self.http.close()
            raise
        self._token = str(data["token"])
        self.me = data.get("user") or {}
        self.http.headers["Authorization"] = f"Bearer {self._token}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.http is not None
        try:
            if self._token:  # revoke the token: one command, one short-lived session
                async with self.http.post(self.base + "/api/auth/signout"):
                    pass
        except (aiohttp.ClientError, TimeoutError):
            pass
        finally:
            await self.http.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        assert self.http is not None
        try:
            async with self.http.request(
                method, self.base + path, json=body, params=params
            ) as resp:
                text = await resp.text()
        except aiohttp.ClientConnectorError as exc:
            raise SocialError(f"cannot reach node {self.base}: {exc.os_error}") from None
        except TimeoutError:
            raise SocialError(
                f"node {self.base} did not answer within {TIMEOUT_SECONDS:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise SocialError(f"cannot talk to node {self.base}: {exc}") from None
        try:
            data = json.loads(text) if text else None
        except json.JSONDecodeError:
            data = None
        if resp.status >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise SocialError(f"{message or resp.reason} (HTTP {resp.status})")
        if data is None:
            raise SocialError(f"node {self.base} did not answer with JSON for {path}")
        return data

    # ---- the operations (one API call each, or one per page) -------------------------

    async def lookup(self, acct: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/api/lookup", params={"acct": acct})
        return result

    async def follow(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("POST", f"/api/users/{_segment(name)}/follow")
        return result

    async def unfollow(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("DELETE", f"/api/users/{_segment(name)}/follow")
        return result

    async def follow_list(self, name: str | None, direction: str) -> list[dict[str, Any]]:
        """Every page of ``/api/users/{name}/followers|following`` (default: yourself)."""
        who = _segment(name or str(self.me.get("username", self.creds.user)))
        items: list[dict[str, Any]] = []
        page: int | None = 1
        while page is not None and page <= MAX_PAGES:
            path = f"/api/users/{who}/{direction}"
            data = await self.call("GET", path, params={"page": str(page)})
            items.extend(data.get("items") or [])
            page = data.get("next_page")
        return items

    async def hallway(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/api/hallway")
        return result


def _segment(name: str) -> str:
    """A user name or handle as one path segment (``bob@host:port`` stays readable)."""
    name = name.strip()
    if not name or not name.lstrip("@"):
        raise SocialError("a user name is required (alice, or bob@host for a remote user)")
    return quote(name.lstrip("@"), safe="@:")


def run(creds: Credentials, operation: Callable[[Client], Awaitable[T]]) -> T:
    """Sign in, run ``operation``, sign out; SocialError becomes ``error: …`` and exit 1."""

    async def session() -> T:
        async with Client(creds) as client:
            return await operation(client)

    try:
        return asyncio.run(session())
    except SocialError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


# ---- output ---------------------------------------------------------------------------


def _console() -> Console:
    # piped output: no folding at 80 columns (a pipe has no width; --json is for programs)
    width = None if sys.stdout.isatty() else 1000
    return Console(width=width, markup=False, emoji=False, highlight=False)  # titles are data


def output(data: T, as_json: bool, show: Callable[[T], None]) -> None:
    """``--json``: the API's answer as JSON; otherwise ``show`` it for people."""
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        show(data)


def _state(value: Any) -> str:
    return str(value) if value else "no"


def show_profile(profile: dict[str, Any]) -> None:
    rows = [
        ("handle", profile.get("handle")),
        ("display name", profile.get("display_name")),
        ("where", "this node" if profile.get("local") else "remote"),
        ("locked", "yes (follows need approval)" if profile.get("locked") else "no"),
        ("followers", profile.get("followers_count")),
        ("following", profile.get("following_count")),
    ]
    if "followed_by_you" in profile:
        rows.append(("you follow", _state(profile.get("followed_by_you"))))
        rows.append(("follows you", "yes" if profile.get("follows_you") else "no"))
    if profile.get("bio"):
        rows.append(("bio", profile.get("bio")))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")


def show_follow(result: dict[str, Any]) -> None:
    user = result.get("user") or {}
    who = user.get("handle", "?")
    state = result.get("state")
    if state == "accepted":
        print(f"following {who}")
    elif state == "pending":
        remote = "" if user.get("local") else "; their node has not accepted yet"
        print(f"requested to follow {who} (pending{remote})")
    else:
        print(f"not following {who}")


def show_unfollow(result: dict[str, Any]) -> None:
    print(f"unfollowed {(result.get('user') or {}).get('handle', '?')}")


def show_people(direction: str, name: str | None, data: dict[str, Any]) -> None:
    people: list[dict[str, Any]] = data.get("items") or []
    if direction == "followers":
        title = f"followers of {name}" if name else "your followers"
    else:
        title = f"followed by {name}" if name else "you follow"
    if not people:
        print(f"{title}: nobody")
        return
    print(f"{title} ({len(people)})")
    table = Table()
    table.add_column("handle", overflow="fold")
    table.add_column("display name", overflow="fold")
    table.add_column("where")
    for person in people:
        table.add_row(
            str(person.get("handle", "")),
            str(person.get("display_name", "")),
            "local" if person.get("local") else "remote",
        )
    _console().print(table)


def show_hallway(data: dict[str, Any]) -> None:
    rooms = data.get("rooms") or []
    if not rooms:
        print("hallway: no live or upcoming rooms for you")
        return
    print(f"hallway ({len(rooms)} room{'s' if len(rooms) != 1 else ''})")
    table = Table()
    table.add_column("status")
    table.add_column("title", overflow="fold")
    table.add_column("host", overflow="fold")
    table.add_column("node", overflow="fold")
    table.add_column("listeners", justify="right")
    table.add_column("url", overflow="fold")
    for room in rooms:
        table.add_row(
            str(room.get("status", "")),
            str(room.get("title", "")),
            str(room.get("host") or ""),
            str(room.get("node")) if room.get("remote") else "this node",
            str(room.get("listener_count", 0)),
            str(room.get("url", "")),
        )
    _console().print(table)
