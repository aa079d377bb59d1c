"""A mixer with one relay trunk whose far end is the test's own UDP socket.

The far end holds the relay's trunk key, so it opens (and can forge or replay) the real
datagrams the origin's media port sends; the room ticks on the node's tick thread.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

from media.engine import MediaConfig, MediaEngine, RoomMedia
from media.relay import OriginTrunk
from media.trunk import Direction, Frame, Kind, Sealer, TrunkError, new_keypair

LOOPBACK = ("127.0.0.1",)


@dataclass
class TrunkOrigin:
    engine: MediaEngine
    room: RoomMedia
    trunk: OriginTrunk
    far: socket.socket  # the relay's end: a plain blocking UDP socket
    sealer: Sealer  # the relay's sealer (opens what the origin sends)

    @property
    def port_address(self) -> tuple[str, int]:
        return "127.0.0.1", self.engine.port.udp_port

    def receive_mix(self, seconds: float) -> Iterator[Frame]:
        """MIX frames reaching the far end within SECONDS (a blocking read: any thread)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.far.settimeout(left)
            try:
                data = self.far.recv(2048)
            except TimeoutError:
                return
            try:
                frame = self.sealer.open(data)
            except TrunkError:
                continue
            if frame.kind is Kind.MIX:
                yield frame

    def drain(self) -> None:
        """Forget what reached the far end so far."""
        self.far.setblocking(False)
        while True:
            try:
                self.far.recv(2048)
            except BlockingIOError:
                return

    async def close(self) -> None:
        self.far.close()
        await self.trunk.close()
        await self.engine.close()
        await self.engine.close_port()


async def open_trunk_origin(trunk_id: int = 31, far_rcvbuf: int | None = None) -> TrunkOrigin:
    """A started engine, room "r1" with a trunk, and its far end known to the origin."""
    engine = MediaEngine(MediaConfig(ice_addresses=LOOPBACK, media_tcp_port=None))
    await engine.start()
    room = engine.room("r1", lambda participant, message: None, lambda levels: None)
    origin_key, _ = new_keypair()
    relay_key, _ = new_keypair()
    trunk = OriginTrunk(room, trunk_id, origin_key, relay_key.public_key, engine.port)
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if far_rcvbuf is not None:
        far.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, far_rcvbuf)
    far.bind(("127.0.0.1", 0))
    sealer = Sealer(trunk_id, relay_key, origin_key.public_key, Direction.RELAY_TO_ORIGIN)
    origin = TrunkOrigin(engine, room, trunk, far, sealer)
    keepalive = Frame(Kind.KEEPALIVE, 0, 0, 0, 127, bytes([0]))
    far.sendto(sealer.seal(keepalive), origin.port_address)  # the origin learns us
    deadline = time.monotonic() + 5
    while trunk.peer is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert trunk.peer is not None, "the origin never learned the far end"
    return origin
