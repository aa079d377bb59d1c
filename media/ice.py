"""Which local addresses aioice gathers host candidates on (clients and bots).

aioice (0.13) has no per-connection setting for host addresses: ``Connection.gather_candidates``
calls the module function ``aioice.ice.get_host_addresses``, which never returns 127.0.0.1.
We replace that module function once with a wrapper that reads a context variable, so the
override is scoped to the code that sets it (a test client or a bot while it offers)
instead of being a process-wide monkeypatch. ``asyncio.gather`` copies the context into
its child tasks, so the value reaches aioice's gathering.

The node itself does not gather with aioice: its sessions are ICE-lite agents on the one
media port (media/lite.py) and offer ``MediaConfig.ice_addresses``, or, when none are
configured, ``local_addresses()``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator

import aioice.ice

logger = logging.getLogger(__name__)

_ADDRESSES: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "salon_ice_addresses", default=None
)
_original: Callable[[bool, bool], list[str]] | None = None


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    wanted = _ADDRESSES.get()
    if wanted is not None:
        return list(wanted)
    assert _original is not None
    return _original(use_ipv4, use_ipv6)


def install() -> None:
    """Install the context-aware wrapper (idempotent)."""
    global _original
    if _original is not None:
        return
    current = aioice.ice.get_host_addresses
    if not callable(current):
        raise RuntimeError("aioice.ice.get_host_addresses is gone: aioice changed, see docs")
    _original = current
    aioice.ice.get_host_addresses = _host_addresses
    logger.debug("installed scoped aioice host address override")


def is_installed() -> bool:
    return aioice.ice.get_host_addresses is _host_addresses


def local_addresses() -> tuple[str, ...]:
    """This machine's IPv4 interface addresses as aioice lists them (no loopback)."""
    original = _original or aioice.ice.get_host_addresses
    return tuple(original(True, False))


@contextlib.contextmanager
def host_addresses(addresses: tuple[str, ...]) -> Iterator[None]:
    """Within this block, gather host candidates on ``addresses`` (empty = aioice default)."""
    if not addresses:
        yield
        return
    install()
    token = _ADDRESSES.set(tuple(addresses))
    try:
        yield
    finally:
        _ADDRESSES.reset(token)
