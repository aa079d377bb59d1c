"""bench/fanout.py's "remote" mode: the listeners as if on another machine.

On loopback the node's ``sendmmsg`` also runs each listener's whole UDP receive path
(the loopback "device" hands the packet to the receive softirq inline, on the sender's CPU,
in the sender's system call), so the node is charged for work that, on a real network,
runs on the listener's machine. Here the listener processes live in a network namespace
joined to this one by a veth pair, and the two machines are modelled by the two cores:

- the node (the benchmark process and all its threads) runs on CPU 0;
- the listener workers run on CPU 1;
- Receive Packet Steering on the namespace's end of the pair (its ``rx-0/rps_cpus`` = CPU 1)
  queues each packet the node sends to CPU 1's backlog, so the listeners' IP/UDP input,
  socket queueing and wake-ups run there, as they would on their own NIC's machine; RPS on
  the node's end (CPU 0) keeps what the listeners send (receiver reports, STUN) on the node's
  core, as a NIC would.

What it leaves out: a real NIC's driver and DMA (veth's transmit is a cheap in-memory
hand-over plus an IPI to the other core), the wire, and interrupt coalescing. So the node's
figure here is its own work — Python, header, SRTP, the system call down to the device's
transmit — which is what the issue's "node CPU" means when listeners are elsewhere.

Everything made here is removed on exit, also on failure: the veth pair (and with it the
RPS masks, which live on its devices), the namespace and this process's CPU affinity. No
system-wide setting is touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class RemoteNet:
    namespace: str
    node_ip: str  # this side of the pair: the node's media port and HTTP listen here
    listener_ip: str  # the workers' address inside the namespace
    node_cpu: int
    listener_cpu: int


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def _rps(namespace: str | None, device: str, cpu: int) -> None:
    """Steer DEVICE's receive processing to CPU (inside NAMESPACE when given)."""
    path = f"/sys/class/net/{device}/queues/rx-0/rps_cpus"
    mask = format(1 << cpu, "x")
    if namespace is None:
        with open(path, "w") as f:
            f.write(mask)
        return
    # /sys shows the namespace's devices only from inside it (ip netns exec remounts /sys)
    subprocess.run(
        ["ip", "netns", "exec", namespace, "sh", "-c", f"echo {mask} > {path}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    )


def unavailable() -> str | None:
    """Why the remote mode cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root to make a network namespace"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip`"
    if len(os.sched_getaffinity(0)) < 2:
        return "needs two CPUs (one for the node, one for the listeners)"
    return None


@contextlib.contextmanager
def remote_net() -> Iterator[RemoteNet]:
    """Make the namespace, the veth pair and the RPS masks; remove them afterwards.

    Raises OSError / CalledProcessError when any part cannot be made (nothing is left).
    """
    cpus = sorted(os.sched_getaffinity(0))
    tag = secrets.token_hex(3)
    prefix = f"10.218.{secrets.randbelow(250)}"
    net = RemoteNet(f"salon-fan-{tag}", f"{prefix}.1", f"{prefix}.2", cpus[0], cpus[1])
    outer, inner = f"fa{tag}", f"fb{tag}"
    _ip("netns", "add", net.namespace)
    try:
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", net.namespace)
        _ip("addr", "add", f"{net.node_ip}/30", "dev", outer)
        _ip("link", "set", outer, "up")
        _ip("-n", net.namespace, "addr", "add", f"{net.listener_ip}/30", "dev", inner)
        _ip("-n", net.namespace, "link", "set", inner, "up")
        _ip("-n", net.namespace, "link", "set", "lo", "up")
        _rps(net.namespace, inner, net.listener_cpu)
        _rps(None, outer, net.node_cpu)
        yield net
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            _ip("link", "del", outer)  # deletes its peer (and both RPS masks) too
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            _ip("netns", "del", net.namespace)


@contextlib.contextmanager
def pinned(cpu: int) -> Iterator[None]:
    """This thread (and the threads it starts) on CPU only; the old affinity afterwards."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def enter(namespace: str, cpu: int) -> None:
    """In a freshly spawned worker, before it opens any socket: join NAMESPACE, run on CPU."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({namespace}): {os.strerror(errno)}")
    finally:
        os.close(fd)
    os.sched_setaffinity(0, {cpu})


def net_rx() -> list[int]:
    """NET_RX softirqs run so far, per CPU (/proc/softirqs)."""
    with open("/proc/softirqs") as f:
        for line in f:
            name, *counts = line.split()
            if name == "NET_RX:":
                return [int(c) for c in counts]
    return []


def softirq_ticks() -> list[int]:
    """Clock ticks each CPU spent in softirqs so far (/proc/stat; tick-sampled)."""
    ticks = []
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks.append(int(fields[6]))
    return ticks


def ipis() -> list[int]:
    """Function-call interrupts so far, per CPU (RPS wakes the other CPU with one)."""
    with open("/proc/interrupts") as f:
        for line in f:
            name, *fields = line.split()
            if name == "CAL:":
                return [int(c) for c in fields[: os.cpu_count() or 1]]
    return []
