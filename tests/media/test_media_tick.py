"""The media clock (media/ticker.py): where ticks run, late ticks counted, thread safety."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from pathlib import Path

import pytest
from media_harness import Harness, write_tone

from media import dtls as dtls_module
from media.jitter import JitterBuffer
from media.session import Uplink
from media.srtp import outbound_rtp_session
from media.ticker import CollectorInSlack, LoopTicker, ThreadTicker, make_ticker
from node.settings import SettingsError, load_settings
from tests.support.attacks import parts
from tests.support.nodes import NodeFactory

pytestmark = pytest.mark.timeout(30)


class Counter:
    def __init__(self, on_tick: object = None) -> None:
        self.ticks = 0
        self.on_tick = on_tick

    def tick(self) -> None:
        self.ticks += 1
        if callable(self.on_tick):
            self.on_tick(self.ticks)


class FakeClock:
    """Monotonic seconds that move only when the ticker sleeps or a test says so."""

    def __init__(self) -> None:
        self.now = 100.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        time.sleep(0.001)  # let the test's loop run


async def until(check: object, what: str) -> None:
    async with asyncio.timeout(5):
        while not callable(check) or not check():
            await asyncio.sleep(0.005)
    assert callable(check) and check(), what


async def test_thread_ticker_counts_a_pass_that_starts_a_slot_late() -> None:
    clock = FakeClock()
    ticker = ThreadTicker(clock=clock, sleep=clock.sleep)
    # the third pass "takes" 50 ms of the clock: the fourth starts 30 ms after its slot
    room = Counter(lambda n: clock.advance(0.05) if n == 3 else None)
    ticker.start(room)
    try:
        await until(lambda: room.ticks >= 6, "six ticks")
        assert ticker.stats.late == 1
        assert ticker.stats.max_lateness == pytest.approx(0.03)
        assert ticker.stats.max_duration == pytest.approx(0.05)
        assert ticker.stats.skipped == 0
        assert ticker.stats.ticks >= 6
    finally:
        await ticker.close()


async def test_thread_ticker_skips_missed_slots_instead_of_bursting() -> None:
    clock = FakeClock()
    ticker = ThreadTicker(clock=clock, sleep=clock.sleep)
    room = Counter(lambda n: clock.advance(1.0) if n == 2 else None)  # a one-second stall
    ticker.start(room)
    try:
        await until(lambda: room.ticks >= 5, "ticks after the stall")
        start = clock()
        await until(lambda: room.ticks >= 10, "five more ticks")
        assert clock() - start == pytest.approx(0.1, abs=0.021)  # one per slot, no burst
        assert ticker.stats.skipped == 1
        assert ticker.stats.late == 1  # the missed 49 slots are skipped, not ticked late
        assert ticker.stats.max_lateness == pytest.approx(0.98)
    finally:
        await ticker.close()


async def test_a_failing_room_does_not_stop_the_others() -> None:
    def fail(n: int) -> None:
        raise RuntimeError("boom")

    ticker = ThreadTicker()
    broken, healthy = Counter(fail), Counter()
    ticker.start(broken)
    ticker.start(healthy)
    try:
        await until(lambda: healthy.ticks >= 3, "the healthy room ticks")
        assert ticker.stats.errors >= 3
        await ticker.stop(broken)
        seen = broken.ticks
        await until(lambda: healthy.ticks >= 6, "still ticking")
        assert broken.ticks in (seen, seen + 1)  # at most the pass in progress
    finally:
        await ticker.close()


async def test_the_thread_keeps_ticking_while_the_loop_is_blocked() -> None:
    """The point of issue 18: work on the event loop cannot hold the clock back."""
    threaded, looped = ThreadTicker(), LoopTicker()
    a, b = Counter(), Counter()
    threaded.start(a)
    looped.start(b)
    try:
        await until(lambda: a.ticks >= 2 and b.ticks >= 2, "both clocks run")
        a0, b0 = a.ticks, b.ticks
        time.sleep(0.3)  # the loop is busy (a join storm's handshakes, a slow query...)
        assert a.ticks - a0 >= 5  # ~15 slots went by; the thread ticked through them
        assert b.ticks == b0  # the loop's clock could not
        await until(lambda: looped.stats.late >= 1, "the loop clock counts its late tick")
        assert looped.stats.max_lateness >= 0.2
    finally:
        await threaded.close()
        await looped.close()


def test_make_ticker_and_the_setting() -> None:
    assert make_ticker("thread").mode == "thread"
    assert make_ticker("loop").mode == "loop"
    with pytest.raises(ValueError, match="'thread' or 'loop'"):
        make_ticker("fast")
    with pytest.raises(SettingsError, match="media_tick"):
        load_settings(Path("/nonexistent"), environ={"SALON_MEDIA_TICK": "fast"})
    settings = load_settings(Path("/nonexistent"), environ={"SALON_MEDIA_TICK": "loop"})
    assert settings.media_tick == "loop"


def test_uplink_push_and_pop_from_two_threads() -> None:
    """The loop pushes while the tick thread pops: nothing lost twice, nothing raises."""
    uplink = Uplink(JitterBuffer(prefetch=1, max_depth=10_000))
    popped: list[bytes] = []
    done = threading.Event()

    def pop() -> None:
        while not done.is_set() or len(uplink.jitter):
            payload = uplink.pop()
            if payload:  # None: nothing due; b"": a gap to conceal
                popped.append(payload)

    reader = threading.Thread(target=pop)
    reader.start()
    for seq in range(20_000):
        uplink.push(seq, seq.to_bytes(4, "big"))
        if seq % 5000 == 0:
            time.sleep(0.001)
    done.set()
    reader.join(10)
    assert len(popped) == len(set(popped))
    assert uplink.jitter.stats.received == 20_000


async def test_the_fan_out_protects_with_the_transports_one_outbound_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node session's fan-out writes with the DTLS transport's outbound session (shared
    with aiortc's RTCP under the node's srtp_lock); media/srtp.py's re-derivation, for
    other transports, gives the same bytes for the same packet."""
    monkeypatch.setattr(dtls_module.NodeDtlsTransport, "release_ssl", False)  # to re-derive
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        await h.join("bob")
        bob = h.bots["bob"]
        heard = bob.packets_received
        await until(lambda: bob.packets_received > heard + 10, "bob keeps receiving")
        for name in ("alice", "bob"):
            session = h.room.session(name)
            assert session is not None and session.transceiver is not None
            assert session.downlink is not None and session.downlink._srtp is not None
            dtls = session.transceiver.sender.transport
            assert session.downlink._srtp.session is dtls._tx_srtp
            ours = outbound_rtp_session(dtls)
            assert ours is not dtls._tx_srtp
            # an SSRC neither session has used: both start from the same state
            for seq in range(3):
                packet = bytes([0x80, 111, 0, seq]) + b"\x00\x00\x03\xc0" + b"\x0b\xad\xca\xfe"
                packet += os.urandom(40)
                with dtls.srtp_lock:
                    assert ours.protect(packet) == dtls._tx_srtp.protect(packet)
        # and the listeners hear the tick thread's packets (decrypted by aiortc)
        heard = bob.packets_received
        await until(lambda: bob.packets_received > heard + 10, "bob keeps receiving")
    finally:
        await h.close()


