"""The node's one media port: a UDP socket (and a TCP listener) for every session and trunk.

Every WebRTC session of the node and every relay trunk (both ends) share one UDP socket;
clients that cannot use UDP reach the same sessions over one TCP port (RFC 6544 passive
ICE-TCP candidates, RFC 4571 framing). Datagrams are told apart by their first byte
(RFC 7983 §7, with RFC 9443's update)::

    0-3      STUN                  -> the session named by USERNAME (its local ufrag)
    20-63    DTLS                  -> the session bound to the sender's address
    128-191  RTP/RTCP (SRTP)       -> the session bound to the sender's address
    8        Salon relay trunk     -> the trunk named by its id (media/trunk.py)
    other    dropped               (counted)

An address (or a TCP connection) is bound to a session only by a STUN Binding request
whose USERNAME names the session and whose MESSAGE-INTEGRITY (HMAC-SHA1 with the session's
ICE password) and FINGERPRINT verify (RFC 8489 §9.1.3, §14.7; RFC 8445 §7.3). Until then
DTLS and RTP from that address are dropped. Requests that fail are dropped without an
answer (a lite agent owes an unauthenticated sender nothing, and an answer would help
scanning). The sessions themselves are ICE-lite agents (media/lite.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import string
import struct
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

from aioice import stun

from media.dtls import DtlsIdentity
from media.meter import FanoutMeter
from media.trunk import MARKER as TRUNK_MARKER

logger = logging.getLogger(__name__)

Address = tuple[str, int]
MAX_TCP_FRAME = 4096  # RFC 4571 allows 65535; DTLS flights and audio stay far below
MAX_PENDING_TCP = 64  # TCP connections that have not yet sent a valid STUN request
TCP_AUTH_SECONDS = 5.0  # … and how long each may take to send it
TCP_WRITE_BUFFER = 256 * 1024  # a stream this far behind drops audio instead of queueing
MAX_PATHS_PER_SESSION = 8  # remote addresses one session may have bound at once
ICE_CHARS = string.ascii_letters + string.digits  # a subset of RFC 8839 ice-char


class Peer(Protocol):
    """What the port needs from a session (media/lite.py ``LiteConnection``)."""

    local_username: str
    local_password: str

    def authentic(self, message: stun.Message) -> bool:
        """Whether MESSAGE names this session's remote ufrag and its integrity verifies."""
        ...

    def binding(self, path: MediaPath, nominated: bool) -> None: ...

    def data_received(self, data: bytes, path: MediaPath) -> None: ...

    def path_lost(self, path: MediaPath) -> None: ...


TrunkHandler = Callable[[bytes, Address], None]


@dataclass(eq=False)
class MediaPath:
    """A client's transport address as the port reaches it: UDP, or one TCP connection."""

    addr: Address
    tcp: TcpStream | None = None

    @property
    def protocol(self) -> str:
        return "udp" if self.tcp is None else "tcp"


class TcpStream:
    """One ICE-TCP connection: RFC 4571 frames both ways."""

    def __init__(self, writer: asyncio.StreamWriter, addr: Address) -> None:
        self.writer = writer
        self.addr = addr
        self.dropped = 0

    def send(self, data: bytes) -> None:
        transport = self.writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() > TCP_WRITE_BUFFER:
            self.dropped += 1  # real-time audio: late is as bad as lost
            return
        self.writer.write(len(data).to_bytes(2, "big") + data)

    def close(self) -> None:
        self.writer.close()


@dataclass
class PortStats:
    """What the port refused, by reason (tests and operators read these)."""

    dropped: Counter[str] = field(default_factory=Counter)
    bound: int = 0  # remote paths bound to sessions so far

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1


