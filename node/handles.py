"""Handles as users type and see them: ``alice`` here, ``bob@other.example`` elsewhere.

One canonical form, so that the handle a room view shows is the handle every action
accepts: the name part compares case-insensitively (remote names are ASCII, see
federation/actors.py ``remote_username``), the host is lowercase ASCII (IDNA with UTS #46
mapping, so ``BÜCHER.example`` is ``xn--bcher-kva.example``) without a trailing dot, and
the port stays when it is not the scheme's default.
"""

from __future__ import annotations

import re

import idna

_HOSTNAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?")


def canonical_hostname(hostname: str) -> str:
    """HOSTNAME as federation compares it; ValueError when it is not a usable name."""
    name = hostname.removesuffix(".")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except UnicodeError as exc:  # idna.IDNAError is one
            raise ValueError(f"invalid international host name {hostname!r}: {exc}") from None
    name = name.lower()
    if not _HOSTNAME.fullmatch(name):
        raise ValueError(f"invalid host name {hostname!r}")
    return name


def split_handle(text: str) -> tuple[str, str | None]:
    """``@bob@Host:8443`` → (``bob``, ``host:8443``); ``alice`` → (``alice``, None).

    The host is the part after the last ``@``; ValueError when it is not a host name.
    """
    name, at, authority = text.strip().removeprefix("@").rpartition("@")
    if not at:
        return authority, None
    host, colon, port = authority.partition(":")
    if authority.startswith("["):  # an IPv6 literal: [::1]:8443
        host, bracket, port = authority.partition("]")
        host, colon, port = host + bracket, port[:1], port[1:]
        return name, host.lower() + (colon + port if port else "")
    return name, canonical_hostname(host) + (colon + port if port else "")
