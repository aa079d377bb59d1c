"""The mixer's trunk datagrams leave from the tick thread, before the tick's local fan-out.

A relay's listeners (another worker, another node) hear each packet one trunk hop after
the mixer's own listeners, not one local fan-out plus an event-loop hop after it
(docs/performance.md, "Scale"). The relay end is the test's own UDP socket holding the
relay's trunk key (tests/support/trunk_end.py): it opens the real datagrams the port sends.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.support.trunk_end import open_trunk_origin

pytestmark = pytest.mark.timeout(60)


async def test_trunk_frame_of_a_tick_leaves_while_its_local_fan_out_is_held() -> None:
    """The fan-out's batch holds the port's srtp_lock; a thread of the test holds it
    instead, so the tick thread stops inside one tick's local fan-out. That tick's trunk
    frame (its RTP timestamp is the room's last) has already gone to the far end."""
    origin = await open_trunk_origin()
    room = origin.room
    lock = origin.engine.port.dtls.srtp_lock
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
            if first.timestamp == stuck_at[0]:  # the lock came between that frame's send
                found.append(first.timestamp)  # and its fan-out: it was already read
                return
            for frame in origin.receive_mix(3.0):
                if frame.timestamp == stuck_at[0]:
                    found.append(frame.timestamp)
                    return

    try:
        first = next(origin.receive_mix(2.0), None)  # ticking, trunk flowing
        assert first is not None
        holder = threading.Thread(target=hold_fan_out)
        holder.start()
        await asyncio.get_running_loop().run_in_executor(None, holder.join)
        assert found == stuck_at, "the held tick's trunk frame did not leave before its fan-out"
    finally:
        await origin.close()


async def test_trunk_frames_leave_while_the_event_loop_is_busy() -> None:
    """The trunk's send does not wait for the event loop: the loop is blocked here (a
    synchronous read on the loop's own thread) and the far end still gets every tick."""
    origin = await open_trunk_origin()
    room = origin.room
    try:
        assert any(True for _ in origin.receive_mix(2.0))
        origin.drain()  # what was sent before the loop blocks does not count
        ticks = room.ticks
        frames = list(origin.receive_mix(1.0))  # blocks this (the loop's) thread
        assert room.ticks - ticks >= 10  # the tick thread went on meanwhile
        assert len(frames) >= room.ticks - ticks - 2, (len(frames), room.ticks - ticks)
    finally:
        await origin.close()
