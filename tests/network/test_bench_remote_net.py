"""bench/fanout.py's remote mode (bench/fanout_net.py): a worker placed in the namespace is
reached at its address only through the veth pair, its receive path is steered to the
other core, and everything made is gone afterwards — also when the run fails."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from fanout_net import enter, pinned, remote_net, unavailable  # noqa: E402

pytestmark = pytest.mark.timeout(60)
RPS_GLOB = "/sys/class/net/fb*/queues/rx-0/rps_cpus"  # the namespace's end of the pair


def _skip_unless_possible() -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"remote mode unavailable: {reason}")


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


def _echo_from_namespace(namespace: str, cpu: int, conn: Connection) -> None:
    """A stand-in worker: joins the namespace and core, echoes one datagram upper-cased."""
    enter(namespace, cpu)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.bind(("0.0.0.0", 0))
        inner = sock.getsockname()[1]
        conn.send((sorted(os.sched_getaffinity(0)), inner))
        data, peer = sock.recvfrom(100)
        sock.sendto(data.upper(), peer)


def test_workers_in_the_namespace_hear_the_node_through_the_pair() -> None:
    _skip_unless_possible()
    with remote_net() as net:
        steered = subprocess.run(
            ["ip", "netns", "exec", net.namespace, "sh", "-c", f"cat {RPS_GLOB}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert int(steered, 16) == 1 << net.listener_cpu  # its receive path on its own core
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_echo_from_namespace, args=(net.namespace, net.listener_cpu, child)
        )
        proc.start()
        try:
            affinity, port = parent.recv()
            assert affinity == [net.listener_cpu]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(5)
                sock.bind((net.node_ip, 0))
                # the worker's socket is in the namespace: not on this side's loopback
                sock.sendto(b"hi", (net.listener_ip, port))
                data, peer = sock.recvfrom(100)
            assert data == b"HI" and peer == (net.listener_ip, port)
        finally:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    assert net.namespace not in _namespaces()


def test_nothing_is_left_when_the_run_fails() -> None:
    _skip_unless_possible()
    before = os.sched_getaffinity(0)
    with pytest.raises(RuntimeError), remote_net() as net, pinned(net.node_cpu):
        assert os.sched_getaffinity(0) == {net.node_cpu}
        raise RuntimeError("the benchmark failed")
    assert os.sched_getaffinity(0) == before
    assert net.namespace not in _namespaces()
    tag = net.namespace.rsplit("-", 1)[1]
    assert f"fa{tag}" not in _links()
