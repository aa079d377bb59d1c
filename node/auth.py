"""Passwords (argon2id), session and API tokens, and sign-in rate limiting."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections import deque

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


class SigninLimiter:
    """At most N failed sign-ins per window, counted per client IP and per account."""

    def __init__(self, clock: Clock, attempts: int, window: float) -> None:
        self.clock = clock
        self.attempts = attempts
        self.window = window
        self._keys: dict[str, deque[float]] = {}

    def _trim(self, key: str) -> deque[float]:
        q = self._keys.setdefault(key, deque())
        cutoff = self.clock.monotonic() - self.window
        while q and q[0] <= cutoff:
            q.popleft()
        return q

    def retry_after(self, keys: list[str]) -> float | None:
        """Seconds until KEYS may try again, or None when allowed."""
        waits = []
        for key in keys:
            q = self._trim(key)
            if len(q) >= self.attempts:
                waits.append(q[0] + self.window - self.clock.monotonic())
        if len(self._keys) > 100_000:
            self._keys = {k: v for k, v in self._keys.items() if v}
        return max(waits) if waits else None

    def failed(self, keys: list[str]) -> None:
        now = self.clock.monotonic()
        for key in keys:
            self._trim(key).append(now)

    def succeeded(self, account_key: str) -> None:
        self._keys.pop(account_key, None)
