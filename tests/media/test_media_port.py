"""The one media port: many sessions and trunks on one UDP socket, and what it refuses.

Real parts only: aiortc bots (full ICE agents) talk to the node's ICE-lite sessions over
loopback; strangers are raw sockets sending what an attacker or a scanner would.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
import time
from pathlib import Path

import pytest
from aioice import ConnectionClosed, stun
from aiortc.mediastreams import MediaStreamError
from media_harness import LOOPBACK, Harness, band_energy, write_tone
from nacl.public import PrivateKey

from media.client import BotPeer
from media.engine import MediaConfig, MediaEngine, RoomMedia, SendToParticipant
from media.fanout import IdleTrack
from media.lite import QUEUE_LIMIT, LiteConnection
from media.port import MAX_PENDING_TCP, MAX_TCP_FRAME, TCP_AUTH_SECONDS, MediaPort
from media.relay import OriginTrunk, RelayRoom

pytestmark = pytest.mark.timeout(90)


def process_udp_ports() -> set[int]:
    """Local ports of every UDP socket this process holds (from /proc)."""
    inodes: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def bot_ports(bot: BotPeer) -> set[int]:
    """The UDP ports a bot's aioice agent gathered on (the client's own sockets)."""
    ports: set[int] = set()
    for transceiver in bot.pc.getTransceivers():
        connection = transceiver.sender.transport.transport._connection
        for protocol in connection._protocols:
            ports.add(int(protocol.transport.get_extra_info("sockname")[1]))
    return ports


async def heard_tone(bot: BotPeer, freq: float, other: float, timeout: float = 20.0) -> None:
    """Poll until BOT's last second of audio is FREQ and not OTHER (load-independent)."""
    deadline = time.monotonic() + timeout
    while True:
        heard = bot.heard_since(time.monotonic() - 1.0)
        if len(heard) > 0.5 * 48_000 and band_energy(heard, freq) > 0.8:
            assert band_energy(heard, other) < 0.01
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no {freq} Hz heard (got {len(heard)} samples)")
        await asyncio.sleep(0.1)


async def test_sessions_of_two_rooms_and_two_trunks_share_one_port(tmp_path: Path) -> None:
    """Node X hosts rooms at 440 Hz and 880 Hz (3 bots each); node Y relays both rooms to
    one listener each. X's six sessions and two trunk ends are on X's one UDP port, Y's
    two sessions and two trunk ends on Y's; everyone hears their own room only."""
    x = MediaEngine(MediaConfig(ice_addresses=LOOPBACK))
    y = MediaEngine(MediaConfig(ice_addresses=LOOPBACK))
    await x.start()
    await y.start()
    rooms = {"low": 440.0, "high": 880.0}
    origin = {name: Harness(engine=x, room_id=name) for name in rooms}
    relays: dict[str, Harness] = {}
    trunks: list[OriginTrunk] = []
    try:
        for trunk_id, name in enumerate(rooms, start=100):
            a_key, b_key = PrivateKey.generate(), PrivateKey.generate()
            room = origin[name].room
            assert isinstance(room, RoomMedia)
            trunks.append(OriginTrunk(room, trunk_id, a_key, b_key.public_key, x.port))

            def make(
                send: SendToParticipant,
                engine: MediaEngine,
                trunk_id: int = trunk_id,
                b_key: PrivateKey = b_key,
                a_key: PrivateKey = a_key,
                name: str = name,
            ) -> RelayRoom:
                return RelayRoom(
                    name,
                    MediaConfig(ice_addresses=LOOPBACK),
                    send,
                    trunk_id,
                    b_key,
                    a_key.public_key,
                    engine.port,
                    ("127.0.0.1", x.port.udp_port),
                )

            relays[name] = Harness(make, engine=y)
        bots: dict[str, list[BotPeer]] = {}
        for name, freq in rooms.items():
            h = origin[name]
            speaker = await h.join(
                f"{name}-s", play=write_tone(tmp_path / f"{name}.wav", freq), can_speak=True
            )
            bots[name] = [speaker, await h.join(f"{name}-1"), await h.join(f"{name}-2")]
            bots[name].append(await relays[name].join(f"{name}-far"))
        for name, freq in rooms.items():
            other = rooms["high" if name == "low" else "low"]
            for bot in bots[name][1:]:
                await heard_tone(bot, freq, other)

        # every node-side session is an ICE-lite agent on its engine's one port ...
        for engine, harnesses in ((x, origin.values()), (y, relays.values())):
            for h in harnesses:
                for participant in h.room.participants:
                    session = h.room.session(participant)
                    assert session is not None and session.transceiver is not None
                    connection = session.transceiver.sender.transport.transport._connection
                    assert isinstance(connection, LiteConnection)
                    assert connection.port is engine.port
        assert x.port.sessions == 6 and y.port.sessions == 2
        # ... and the process holds no other UDP socket than the bots' own and those two
        clients = set().union(*(bot_ports(b) for group in bots.values() for b in group))
        assert process_udp_ports() - clients == {x.port.udp_port, y.port.udp_port}
        assert all(t.packets_received > 0 and t.peer is not None for t in trunks)
    finally:
        for h in [*relays.values(), *origin.values()]:
            await h.close()
        for trunk in trunks:
            await trunk.close()
        await x.close_port()
        await y.close_port()


