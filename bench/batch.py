"""The fan-out call alone: CPU per listener-packet of one tick's batch, by path and by part.

No WebRTC here: N listeners are N pylibsrtp sessions (one key each) and N local UDP sockets
(as aioice binds one per connection), all sending to receiving sockets in this process that
are drained between ticks (so no receiver wakes up: the kernel's loopback receive path is
still run by the sender). Each row is thread CPU time per packet over ``--ticks`` ticks:

- python: media/batch.py ``send_batch_python`` (struct header, protect on the session's
  buffer, one ``sendto`` per packet) — the fallback, and the baseline of this benchmark;
- native: media/_fastpath.c ``send_batch`` with one socket per listener (one ``sendmmsg``
  of one message per listener: no Python per packet, the same syscalls);
- native, one socket: the same entries on one shared socket (one ``sendmmsg`` per 1024
  listeners, what the shared media port of wave 2 allows);
- header + SRTP only: the native call on a closed socket (everything but the syscall).

    .venv/bin/python bench/batch.py [--listeners 200] [--ticks 500]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pylibsrtp
from pylibsrtp._binding import ffi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media.batch import Entry, Target, load_native, pack_sockaddr, send_batch_python
from media.fanout import SrtpWriter
from media.rtp import extension_block, one_byte_element

LEVEL = b"\x9e"
PAYLOAD = bytes(80)  # ≈ an Opus voice frame at 32 kbit/s


def session() -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=os.urandom(30),
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    return pylibsrtp.Session(policy)


def build(
    listeners: int, receivers: list[socket.socket]
) -> tuple[list[Entry], list[socket.socket]]:
    elements = one_byte_element(1, b"0") + one_byte_element(2, b"\x00")
    block = extension_block(elements)
    cut = 4 + len(elements) - 1
    entries: list[Entry] = []
    senders = []
    for i in range(listeners):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.setblocking(False)
        senders.append(tx)
        rx = receivers[i % len(receivers)]
        addr = rx.getsockname()
        srtp = session()
        target = Target(
            sock=tx,
            sockaddr=pack_sockaddr(*addr),
            srtp_ctx=int(ffi.cast("uintptr_t", srtp._srtp[0])),
            first_byte=0x90,
            ssrc=i + 1,
            ext_head=block[:cut],
            has_level=True,
            ext_tail=block[cut + 1 :],
            writer=SrtpWriter(srtp),
            addr=addr,
        )
        entries.append((target, 0, 111, PAYLOAD))
    return entries, senders


def drain(receivers: list[socket.socket]) -> None:
    for rx in receivers:
        try:
            while True:
                rx.recv(2048)
        except BlockingIOError:
            pass


def timed(
    ticks: int, receivers: list[socket.socket], send: Callable[[int], object], packets: int
) -> float:
    """Thread CPU µs per packet of SEND over TICKS ticks (receivers drained between)."""
    total = 0.0
    for tick in range(ticks):
        t0 = time.thread_time()
        send(tick)
        total += time.thread_time() - t0
        drain(receivers)
    return total / ticks / packets * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--ticks", type=int, default=500)
    args = parser.parse_args()
    native = load_native()
    if native is None:
        sys.exit("media/_fastpath.c is not built: pip install -e . with gcc and python3-dev")
    receivers = []
    for _ in range(min(args.listeners, 64)):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        receivers.append(rx)
    entries, senders = build(args.listeners, receivers)
    shared = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    shared.setblocking(False)
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.close()
    one_socket = [(e[0]._replace(sock=shared), *e[1:]) for e in entries]
    no_send = [(e[0]._replace(sock=closed), *e[1:]) for e in entries]
    n, ticks = len(entries), args.ticks
    offset = [0]

    def run(batch: list[Entry], send: Callable[..., object]) -> float:
        base = offset[0]
        offset[0] += ticks  # every tick a fresh sequence number: libsrtp refuses repeats
        return timed(ticks, receivers, lambda t: send(batch, 960 * t, LEVEL, base + t), n)

    figures = {
        "python_us": run(entries, send_batch_python),
        "native_us": run(entries, native.send_batch),
        "native_one_socket_us": run(one_socket, native.send_batch),
        "header_srtp_us": run(no_send, native.send_batch),
    }
    print(f"{n} listeners, {ticks} ticks, {len(PAYLOAD)}-byte payload, thread CPU per packet:")
    for name, value in figures.items():
        print(f"  {name:22s} {value:6.2f} µs")
    for sock in [*senders, *receivers, shared]:
        sock.close()
    result = {k: round(v, 2) for k, v in figures.items()}
    result["listeners"] = n
    result["ratio_python_native"] = round(figures["python_us"] / figures["native_us"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
