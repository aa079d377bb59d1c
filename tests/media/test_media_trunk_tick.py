"""The mixer's trunk datagrams leave from the tick thread, before the tick's local fan-out.

A relay's listeners (another worker, another node) hear each packet one trunk hop after
the mixer's own listeners, not one local fan-out plus an event-loop hop after it
(docs/performance.md, "Scale"). The relay end here is a plain UDP socket of the test that
holds the relay's trunk key: it opens the real datagrams the origin's port sends.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from media_harness import Harness

from media.engine import RoomMedia
from media.relay import OriginTrunk
from media.trunk import Direction, Frame, Kind, Sealer, TrunkError, new_keypair

pytestmark = pytest.mark.timeout(60)

TRUNK_ID = 31


async def open_origin() -> tuple[Harness, RoomMedia, OriginTrunk, socket.socket, Sealer]:
    harness = Harness()  # loopback_config(): the default tick thread
    await harness.engine.start()
    room = harness.room
    assert isinstance(room, RoomMedia)
    origin_key, _ = new_keypair()
    relay_key, _ = new_keypair()
    port = harness.engine.port
    trunk = OriginTrunk(room, TRUNK_ID, origin_key, relay_key.public_key, port)
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    sealer = Sealer(TRUNK_ID, relay_key, origin_key.public_key, Direction.RELAY_TO_ORIGIN)
    keepalive = Frame(Kind.KEEPALIVE, 0, 0, 0, 127, bytes([0]))
    far.sendto(sealer.seal(keepalive), ("127.0.0.1", port.udp_port))  # the origin learns us
    deadline = time.monotonic() + 5
    while trunk.peer is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert trunk.peer is not None
    return harness, room, trunk, far, sealer


def receive_mix(far: socket.socket, sealer: Sealer, seconds: float) -> Iterator[Frame]:
    """MIX frames arriving at the far end within SECONDS (a blocking read: any thread)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        far.settimeout(left)
        try:
            data = far.recv(2048)
        except TimeoutError:
            return
        try:
            frame = sealer.open(data)
        except TrunkError:
            continue
        if frame.kind is Kind.MIX:
            yield frame


async def close_origin(harness: Harness, trunk: OriginTrunk, far: socket.socket) -> None:
    far.close()
    await trunk.close()
    await harness.close()


async def test_trunk_frame_of_a_tick_leaves_while_its_local_fan_out_is_held() -> None:
    """The fan-out's batch holds the port's srtp_lock; a thread of the test holds it
    instead, so the tick thread stops inside one tick's local fan-out. That tick's trunk
    frame (its RTP timestamp is the room's last) has already gone to the far end."""
    harness, room, trunk, far, sealer = await open_origin()
    lock = harness.engine.port.dtls.srtp_lock
    found: list[int] = []
    stuck_at: list[int] = []

    def hold_fan_out() -> None:
        with lock:
            ticks, stable_since = room.ticks, time.monotonic()
            while time.monotonic() - stable_since < 0.2:  # the tick thread waits for us
                time.sleep(0.02)
                if room.ticks != ticks:
                    ticks, stable_since = room.ticks, time.monotonic()
            stuck_at.append(room.last_timestamp)
            for frame in receive_mix(far, sealer, 3.0):
                if frame.timestamp == stuck_at[0]:
                    found.append(frame.timestamp)
                    return

    try:
        assert any(True for _ in receive_mix(far, sealer, 2.0))  # ticking, trunk flowing
        holder = threading.Thread(target=hold_fan_out)
        holder.start()
        await asyncio.get_running_loop().run_in_executor(None, holder.join)
        assert found == stuck_at, "the held tick's trunk frame did not leave before its fan-out"
        assert trunk.packets_sent > 0
    finally:
        await close_origin(harness, trunk, far)


async def test_trunk_frames_leave_while_the_event_loop_is_busy() -> None:
    """The trunk's send does not wait for the event loop: the loop is blocked here (a
    synchronous read on the loop's own thread) and the far end still gets every tick."""
    harness, room, trunk, far, sealer = await open_origin()
    try:
        assert any(True for _ in receive_mix(far, sealer, 2.0))
        far.setblocking(False)
        while True:  # what was sent before the loop blocks does not count
            try:
                far.recv(2048)
            except BlockingIOError:
                break
        ticks = room.ticks
        frames = list(receive_mix(far, sealer, 1.0))  # blocks this (the loop's) thread
        assert room.ticks - ticks >= 10  # the tick thread went on meanwhile
        assert len(frames) >= room.ticks - ticks - 2, (len(frames), room.ticks - ticks)
    finally:
        await close_origin(harness, trunk, far)
