"""A media worker's ports (issue 15): the UDP and ICE-TCP ports a worker is given, from
`salon media-worker --media-port/--media-tcp-port` and for a node's local children."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.worker import WorkerSetupError, options_from_env
from node.workers.local import LocalWorkers

SOCKET = "/run/salon/bus"


def _ports(node_udp: int, node_tcp: int, slot: int) -> tuple[str, str]:
    workers = LocalWorkers(
        2, "http://127.0.0.1:8080", "s" * 16, "127.0.0.1",
        socket_path=Path(SOCKET),
        media_port=node_udp, media_tcp_port=node_tcp,
    )  # fmt: skip
    args = workers._args(slot)
    return args[args.index("--media-port") + 1], args[args.index("--media-tcp-port") + 1]


@pytest.mark.timeout(5)
def test_local_children_take_the_ports_after_the_nodes() -> None:
    assert _ports(40000, 40100, 0) == ("40001", "40101")
    assert _ports(40000, 40100, 1) == ("40002", "40102")
    assert _ports(0, 0, 1) == ("0", "0")  # any free port
    assert _ports(40000, 0, 1) == ("40002", "0")


@pytest.mark.timeout(5)
def test_worker_options_check_the_tcp_port() -> None:
    options = options_from_env("http://n", "", Path(SOCKET), "a", 0, 7)
    assert (options.media_port, options.media_tcp_port) == (0, 7)
    assert options_from_env("http://n", "redis://r", None, "a", 0).media_tcp_port == 0
    for bad in (-1, 65536):
        with pytest.raises(WorkerSetupError, match=r"^--media-tcp-port must be 0-65535$"):
            options_from_env("http://n", "redis://r", None, "a", 0, bad)
