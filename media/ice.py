"""Which local addresses and UDP ports aioice gathers host candidates on.

aioice (0.13) has no per-connection setting for host addresses: ``Connection.gather_candidates``
calls the module function ``aioice.ice.get_host_addresses``, which never returns 127.0.0.1.
We replace that module function once with a wrapper that reads a context variable, so the
override is scoped to the code that sets it (a node's session while it answers, a test
client while it offers) instead of being a process-wide monkeypatch. ``asyncio.gather``
copies the context into its child tasks, so the value reaches aioice's gathering.

Ports work the same way: aioice binds each host candidate with
``loop.create_datagram_endpoint(..., local_addr=(address, 0))`` (an ephemeral port). Within
``host_addresses(..., ports=(low, high))`` a wrapper on the running loop turns a port-0 bind
into the first free port of the range (from a random start), so a firewall can open just
that range. Outside such a block the wrapper passes every call through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import logging
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import aioice.ice

logger = logging.getLogger(__name__)

_ADDRESSES: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "salon_ice_addresses", default=None
)
_original: Callable[[bool, bool], list[str]] | None = None
_PORTS: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "salon_ice_ports", default=None
)


class PortRangeExhausted(OSError):
    """Every port of the configured ICE range is in use."""


def _wrap_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Give LOOP a create_datagram_endpoint that honours the scoped port range (once)."""
    if getattr(loop, "_salon_port_range", False):
        return
    original = loop.create_datagram_endpoint

    async def create_datagram_endpoint(*args: Any, **kwargs: Any) -> Any:
        ports = _PORTS.get()
        local = kwargs.get("local_addr")
        if ports is None or not isinstance(local, tuple) or local[1] != 0:
            return await original(*args, **kwargs)
        low, high = ports
        span = high - low + 1
        start = secrets.randbelow(span)
        for step in range(span):
            kwargs["local_addr"] = (local[0], low + (start + step) % span)
            try:
                return await original(*args, **kwargs)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
        logger.warning("ice: no free UDP port in %d-%d (raise ice_port_max?)", low, high)
        raise PortRangeExhausted(errno.EADDRINUSE, f"no free UDP port in {low}-{high}")

    loop.create_datagram_endpoint = create_datagram_endpoint  # type: ignore[method-assign]
    loop._salon_port_range = True  # type: ignore[attr-defined]


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


@contextlib.contextmanager
def host_addresses(
    addresses: tuple[str, ...], ports: tuple[int, int] | None = None
) -> Iterator[None]:
    """Within this block, gather host candidates on ``addresses`` (empty = aioice default)
    and, when PORTS is given, bind them to ports in that inclusive range."""
    tokens: list[Callable[[], None]] = []
    if addresses:
        install()
        token = _ADDRESSES.set(tuple(addresses))
        tokens.append(lambda: _ADDRESSES.reset(token))
    if ports is not None:
        _wrap_loop(asyncio.get_running_loop())
        port_token = _PORTS.set(ports)
        tokens.append(lambda: _PORTS.reset(port_token))
    try:
        yield
    finally:
        for reset in reversed(tokens):
            reset()
