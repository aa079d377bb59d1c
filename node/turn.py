"""STUN/TURN servers for clients: the ``turn_servers`` setting, parsed and checked, and the
short-lived TURN credentials the node hands to signed-in clients.

Credentials follow the TURN REST API scheme ("A REST API For Access To TURN Services",
draft-uberti-behave-turn-rest-00), which coturn implements as ``use-auth-secret`` with
``static-auth-secret`` (coturn's README.turnserver, "TURN REST API"): the username is
``<expiry unix time>:<user id>`` and the password is base64(HMAC-SHA1(secret, username)).
The TURN server holds the same secret and refuses a username whose time has passed, so a
leaked credential is only good until then and the secret itself never leaves the node.

The minting functions are pure; :class:`IceServers` adds the clock and a per-user limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from node.clock import Clock
from node.errors import DomainError
from node.rooms.limits import ActionLimiter

if TYPE_CHECKING:  # settings import this module: keep it free of the store at run time
    from node.store.users import User

# RFC 7065 §3.1 (turn:/turns: host [":" port] ["?transport=" udp|tcp]) and RFC 7064 §3.1
# (stun:/stuns: host [":" port]). A host is a name, an IPv4 address or a bracketed IPv6 one.
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)"
TURN_URL = re.compile(rf"(turns?):({_HOST})(?::([0-9]{{1,5}}))?(?:\?transport=(udp|tcp))?")
STUN_URL = re.compile(rf"stuns?:{_HOST}(?::([0-9]{{1,5}}))?")
TURN_KEYS = frozenset({"urls", "username", "credential", "secret"})
POLICIES = ("all", "relay")


class TurnConfigError(ValueError):
    """A TURN or STUN server entry in the settings is malformed (the message says how)."""


class IceServersError(DomainError):
    """A client asked for ICE servers too often."""


@dataclass(frozen=True)
class TurnServer:
    """One TURN server (or several URLs of one) with static credentials or a REST secret.

    ``credential`` and ``secret`` stay out of ``repr`` so settings can be logged.
    """

    urls: tuple[str, ...]
    username: str = ""
    credential: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)


def check_turn_url(url: str) -> str:
    match = TURN_URL.fullmatch(url)
    if match is None:
        raise TurnConfigError(
            f"{url!r} is not a TURN URL (turn:HOST[:PORT][?transport=udp|tcp] or turns:…)"
        )
    scheme, _host, port, transport = match.groups()
    if port is not None and not 1 <= int(port) <= 65535:
        raise TurnConfigError(f"{url!r}: port out of range 1-65535")
    if scheme == "turns" and transport == "udp":
        # TURN over DTLS: aiortc skips it and browsers do not offer it; say so up front
        raise TurnConfigError(f"{url!r}: turns: works over TCP (TLS) only")
    return url


def check_stun_url(url: str) -> str:
    match = STUN_URL.fullmatch(url)
    if match is None:
        raise TurnConfigError(f"{url!r} is not a STUN URL (stun:HOST[:PORT] or stuns:…)")
    if match.group(1) is not None and not 1 <= int(match.group(1)) <= 65535:
        raise TurnConfigError(f"{url!r}: port out of range 1-65535")
    return url


def _text(entry: Mapping[str, Any], key: str, index: int) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str):
        raise TurnConfigError(f"server {index}: {key!r} must be a string")
    return value


def parse_turn_server(entry: Any, index: int = 1) -> TurnServer:
    """One entry: ``{"urls": URL or [URL, …], "secret": …}`` or ``… "username", "credential"``."""
    if not isinstance(entry, Mapping):
        raise TurnConfigError(f"server {index}: must be a table/object with 'urls'")
    unknown = sorted(set(entry) - TURN_KEYS)
    if unknown:
        raise TurnConfigError(f"server {index}: unknown key(s) {', '.join(unknown)}")
    raw = entry.get("urls")
    urls = [raw] if isinstance(raw, str) else raw
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise TurnConfigError(f"server {index}: 'urls' must be a URL or a non-empty list of URLs")
    try:
        checked = tuple(check_turn_url(u.strip()) for u in urls)
    except TurnConfigError as exc:
        raise TurnConfigError(f"server {index}: {exc}") from None
    username, credential = _text(entry, "username", index), _text(entry, "credential", index)
    secret = _text(entry, "secret", index)
    if secret and (username or credential):
        raise TurnConfigError(
            f"server {index}: give either 'secret' (TURN REST API) or 'username' and"
            " 'credential', not both"
        )
    if not secret and not (username and credential):
        raise TurnConfigError(
            f"server {index}: needs 'secret' (TURN REST API, coturn's static-auth-secret)"
            " or both 'username' and 'credential'"
        )
    return TurnServer(checked, username, credential, secret)


def parse_turn_servers(raw: Any) -> tuple[TurnServer, ...]:
    """The setting's value: a TOML array of tables, or (environment) a JSON array of
    objects or one object."""
    if isinstance(raw, str):
        if not raw.strip():
            return ()
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TurnConfigError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
        if isinstance(raw, dict):
            raw = [raw]
    if not isinstance(raw, list):
        raise TurnConfigError("must be a list of servers (TOML [[turn_servers]] or a JSON array)")
    return tuple(parse_turn_server(entry, i) for i, entry in enumerate(raw, 1))


def rest_credentials(secret: str, user_id: str, expiry: int) -> tuple[str, str]:
    """(username, credential) valid until EXPIRY (unix seconds) for a TURN server holding
    SECRET: draft-uberti-behave-turn-rest-00, coturn ``use-auth-secret``."""
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(
    turn: Sequence[TurnServer], stun: Sequence[str], user_id: str, expiry: int
) -> list[dict[str, Any]]:
    """WebRTC ``RTCIceServer`` dictionaries (``urls``, ``username``, ``credential``)."""
    servers: list[dict[str, Any]] = []
    for server in turn:
        if server.secret:
            username, credential = rest_credentials(server.secret, user_id, expiry)
        else:
            username, credential = server.username, server.credential
        servers.append({"urls": list(server.urls), "username": username, "credential": credential})
    if stun:
        servers.append({"urls": list(stun)})
    return servers


class IceServers:
    """What ``GET /api/ice-servers`` answers: fresh credentials per request, a few per
    minute per account (minting is cheap, but each set opens a relay for TTL seconds)."""

    def __init__(
        self,
        clock: Clock,
        turn: Sequence[TurnServer],
        stun: Sequence[str],
        *,
        ttl_seconds: int,
        policy: str,
        per_minute: int,
    ) -> None:
        self.clock = clock
        self.turn = tuple(turn)
        self.stun = tuple(stun)
        self.ttl = ttl_seconds
        self.policy = policy
        self._limiter = ActionLimiter(clock, per_minute / 60.0, per_minute)

    def for_user(self, user: User) -> dict[str, Any]:
        if not self._limiter.allow(user.id):
            # one request comes back every 1/rate seconds
            retry = 1.0 / self._limiter.rate
            raise IceServersError("rate_limited", "too many ICE server requests", retry)
        expiry = int(self.clock.now()) + self.ttl
        expiring = any(server.secret for server in self.turn)
        return {
            "iceServers": ice_servers(self.turn, self.stun, user.username, expiry),
            "iceTransportPolicy": self.policy,
            "expires_at": expiry if expiring else None,
            "ttl_seconds": self.ttl if expiring else None,
        }