def _request(username: str, key: bytes, *, nominate: bool = False) -> stun.Message:
    message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    message.attributes["USERNAME"] = username
    message.attributes["PRIORITY"] = 1853817087
    message.attributes["ICE-CONTROLLING"] = 1
    if nominate:
        message.attributes["USE-CANDIDATE"] = None
    message.add_message_integrity(key)  # adds FINGERPRINT too
    return message


def _answered(sock: socket.socket) -> bytes | None:
    try:
        return sock.recv(2048)
    except TimeoutError:
        return None


async def _stranger_sends(sock: socket.socket, data: bytes, port: MediaPort) -> bytes | None:
    sock.sendto(data, ("127.0.0.1", port.udp_port))
    return await asyncio.to_thread(_answered, sock)


async def test_strangers_are_dropped_and_sessions_go_on(tmp_path: Path) -> None:
    h = Harness()
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    stranger.settimeout(0.5)
    try:
        await h.join("host", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        listener = await h.join("bob")
        port = h.engine.port
        session = h.room.session("bob")
        assert session is not None and session.transceiver is not None
        connection = session.transceiver.sender.transport.transport._connection
        assert isinstance(connection, LiteConnection) and connection.remote_username
        ufrag = connection.local_username
        right = f"{ufrag}:{connection.remote_username}"
        dropped = port.stats.dropped

        # an unknown ufrag, a known one with the wrong password: no answer, counted
        unknown = _request("nobody:x", b"p" * 22)
        assert await _stranger_sends(stranger, bytes(unknown), port) is None
        assert dropped["stun_unknown_ufrag"] == 1
        forged = _request(right, b"not-the-password-at-all", nominate=True)
        assert await _stranger_sends(stranger, bytes(forged), port) is None
        assert dropped["stun_bad_integrity"] == 1
        # a DTLS record (content type 22, handshake) and an SRTP-looking packet from an
        # address no valid check came from, and bytes of no protocol: dropped, counted
        dtls = bytes([22, 0xFE, 0xFD]) + bytes(10) + b"\x00\x10" + os.urandom(16)
        assert await _stranger_sends(stranger, dtls, port) is None
        rtp = bytes([0x80, 111]) + os.urandom(40)
        assert await _stranger_sends(stranger, rtp, port) is None
        assert dropped["unbound"] == 2
        assert await _stranger_sends(stranger, b"\xffGET / HTTP/1.1\r\n", port) is None
        assert await _stranger_sends(stranger, b"", port) is None
        assert dropped["garbage"] == 1
        # nobody moved: bob's path is where it was, and he still hears the room
        assert connection.selected is not None
        assert connection.selected.addr != stranger.getsockname()
        before = listener.packets_received
        deadline = time.monotonic() + 10
        while listener.packets_received < before + 25:
            assert time.monotonic() < deadline, "bob stopped receiving"
            await asyncio.sleep(0.05)

        # the same request with the right password is answered (and would bind)
        good = _request(right, connection.local_password.encode())
        answer = await _stranger_sends(stranger, bytes(good), port)
        assert answer is not None
        response = stun.parse_message(answer)
        assert response.message_class == stun.Class.RESPONSE
        assert response.check_message_integrity(connection.local_password.encode())
        assert response.attributes["XOR-MAPPED-ADDRESS"] == stranger.getsockname()
    finally:
        stranger.close()
        await h.close()


async def _frame(reader: asyncio.StreamReader) -> bytes:
    length = int.from_bytes(await reader.readexactly(2), "big")
    return await reader.readexactly(length)


def _framed(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


async def test_ice_tcp_binds_by_stun_and_carries_the_downlink(tmp_path: Path) -> None:
    """RFC 4571 framing on the TCP port: a connection is refused until its first frame is
    a valid Binding request; once one nominates, the session's audio leaves on it."""
    h = Harness()
    try:
        await h.join("host", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        await h.join("bob")
        port = h.engine.port
        assert port.tcp_port and port.tcp_port != 0
        session = h.room.session("bob")
        assert session is not None and session.transceiver is not None
        connection = session.transceiver.sender.transport.transport._connection
        assert isinstance(connection, LiteConnection)
        candidates = [c for c in connection.local_candidates if c.transport == "tcp"]
        assert [(c.port, c.tcptype) for c in candidates] == [(port.tcp_port, "passive")]
        dropped = port.stats.dropped

        # garbage first, an oversized frame, a DTLS record first: each connection closed
        for opening in (
            b"\x00\x05hello",
            (MAX_TCP_FRAME + 1).to_bytes(2, "big") + bytes(8),
            _framed(bytes([22, 0xFE, 0xFD]) + bytes(20)),
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port.tcp_port)
            writer.write(opening)
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no answer
            writer.close()
        assert dropped["tcp_no_stun"] == 3

        # a valid nominating request binds this connection; the downlink moves to it
        reader, writer = await asyncio.open_connection("127.0.0.1", port.tcp_port)
        right = f"{connection.local_username}:{connection.remote_username}"
        writer.write(
            _framed(bytes(_request(right, connection.local_password.encode(), nominate=True)))
        )
        await writer.drain()
        response = stun.parse_message(await asyncio.wait_for(_frame(reader), 5))
        assert response.message_class == stun.Class.RESPONSE
        assert connection.selected is not None and connection.selected.protocol == "tcp"
        assert session.downlink is not None and session.downlink.udp_route() is None
        srtp = 0
        while srtp < 10:
            data = await asyncio.wait_for(_frame(reader), 5)
            srtp += 128 <= data[0] < 192
        writer.close()
    finally:
        await h.close()


class _StunServer(asyncio.DatagramProtocol):
    """A STUN server that says every client is 203.0.113.7 (a 1:1 NAT's public side)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = stun.parse_message(data)
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=request.transaction_id,
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = ("203.0.113.7", addr[1])
        self.transport.sendto(bytes(response), addr)


async def test_stun_server_tells_the_public_address_every_session_offers(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    server, _ = await loop.create_datagram_endpoint(_StunServer, local_addr=("127.0.0.1", 0))
    port = server.get_extra_info("sockname")[1]
    engine = MediaEngine(
        MediaConfig(ice_addresses=LOOPBACK, stun_servers=(f"stun:127.0.0.1:{port}",))
    )
    h = Harness(engine=engine)
    try:
        await engine.start()
        assert engine.port.public_addresses == ("203.0.113.7",)
        await h.join("bob")
        session = h.room.session("bob")
        assert session is not None and session.pc.localDescription is not None
        sdp = session.pc.localDescription.sdp
        assert f"203.0.113.7 {engine.port.udp_port} typ host" in sdp
        assert f"127.0.0.1 {engine.port.udp_port} typ host" in sdp
        assert "a=ice-lite" in sdp
    finally:
        await h.close()
        server.close()


async def test_a_silent_client_is_closed(tmp_path: Path) -> None:
    """No consent checks, no RTCP, nothing: the ICE-lite session fails and is removed."""
    engine = MediaEngine(MediaConfig(ice_addresses=LOOPBACK, silence_timeout=1.5))
    h = Harness(engine=engine)
    try:
        bob = await h.join("bob")
        assert h.room.session("bob") is not None
        # bob's machine vanishes: its sockets close without a word to the node
        for transceiver in bob.pc.getTransceivers():
            for protocol in transceiver.sender.transport.transport._connection._protocols:
                protocol.transport.close()
        deadline = time.monotonic() + 15
        while h.room.session("bob") is not None:
            assert time.monotonic() < deadline, "the silent session was kept"
            await asyncio.sleep(0.1)
        assert engine.port.sessions == 0
    finally:
        await h.close()


async def test_unauthenticated_tcp_connections_are_capped_and_timed_out() -> None:
    port = MediaPort("127.0.0.1", 0, 0)
    await port.start()
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(MAX_PENDING_TCP):
            opened.append(await asyncio.open_connection("127.0.0.1", port.tcp_port))
        deadline = time.monotonic() + 10
        while port.pending_tcp < MAX_PENDING_TCP:  # the server has taken them all
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        # one more, while all those wait: closed at once, without waiting for a frame
        reader, writer = await asyncio.open_connection("127.0.0.1", port.tcp_port)
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        assert port.stats.dropped["tcp_too_many_pending"] == 1
        # the silent ones are closed after TCP_AUTH_SECONDS
        first_reader, _ = opened[0]
        assert await asyncio.wait_for(first_reader.read(), TCP_AUTH_SECONDS + 5) == b""
        deadline = time.monotonic() + 5
        while port.stats.dropped["tcp_no_stun"] < MAX_PENDING_TCP:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert port.pending_tcp == 0
    finally:
        for _, w in opened:
            w.close()
        await port.close()


async def test_an_ice_lite_session_queues_without_deques() -> None:
    """LiteConnection's datagram queue and nomination: same behaviour as an asyncio.Queue
    and Event (order, limit, close wakes the reader), but an idle session holds neither a
    deque nor a queue list (each asyncio.Queue/Event made a ≈ 0.7 KB deque block per listener)."""
    port = MediaPort("127.0.0.1", 0, 0)
    lite = LiteConnection(port, ("127.0.0.1",))
    held = [type(v) for v in vars(lite).values()]
    assert not {asyncio.Queue, asyncio.Event, collections.deque} & set(held), held
    assert not isinstance(lite._queue, list)
    path = object()
    reader = asyncio.ensure_future(lite.recv())
    await asyncio.sleep(0)
    lite.data_received(b"one", path)  # type: ignore[arg-type]
    lite.data_received(b"two", path)  # type: ignore[arg-type]
    assert await reader == b"one" and await lite.recv() == b"two"
    assert not isinstance(lite._queue, list)  # emptied: the list is gone again
    for i in range(QUEUE_LIMIT + 3):
        lite.data_received(bytes([i % 256]), path)  # type: ignore[arg-type]
    assert lite.dropped == 3
    for _ in range(QUEUE_LIMIT):
        await lite.recv()
    await lite.gather_candidates()  # registers on the port and arms the watchdog
    # nomination: connect() returns once the client nominated a path
    lite.remote_username, lite.remote_password = "u", "p"
    connecting = asyncio.ensure_future(lite.connect())
    await asyncio.sleep(0)
    assert not connecting.done()
    lite.binding(path, nominated=True)  # type: ignore[arg-type]
    await connecting
    assert lite.selected is path
    # the silence watchdog is a timer, not a task per session
    assert isinstance(lite._watchdog, asyncio.TimerHandle)
    # aiortc's monitor waits for the close event; a cancelled wait does not lose it
    monitor = asyncio.ensure_future(lite.get_event())
    await asyncio.sleep(0)
    monitor.cancel()
    monitor = asyncio.ensure_future(lite.get_event())
    # close wakes a pending reader with ConnectionError, and the monitor
    reader = asyncio.ensure_future(lite.recv())
    await asyncio.sleep(0)
    await lite.close()
    with pytest.raises(ConnectionError):
        await reader
    assert isinstance(await monitor, ConnectionClosed)
    assert lite._watchdog is None or lite._watchdog.cancelled()


async def test_idle_track_holds_no_event_and_ends_on_stop() -> None:
    track = IdleTrack()
    assert not isinstance(track._stopped, asyncio.Event)
    cancelled = asyncio.ensure_future(track.recv())  # a waiter that goes away first
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    assert not pending.done()
    track.stop()
    with pytest.raises(MediaStreamError):
        await pending
    with pytest.raises(MediaStreamError):
        await track.recv()
