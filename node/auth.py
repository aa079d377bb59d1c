"""Passwords (argon2id), session and API tokens, and sign-in and sign-up rate limiting."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import re
import secrets
from collections import deque
from collections.abc import Sequence

import nacl.exceptions
import nacl.pwhash

from node.clock import Clock

USERNAME_RE = re.compile(r"[a-z0-9_]{1,30}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


class AuthError(ValueError):
    """Bad credentials or a malformed username/password (message is safe to show)."""


def check_username(name: object) -> str:
    if not isinstance(name, str) or not USERNAME_RE.fullmatch(name):
        raise AuthError("username must be 1-30 characters of a-z, 0-9 and _")
    return name


def check_password(password: object) -> str:
    if not isinstance(password, str):
        raise AuthError("password must be a string")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AuthError(f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    return password


def hash_password_sync(password: str) -> str:
    """argon2id with libsodium's interactive limits (about 64 MiB, a fraction of a second)."""
    return nacl.pwhash.argon2id.str(password.encode("utf-8")).decode("ascii")


def verify_password_sync(password_hash: str, password: str) -> bool:
    try:
        return bool(nacl.pwhash.verify(password_hash.encode("ascii"), password.encode("utf-8")))
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
        return False


async def hash_password(password: str) -> str:
    """Off the event loop: hashing takes long enough to stall every room otherwise."""
    return await asyncio.to_thread(hash_password_sync, password)


async def verify_password(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(verify_password_sync, password_hash, password)


# A fixed hash verified when the account does not exist, so timing does not reveal names.
_DUMMY_HASH: str | None = None


async def dummy_verify(password: str) -> None:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = await hash_password("not-a-real-password")
    await verify_password(_DUMMY_HASH, password)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Only hashes of tokens are stored: a leaked database does not leak sessions."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def address_key(ip: str) -> str:
    """The limiter key of a client address: IPv6 by its /64, as one host owns a whole /64."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return f"ip:{ip[:64]}"
    if address.version == 6:
        return f"ip:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"ip:{address}"


class AttemptLimiter:
    """At most N attempts per window under each key (a client address, an account).

    An attempt counts from the moment it starts, not when its outcome is known: with
    argon2 in a thread, 30 sign-ins sent at once would otherwise all be checked before the
    first failure was counted. A caller forgives an attempt that should not count (a
    successful sign-in). Memory stays bounded: each key holds at most N times, and keys
    whose attempts all left the window are dropped whenever the table doubles.
    """

    def __init__(self, clock: Clock, attempts: int, window: float, min_prune: int = 10_000) -> None:
        self.clock = clock
        self.attempts = attempts
        self.window = window
        self._keys: dict[str, deque[float]] = {}
        self._min_prune = min_prune
        self._prune_at = min_prune

    def _trim(self, key: str) -> deque[float]:
        q = self._keys.setdefault(key, deque())
        cutoff = self.clock.monotonic() - self.window
        while q and q[0] <= cutoff:
            q.popleft()
        return q

    def retry_after(self, keys: Sequence[str]) -> float | None:
        """Seconds until KEYS may try again, or None when an attempt is allowed now."""
        waits = []
        for key in keys:
            q = self._trim(key)
            if len(q) >= self.attempts:
                waits.append(q[0] + self.window - self.clock.monotonic())
        return max(waits) if waits else None

    def record(self, keys: Sequence[str]) -> float:
        """Count an attempt under every key now; returns its stamp for ``forgive``."""
        now = self.clock.monotonic()
        for key in keys:
            self._trim(key).append(now)
        if len(self._keys) >= self._prune_at:
            self._prune()
        return now

    def forgive(self, keys: Sequence[str], stamp: float) -> None:
        """Un-count the attempt recorded at STAMP (if it is still in the window)."""
        for key in keys:
            q = self._keys.get(key)
            if q is not None:
                with contextlib.suppress(ValueError):
                    q.remove(stamp)

    def clear(self, key: str) -> None:
        self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)

    def _prune(self) -> None:
        cutoff = self.clock.monotonic() - self.window
        self._keys = {k: q for k, q in self._keys.items() if q and q[-1] > cutoff}
        self._prune_at = max(self._min_prune, 2 * len(self._keys))
