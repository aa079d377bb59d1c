"""A network namespace joined to this one by a veth pair, for browsers with real host addresses.

A browser on loopback offers no loopback candidate; in a namespace its only interface is
one end of a veth pair, so its (mDNS-hidden) host candidate is a routable address the node
reaches: the case of a browser on another machine of the same network. The addresses and
the namespace exist only for the test; the namespace has no other route, so the browser
inside cannot reach anything but the node.
"""

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
class Namespace:
    name: str
    host_ip: str  # this side of the veth pair: the node listens here
    inner_ip: str  # the browser's address inside the namespace

    def command(self, *argv: str) -> list[str]:
        """ARGV run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@contextlib.contextmanager
def network_namespace() -> Iterator[Namespace]:
    """Make the namespace and veth pair (10.219.N.0/30), remove both afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2's `ip` to make a network namespace")
    tag = secrets.token_hex(3)
    subnet = 4 * secrets.randbelow(64)
    prefix = f"10.219.{secrets.randbelow(250)}"
    ns = Namespace(f"salon-{tag}", f"{prefix}.{subnet + 1}", f"{prefix}.{subnet + 2}")
    outer, inner = f"sa{tag}", f"sb{tag}"
    try:
        _ip("netns", "add", ns.name)
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"cannot make a network namespace here: {getattr(exc, 'stderr', exc)}")
    try:
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns.name)
        # No IPv6 link-local address on either end: its duplicate-address detection ends a
        # second or two after the link comes up, and a Chromium already running in the
        # namespace takes that address change for a network change and fails every
        # request in flight (net::ERR_NETWORK_CHANGED).
        _ip("link", "set", outer, "addrgenmode", "none")
        _ip("-n", ns.name, "link", "set", inner, "addrgenmode", "none")
        _ip("addr", "add", f"{ns.host_ip}/30", "dev", outer)
        _ip("link", "set", outer, "up")
        _ip("-n", ns.name, "addr", "add", f"{ns.inner_ip}/30", "dev", inner)
        _ip("-n", ns.name, "link", "set", inner, "up")
        _ip("-n", ns.name, "link", "set", "lo", "up")
        yield ns
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            _ip("link", "del", outer)  # deletes its peer too
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            _ip("netns", "del", ns.name)


def drop_udp(ns: Namespace) -> None:
    """Inside NS only, drop every UDP datagram in and out (nftables): a network that lets
    nothing but TCP through, as some corporate firewalls do."""
    if shutil.which("nft") is None:
        pytest.skip("needs nftables' `nft` to drop UDP in the namespace (apt-get install nftables)")
    chain = "type filter hook {} priority 0; policy accept; meta l4proto udp drop;"
    rules = (
        "table inet salon_no_udp {\n"
        f"  chain in {{ {chain.format('input')} }}\n"
        f"  chain out {{ {chain.format('output')} }}\n"
        "}\n"
    )
    try:
        subprocess.run(
            ns.command("nft", "-f", "-"),
            input=rules,
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"cannot add an nftables rule in the namespace: {getattr(exc, 'stderr', exc)}")
