"""The native batch (media/_fastpath.c) against the Python path (media/batch.py).

Same SRTP key in two pylibsrtp sessions, same entries: the datagrams a real UDP socket
receives must be byte-identical. Also: sequence wrap, marker bit, with and without the
extension block, IPv4 and IPv6, several sockets in one batch, more than one sendmmsg's worth,
per-entry errors, and EAGAIN handing the protected bytes back.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pylibsrtp
import pytest
from aiortc.rtp import RtpPacket
from media_harness import Harness, loopback_config, write_tone

from media.batch import (
    ERR_BAD_FD,
    ERR_TOO_LONG,
    BatchWriter,
    Entry,
    Failure,
    Target,
    load_native,
    pack_sockaddr,
    protect_entry,
    send_batch_python,
)
from media.engine import RoomMedia
from media.fanout import SrtpWriter
from media.rtp import extension_block, one_byte_element

pytestmark = pytest.mark.timeout(30)

native = load_native()
needs_native = pytest.mark.skipif(native is None, reason="media/_fastpath.c is not built")
KEY = os.urandom(30)
LEVEL = b"\x9e"  # V flag + 30 dBov


def srtp_session(inbound: bool = False) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=KEY,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND
        if inbound
        else pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    return pylibsrtp.Session(policy)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Receiver:
    def __init__(self, family: socket.AddressFamily = socket.AF_INET) -> None:
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, 0))
        self.sock.settimeout(2.0)
        self.addr: tuple[str, int] = self.sock.getsockname()[:2]

    def take(self, count: int) -> list[bytes]:
        return [self.sock.recv(2048) for _ in range(count)]

    def close(self) -> None:
        self.sock.close()


def sender(family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock


def target(
    sock: socket.socket,
    addr: tuple[str, int],
    session: pylibsrtp.Session,
    *,
    ssrc: int = 0x11223344,
    extension: str = "mid+level",
) -> Target:
    if extension == "none":
        head, has_level, tail = b"", False, b""
    else:
        mid = one_byte_element(1, b"0") if "mid" in extension else b""
        elements = mid + one_byte_element(2, b"\x00")
        block = extension_block(elements)
        cut = 4 + len(elements) - 1
        head, has_level, tail = block[:cut], True, block[cut + 1 :]
    return Target(
        sock=sock,
        sockaddr=pack_sockaddr(*addr),
        srtp_ctx=int(pylibsrtp._binding.ffi.cast("uintptr_t", session._srtp[0])),
        first_byte=0x90 if head else 0x80,
        ssrc=ssrc,
        ext_head=head,
        has_level=has_level,
        ext_tail=tail,
        writer=SrtpWriter(session),
        addr=addr,
    )


def entries_for(t: Target, first_seq: int, count: int) -> Iterator[Entry]:
    shared = b"\xfc" + bytes(range(70))  # the tick's shared payload object
    for i in range(count):
        marker = 0x80 if i == 0 else 0
        payload_type = 111 if i % 3 else 63  # per-entry payload type (RED would differ)
        payload = shared if i % 2 else bytes([i & 0xFF]) * (20 + i % 50)  # shared or own
        yield (t, (first_seq + i) & 0xFFFF, marker | payload_type, payload)


def run_both(
    make: list[tuple[str, int, int]], family: socket.AddressFamily = socket.AF_INET
) -> tuple[list[bytes], list[bytes]]:
    """Same entries through the native and the Python path; the datagrams each produced."""
    assert native is not None
    out: list[list[bytes]] = []
    for send in (native.send_batch, send_batch_python):
        rx = Receiver(family)
        tx = sender(family)
        session = srtp_session()
        try:
            entries: list[Entry] = []
            for extension, first_seq, count in make:
                t = target(tx, rx.addr, session, extension=extension)
                entries += entries_for(t, first_seq, count)
            failures: list[Failure] = send(entries, 0xFFFFFF00, LEVEL)
            assert failures == []
            out.append(rx.take(len(entries)))
        finally:
            rx.close()
            tx.close()
    return out[0], out[1]


CASES = [("mid+level", 65533, 6), ("level", 100, 3), ("none", 7, 4)]


@needs_native
def test_native_writes_the_python_bytes_ipv4() -> None:
    fast, slow = run_both(CASES)
    assert fast == slow
    # and they are what they claim: decrypt and parse them
    inbound = srtp_session(inbound=True)
    packets = [RtpPacket.parse(inbound.unprotect(d)) for d in fast[:6]]
    assert [p.sequence_number for p in packets] == [65533, 65534, 65535, 0, 1, 2]
    assert [p.marker for p in packets] == [1, 0, 0, 0, 0, 0]
    assert [p.payload_type for p in packets] == [63, 111, 111, 63, 111, 111]
    assert all(p.timestamp == 0xFFFFFF00 and p.ssrc == 0x11223344 for p in packets)
    assert packets[0].extensions  # a header extension block is present
    plain = [inbound.unprotect(d) for d in fast[9:]]
    assert all(p[0] == 0x80 for p in plain)  # no extension: X bit clear


@needs_native
@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_native_writes_the_python_bytes_ipv6() -> None:
    fast, slow = run_both(CASES, socket.AF_INET6)
    assert fast == slow


@needs_native
def test_groups_sockets_and_batches_past_one_sendmmsg() -> None:
    """2500 entries over two sockets (runs of both): every packet arrives, identical."""
    assert native is not None
    results = []
    for send in (native.send_batch, send_batch_python):
        rx = Receiver()
        tx1, tx2 = sender(), sender()
        session = srtp_session()
        try:
            t1 = target(tx1, rx.addr, session, ssrc=1)
            t2 = target(tx2, rx.addr, session, ssrc=2)
            entries = (
                list(entries_for(t1, 0, 1100))
                + list(entries_for(t2, 0, 3))
                + list(entries_for(t1, 1100, 1))
                + list(entries_for(t2, 3, 1396))
            )
            assert send(entries, 960, LEVEL) == []
            got = rx.take(len(entries))
            # the socket's source port tells which socket sent it; order within one holds
            results.append(sorted(got))
        finally:
            rx.close()
            tx1.close()
            tx2.close()
    assert results[0] == results[1]


@needs_native
def test_per_entry_errors_do_not_stop_the_batch() -> None:
    assert native is not None
    rx = Receiver()
    tx, closed = sender(), sender()
    closed.close()
    session = srtp_session()
    try:
        good = target(tx, rx.addr, session)
        v6 = good._replace(sockaddr=pack_sockaddr("::1", rx.addr[1]))  # wrong family
        entries: list[Entry] = [
            (good, 1, 111, b"a" * 20),
            (good._replace(sock=closed), 2, 111, b"b"),  # closed socket
            (good, 3, 111, b"c" * 2000),  # longer than the SRTP buffer
            (v6, 4, 111, b"d"),
            (good, 5, 111, b"e" * 20),
        ]
        failures = native.send_batch(entries, 0, LEVEL)
        codes = {index: code for index, code, _ in failures}
        assert codes[1] == ERR_BAD_FD
        assert codes[2] == ERR_TOO_LONG
        assert codes[3] > 0  # an errno from sendmmsg (EAFNOSUPPORT or EINVAL)
        assert set(codes) == {1, 2, 3}
        inbound = srtp_session(inbound=True)
        got = [RtpPacket.parse(inbound.unprotect(d)) for d in rx.take(2)]
        assert [p.sequence_number for p in got] == [1, 5]
        # the Python path (with a fresh twin session: libsrtp refuses a repeated index)
        fresh = SrtpWriter(srtp_session())
        twins: list[Entry] = [(e[0]._replace(writer=fresh), *e[1:]) for e in entries]
        python = send_batch_python(twins, 0, LEVEL)
        # (it sends to the address tuple, so the mismatched sockaddr is the native's alone)
        assert {i for i, _, _ in python} == {1, 2}
    finally:
        rx.close()
        tx.close()


@needs_native
def test_eagain_returns_the_protected_packets() -> None:
    """A full socket: unsent entries come back with the bytes the Python path would send."""
    assert native is not None
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    twin_tx = srtp_session()
    try:
        t = target(a, ("127.0.0.1", 9), srtp_session())._replace(sockaddr=b"")
        twin = t._replace(writer=SrtpWriter(twin_tx))
        entries = list(entries_for(t, 0, 3000))
        failures = native.send_batch(entries, 0, LEVEL)
        assert failures, "the unix socket queue should have filled up"
        assert all(code in (errno.EAGAIN, errno.ENOBUFS) for _, code, _ in failures)
        first = failures[0][0]
        assert [i for i, _, _ in failures] == list(range(first, 3000))
        received = 0
        b.setblocking(False)
        while True:
            try:
                b.recv(2048)
            except BlockingIOError:
                break
            received += 1
        assert received == first
        for index, _, data in failures[:50]:
            twin_entry = (twin, *entries[index][1:])
            assert data == bytes(protect_entry(twin_entry, 0, LEVEL))
    finally:
        a.close()
        b.close()


def test_python_path_without_the_extension() -> None:
    """The fallback alone (no C): the reference writes decryptable, well-formed packets."""
    rx = Receiver()
    tx = sender()
    try:
        t = target(tx, rx.addr, srtp_session())._replace(sockaddr=b"")
        assert send_batch_python(list(entries_for(t, 65535, 2)), 5, LEVEL) == []
        inbound = srtp_session(inbound=True)
        got = [RtpPacket.parse(inbound.unprotect(d)) for d in rx.take(2)]
        assert [(p.sequence_number, p.marker) for p in got] == [(65535, 1), (0, 0)]
    finally:
        rx.close()
        tx.close()


async def test_room_fans_out_in_batches_and_counts_truthfully(tmp_path: Path) -> None:
    """A live room: the listeners hear the batch, and sender reports count what was sent."""
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        bots = [await h.join(name) for name in ("bob", "carol")]
        await asyncio.sleep(1.5)
        room = h.room
        assert isinstance(room, RoomMedia)
        assert room._writer.native == (native is not None and loopback_config().native_fanout)
        for name, bot in zip(("bob", "carol"), bots, strict=True):
            session = room.session(name)
            assert session is not None and session.downlink is not None
            downlink = session.downlink
            assert downlink.send_errors == 0
            assert downlink.packets > 40
            # every packet written arrived (the last tick's may still be in flight)
            assert downlink.packets - 2 <= bot.packets_received <= downlink.packets
            assert session.transceiver is not None
            sender = session.transceiver.sender
            counted = sender._RTCRtpSender__packet_count  # type: ignore[attr-defined]
            assert 0 < counted <= downlink.packets  # synced once a second
    finally:
        await h.close()


def test_without_the_extension_the_writer_takes_the_python_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failed build (no module) is not an error: the room writes through Python."""
    import importlib

    import media.batch as batch

    def missing(name: str) -> object:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(batch, "_native", None)
    monkeypatch.setattr(batch, "_native_loaded", False)
    monkeypatch.setattr(importlib, "import_module", missing)
    writer = BatchWriter(native=True)
    assert not writer.native and writer.send_batch is send_batch_python
    assert pack_sockaddr("127.0.0.1", 9) == b""


class Owner:
    """Records what a batch hands back (a Downlink's ``unsent``)."""

    def __init__(self) -> None:
        self.unsent_calls: list[tuple[Entry, int, bytes | None]] = []

    def unsent(self, entry: Entry, code: int, data: bytes | None) -> None:
        self.unsent_calls.append((entry, code, data))


def test_writer_hands_each_failure_to_its_owner() -> None:
    writer = BatchWriter(native=native is not None)
    rx = Receiver()
    tx, closed = sender(), sender()
    closed.close()
    try:
        good = target(tx, rx.addr, srtp_session())
        entries: list[Entry] = [
            (good, 1, 111, b"a"),
            (good._replace(sock=closed), 2, 111, b"b"),
            (good, 3, 111, b"c" * 2000),
        ]
        owners = [Owner(), Owner(), Owner()]
        writer.send(entries, owners, 0, LEVEL)  # type: ignore[arg-type]
        assert owners[0].unsent_calls == []
        assert owners[1].unsent_calls[0][0] is entries[1]
        assert owners[2].unsent_calls == [(entries[2], ERR_TOO_LONG, None)]
        assert len(rx.take(1)) == 1
    finally:
        rx.close()
        tx.close()
