"""A trunk that only listens: the node records a room mixed on a media worker.

With media workers (docs/scaling.md) the room's mix is made on the mixer worker, but the
recording (media/recorder.py, node/recording.py) belongs to the node: its data directory,
its quota, its replay library. So the node opens one more relay trunk to the mixer, like
a relay worker's but with no listeners: each MIX frame's primary Opus packet is pushed to
the recorder, exactly the encode-once packet a local mixer would have pushed. Nothing is
decoded. Keepalives tell the mixer where to send, as a relay's do (media/relay.py).
"""

from __future__ import annotations

import asyncio
import logging

from nacl.public import PrivateKey, PublicKey

from media.port import MediaPort
from media.recorder import Recorder
from media.relay import KEEPALIVE_SECONDS, TrunkEnd
from media.trunk import Direction, Frame, Kind, Sealer, TrunkError

logger = logging.getLogger(__name__)
Address = tuple[str, int]


class TrunkTap:
    """The recording end of a trunk from a room's mixer (``set_recorder`` as RoomMedia's)."""

    def __init__(self, room_id: str, port: MediaPort, pre_skip: int) -> None:
        self.room_id = room_id
        self.pre_skip = pre_skip
        self._port = port
        self._recorder: Recorder | None = None
        self._sealer: Sealer | None = None
        self._sock: TrunkEnd | None = None
        self._origin: Address | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self.frames = 0
        self.rejected = 0

    @property
    def recorder(self) -> Recorder | None:
        return self._recorder

    def set_recorder(self, recorder: Recorder | None) -> None:
        self._recorder = recorder

    def connect(
        self, trunk_id: int, own: PrivateKey, origin_key: PublicKey, origin: Address
    ) -> None:
        """(Re)attach to a mixer: a new trunk id, keys and address (the mixer moved)."""
        if self._sock is not None:
            self._sock.close()
        self._sealer = Sealer(trunk_id, own, origin_key, Direction.RELAY_TO_ORIGIN)
        self._sock = TrunkEnd(self._port, trunk_id, self._received)
        self._origin = origin
        self._send_keepalive()
        if self._keepalive is None:
            self._keepalive = asyncio.ensure_future(self._keep_alive())

    def _received(self, data: bytes, addr: Address) -> None:
        if self._sealer is None or addr != self._origin:
            self.rejected += 1
            return
        try:
            frame = self._sealer.open(data)
        except TrunkError:
            self.rejected += 1
            return
        recorder = self._recorder
        if frame.kind is Kind.MIX and recorder is not None:
            recorder.push(frame.payload)
            self.frames += 1

    def _send_keepalive(self) -> None:
        if self._sock is not None and self._sealer is not None and self._origin is not None:
            frame = Frame(Kind.KEEPALIVE, 0, 0, 0, 127, bytes([0]))
            self._sock.send(self._sealer.seal(frame), self._origin)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            self._send_keepalive()

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            await asyncio.gather(self._keepalive, return_exceptions=True)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