class MediaPort(asyncio.DatagramProtocol):
    """The shared UDP socket and TCP listener, and the demultiplexer behind them."""

    def __init__(
        self,
        host: str,
        udp_port: int = 0,
        tcp_port: int | None = 0,
        *,
        silence_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.silence_timeout = silence_timeout  # read by each session (media/lite.py)
        # listener packets every room sends through this port, and their cost (media/meter.py)
        self.meter = FanoutMeter()
        self._want_udp = udp_port
        self._want_tcp = tcp_port
        self.transport: asyncio.DatagramTransport | None = None
        self.sock: socket.socket | None = None  # the raw UDP socket (fast path of the fan-out)
        self._loop: asyncio.AbstractEventLoop | None = None  # the transport's, once started
        self._server: asyncio.Server | None = None
        self.udp_port = 0  # the bound ports, once started
        self.tcp_port = 0
        self.stats = PortStats()
        self._peers: dict[str, Peer] = {}
        self._udp_bound: dict[Address, Peer] = {}
        self._tcp_bound: dict[TcpStream, Peer] = {}
        self._paths: dict[Peer, OrderedDict[Address | TcpStream, MediaPath]] = {}
        self._trunks: dict[int, list[TrunkHandler]] = {}
        self._pending_tcp = 0
        self._tcp_tasks: set[asyncio.Task[None]] = set()
        self._transactions: dict[bytes, stun.Transaction] = {}
        # addresses learned from STUN servers (a public address behind 1:1 NAT), offered
        # by every session after its configured ones
        self.public_addresses: tuple[str, ...] = ()
        # one DTLS certificate and context for every session on the port (media/dtls.py)
        self.dtls = DtlsIdentity()

    # ---- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self._want_udp))
        if self._want_tcp is not None:
            self._server = await asyncio.start_server(
                self._tcp_connection, self.host, self._want_tcp, reuse_address=True
            )
            self.tcp_port = int(self._server.sockets[0].getsockname()[1])
        logger.info(
            "media port: UDP %s:%d, TCP %s", self.host, self.udp_port, self.tcp_port or "off"
        )

    @property
    def address(self) -> Address:
        """The bound UDP address (its host is the bind address, maybe 0.0.0.0)."""
        return self.host, self.udp_port

    @property
    def started(self) -> bool:
        return self.transport is not None

    @property
    def tcp_paths(self) -> int:
        """ICE-TCP connections bound to a session now (a worker reports it in its load)."""
        return len(self._tcp_bound)

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self._server is not None:
            self._server.close()
            for task in list(self._tcp_tasks):
                task.cancel()
            await asyncio.gather(*self._tcp_tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.udp_port = int(transport.get_extra_info("sockname")[1])
        # asyncio's selector transport keeps the real socket in ``_sock`` (its public
        # ``get_extra_info("socket")`` is a wrapper without sendto); without it the fan-out
        # falls back to ``transport.sendto``
        raw = getattr(transport, "_sock", None)
        self.sock = raw if isinstance(raw, socket.socket) else None

    def error_received(self, exc: Exception) -> None:
        logger.debug("media port: socket error: %s", exc)

    # ---- sessions --------------------------------------------------------------------------

    def new_credentials(self) -> tuple[str, str]:
        """A fresh ICE ufrag (unique on this port) and password (RFC 8839: 4+/22+ chars)."""
        while True:
            ufrag = "".join(secrets.choice(ICE_CHARS) for _ in range(8))
            if ufrag not in self._peers:
                break
        password = "".join(secrets.choice(ICE_CHARS) for _ in range(24))
        return ufrag, password

    def register(self, peer: Peer) -> None:
        if self._peers.get(peer.local_username, peer) is not peer:
            raise ValueError("ice ufrag already in use on this port")
        self._peers[peer.local_username] = peer
        self._paths.setdefault(peer, OrderedDict())

    def unregister(self, peer: Peer) -> None:
        if self._peers.get(peer.local_username) is peer:
            del self._peers[peer.local_username]
        for path in self._paths.pop(peer, {}).values():
            self._unbind(peer, path)

    @property
    def sessions(self) -> int:
        return len(self._peers)

    @property
    def pending_tcp(self) -> int:
        """TCP connections that have not (yet) sent a valid Binding request."""
        return self._pending_tcp

    def send(self, data: bytes, path: MediaPath) -> None:
        if path.tcp is not None:
            path.tcp.send(data)
        elif self.transport is not None:
            self.transport.sendto(data, path.addr)

    # ---- STUN client: our own public address ------------------------------------------------

    def send_stun(self, message: stun.Message, addr: Address) -> None:
        """aioice's ``TransactionSender``: a request of ours (or its retransmission)."""
        if self.transport is not None:
            self.transport.sendto(bytes(message), addr)

    async def discover(self, server: Address, retransmissions: int = 2) -> str | None:
        """The address SERVER sees this port's datagrams come from (RFC 8489 Binding)."""
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        transaction = stun.Transaction(request, server, self, retransmissions=retransmissions)
        self._transactions[request.transaction_id] = transaction
        try:
            response, _ = await transaction.run()
        except stun.TransactionError as exc:
            logger.warning("media port: STUN server %s:%d: %s", *server, exc)
            return None
        finally:
            del self._transactions[request.transaction_id]
        mapped = response.attributes.get("XOR-MAPPED-ADDRESS")
        return str(mapped[0]) if isinstance(mapped, tuple) else None

    # ---- trunks ----------------------------------------------------------------------------

    def new_trunk_id(self) -> int:
        while True:
            trunk_id = secrets.randbits(32)
            if trunk_id not in self._trunks:
                return trunk_id

    def add_trunk(self, trunk_id: int, handler: TrunkHandler) -> None:
        self._trunks.setdefault(trunk_id, []).append(handler)

    def remove_trunk(self, trunk_id: int, handler: TrunkHandler) -> None:
        handlers = self._trunks.get(trunk_id, [])
        if handler in handlers:
            handlers.remove(handler)
        if not handlers:
            self._trunks.pop(trunk_id, None)

    def send_trunk(self, data: bytes, addr: Address) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    def send_trunk_now(self, data: bytes, addr: Address) -> None:
        """Send one trunk datagram from any thread (the mixer's tick thread): at once.

        It goes straight out on the raw socket, as the fan-out's batches do (media/batch.py);
        only a full socket (or none: not started, or a transport without one) hands it to the
        event loop's transport, which buffers it. A send that fails otherwise is counted
        (``stats.dropped["trunk_send"]``) and dropped, as asyncio would drop it.
        """
        sock = self.sock
        if sock is not None:
            try:
                sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self.stats.drop("trunk_send")
                logger.debug("media port: trunk datagram to %s: %s", addr, exc)
                return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.send_trunk, data, addr)

    # ---- UDP demultiplexing ----------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data:
            self.stats.drop("empty")
            return
        if len(addr) != 2:  # an IPv6 socket's (host, port, flowinfo, scope): keep host, port
            addr = (addr[0], addr[1])
        first = data[0]
        if 128 <= first < 192 or 20 <= first < 64:
            peer = self._udp_bound.get(addr)
            if peer is None:
                self.stats.drop("unbound")
                return
            paths = self._paths.get(peer)
            path = paths.get(addr) if paths is not None else None
            if path is not None:
                peer.data_received(data, path)
        elif first < 4:
            self._stun(data, MediaPath((addr[0], addr[1])))
        elif first == TRUNK_MARKER and len(data) >= 5:
            handlers = self._trunks.get(int.from_bytes(data[1:5], "big"))
            if not handlers:
                self.stats.drop("unknown_trunk")
                return
            for handler in list(handlers):
                handler(data, addr)
        else:
            self.stats.drop("garbage")

    def _stun(self, data: bytes, path: MediaPath) -> bool:
        """Answer and bind PATH for a valid Binding request; False when it was dropped."""
        try:
            message = stun.parse_message(data)  # also checks FINGERPRINT when present
        except (ValueError, struct.error, IndexError):
            self.stats.drop("stun_malformed")
            return False
        transaction = self._transactions.get(message.transaction_id)
        if transaction is not None and message.message_class in (
            stun.Class.RESPONSE,
            stun.Class.ERROR,
        ):
            transaction.response_received(message, path.addr)
            return False
        if (
            message.message_class != stun.Class.REQUEST
            or message.message_method != stun.Method.BINDING
        ):
            self.stats.drop("stun_not_binding_request")
            return False
        attributes = message.attributes
        username = attributes.get("USERNAME")
        if (
            not isinstance(username, str)
            or "MESSAGE-INTEGRITY" not in attributes
            or "FINGERPRINT" not in attributes
        ):
            self.stats.drop("stun_unauthenticated")
            return False
        peer = self._peers.get(username.partition(":")[0])
        if peer is None:
            self.stats.drop("stun_unknown_ufrag")
            return False
        if not peer.authentic(message):
            self.stats.drop("stun_bad_integrity")
            return False
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=message.transaction_id,
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = path.addr
        response.add_message_integrity(peer.local_password.encode("utf8"))
        path = self._bind(peer, path)
        self.send(bytes(response), path)
        peer.binding(path, "USE-CANDIDATE" in attributes)
        return True

    def _bind(self, peer: Peer, path: MediaPath) -> MediaPath:
        """The session's path for this address (an existing one is reused)."""
        paths = self._paths.setdefault(peer, OrderedDict())
        key: Address | TcpStream = path.tcp if path.tcp is not None else path.addr
        known = paths.get(key)
        if known is not None:
            paths.move_to_end(key)
            return known
        bound: dict[Address, Peer] | dict[TcpStream, Peer]
        bound = self._udp_bound if path.tcp is None else self._tcp_bound
        previous = bound.get(key)  # type: ignore[arg-type]
        if previous is not None and previous is not peer:  # the address moved sessions
            moved = self._paths.get(previous, OrderedDict()).pop(key, None)
            if moved is not None:
                previous.path_lost(moved)
        bound[key] = peer  # type: ignore[index]
        paths[key] = path
        self.stats.bound += 1
        while len(paths) > MAX_PATHS_PER_SESSION:
            _, oldest = paths.popitem(last=False)
            self._unbind(peer, oldest)
            peer.path_lost(oldest)
        return path

    def _unbind(self, peer: Peer, path: MediaPath) -> None:
        if path.tcp is not None:
            if self._tcp_bound.get(path.tcp) is peer:
                del self._tcp_bound[path.tcp]
            path.tcp.close()
        elif self._udp_bound.get(path.addr) is peer:
            del self._udp_bound[path.addr]

    # ---- ICE-TCP (RFC 6544 passive candidates, RFC 4571 framing) ------------------------------

    async def _tcp_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tcp_tasks.add(task)
        try:
            await self._serve_tcp(reader, writer)
        finally:
            self._tcp_tasks.discard(task)
            writer.close()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        stream = TcpStream(writer, (str(peername[0]), int(peername[1])))
        path = MediaPath(stream.addr, stream)
        if self._pending_tcp >= MAX_PENDING_TCP:
            self.stats.drop("tcp_too_many_pending")
            return
        self._pending_tcp += 1
        try:
            first = await asyncio.wait_for(_read_frame(reader), TCP_AUTH_SECONDS)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, FrameTooLarge):
            self.stats.drop("tcp_no_stun")
            return
        finally:
            self._pending_tcp -= 1
        if not first or first[0] >= 4 or not self._stun(first, path):
            self.stats.drop("tcp_no_stun")
            return
        peer = self._tcp_bound.get(stream)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, FrameTooLarge):
            while peer is not None:
                data = await _read_frame(reader)
                if not data:
                    continue
                first_byte = data[0]
                if first_byte < 4:
                    self._stun(data, path)
                elif 128 <= first_byte < 192 or 20 <= first_byte < 64:
                    peer.data_received(data, path)
                else:
                    self.stats.drop("garbage")
                peer = self._tcp_bound.get(stream)
        peer = self._tcp_bound.pop(stream, None)
        if peer is not None:
            paths = self._paths.get(peer)
            if paths is not None and paths.pop(stream, None) is not None:
                peer.path_lost(path)


class FrameTooLarge(Exception):
    """An RFC 4571 frame above MAX_TCP_FRAME: the connection is closed."""


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    length = int.from_bytes(await reader.readexactly(2), "big")
    if length > MAX_TCP_FRAME:
        raise FrameTooLarge(length)
    return await reader.readexactly(length)


async def open_port(host: str, udp_port: int = 0, tcp_port: int | None = 0) -> MediaPort:
    """A started media port (tests and benches; the engine starts its own)."""
    port = MediaPort(host, udp_port, tcp_port)
    await port.start()
    return port
