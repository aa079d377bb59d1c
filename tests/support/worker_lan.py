"""Workers "on other machines": a bridge and one network namespace per worker, made by the
test and removed afterwards. Each namespace's only interface is one end of a veth pair whose
other end is on the bridge, so the node's side (the bridge's address) and every worker have
their own addresses on one LAN, and nothing else is reachable from inside."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Lan:
    host_ip: str  # the bridge's address: the node's side (Redis, clients)
    namespaces: tuple[tuple[str, str], ...]  # (namespace, its address)

    def exec_prefix(self, index: int) -> list[str]:
        return ["ip", "netns", "exec", self.namespaces[index][0]]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@contextlib.contextmanager
def worker_lan(count: int) -> Iterator[Lan]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2's `ip` to make network namespaces")
    tag = secrets.token_hex(3)
    prefix = f"10.218.{secrets.randbelow(250)}"
    bridge = f"sw{tag}"
    made: list[str] = []
    links: list[str] = []
    try:
        try:
            _ip("link", "add", bridge, "type", "bridge")
        except (subprocess.CalledProcessError, OSError) as exc:
            pytest.skip(f"cannot make a bridge here: {getattr(exc, 'stderr', exc)}")
        _ip("addr", "add", f"{prefix}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        spaces = []
        for index in range(count):
            name, outer, inner = f"salonw-{tag}-{index}", f"wo{tag}{index}", f"wi{tag}{index}"
            address = f"{prefix}.{index + 2}"
            _ip("netns", "add", name)
            made.append(name)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            links.append(outer)
            _ip("link", "set", inner, "netns", name)
            _ip("link", "set", outer, "master", bridge)
            _ip("link", "set", outer, "up")
            _ip("-n", name, "addr", "add", f"{address}/24", "dev", inner)
            _ip("-n", name, "link", "set", inner, "up")
            _ip("-n", name, "link", "set", "lo", "up")
            spaces.append((name, address))
        yield Lan(f"{prefix}.1", tuple(spaces))
    finally:
        for link in links:
            with contextlib.suppress(subprocess.CalledProcessError, OSError):
                _ip("link", "del", link)
        for name in made:
            with contextlib.suppress(subprocess.CalledProcessError, OSError):
                _ip("netns", "del", name)
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            _ip("link", "del", bridge)