async def test_status_shows_the_clock_to_admins_only(node_factory: NodeFactory) -> None:
    a = await node_factory("a")
    await parts(a).accounts.create_user("root", "password123", is_admin=True)
    admin, alice = await a.user(), await a.user()
    await admin.signin("root")
    await alice.signup("alice")
    status, answer = await admin.call("GET", "/api/admin/status")
    assert status == 200, answer
    media = answer["media"]
    assert media["tick"] == "thread"
    assert {"ticks", "late_ticks", "max_lateness_ms", "max_tick_ms", "skipped"} <= set(media)
    status, answer = await alice.call("GET", "/api/admin/status")
    assert status == 403, answer


async def test_the_collector_runs_in_the_slack_while_rooms_tick() -> None:
    """While the thread ticks, CPython's automatic collection is off and the tick thread
    collects after its passes; when nothing ticks, CPython collects as usual again."""
    assert gc.isenabled()
    collector = CollectorInSlack()
    ticker = ThreadTicker(collector=collector)
    room = Counter()
    ticker.start(room)
    try:
        await until(lambda: room.ticks >= 2, "ticking")
        assert not gc.isenabled()
        garbage = []
        for _ in range(5):
            for _ in range(gc.get_threshold()[0] * 3):
                cycle: list[object] = []
                cycle.append(cycle)  # cyclic garbage only the collector frees
                garbage.append(cycle)
            garbage.clear()
            seen = room.ticks
            await until(lambda seen=seen: room.ticks >= seen + 2, "passes after allocating")
        assert collector.collections[0] + collector.collections[1] >= 1
        assert gc.get_count()[0] < gc.get_threshold()[0] * 3
        await ticker.stop(room)
        await until(gc.isenabled, "automatic collection back when idle")
    finally:
        await ticker.close()
    assert gc.isenabled()
