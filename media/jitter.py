"""A small jitter buffer for one speaker's Opus packets, read on the mixer's 20 ms clock.

aiortc's own audio jitter buffer holds frame n until n+4 arrives (+80 ms); this one starts
playing as soon as ``prefetch`` packets are queued and trims itself back when a burst or a
clock drift makes it grow past ``max_depth``; and when a whole ``shrink_after`` window
(1 s) went by with at least one packet more than needed left after every pop, it drops
the oldest packet (-20 ms): a standing excess that never reaches ``max_depth`` would
otherwise add its delay for the rest of the session. Pure: no clock, no I/O; the mixer calls
``push`` on arrival and ``pop`` once per tick.
"""

from __future__ import annotations

from dataclasses import dataclass

from media.rtp import seq_diff

PayloadOrGap = bytes | None
BURST_EXCESS = 3  # frames above target after which stretch mode skips quiet frames at once
# ... once that excess has stood for this many pops in a row: more than the mixer clock's
# catch-up after a late pass (media/ticker.py: up to SKIP_AFTER = 100 ms, 5 slots, run back
# to back), which finds the packets that arrived meanwhile queued and drains them itself —
# the node's own lateness is not a sender's burst and must not cost a frame of speech
BURST_STANDING = 6


@dataclass
class JitterStats:
    received: int = 0
    played: int = 0
    lost: int = 0
    late: int = 0
    dropped: int = 0
    recovered: int = 0  # gaps filled from a redundant copy before their turn
    stretched: int = 0  # ticks concealed while waiting for a late packet (stretch)


class JitterBuffer:
    def __init__(
        self,
        prefetch: int = 1,
        max_depth: int = 5,
        idle_reset: int = 10,
        shrink_after: int = 50,
        stretch: bool = False,
        loss_prefetch: int | None = None,
        calm_ticks: int = 500,
        force_after: int | None = None,
        max_hold: int | None = None,
    ) -> None:
        """MAX_HOLD (stretch): a standing excess is given back after SHRINK_AFTER ticks; when
        the buffer has to stretch again within that hold of giving a frame back, the give-back
        was premature (the stream's jitter recurs) and the hold doubles, up to MAX_HOLD ticks,
        as a receiver's target delay follows the jitter it has seen; it never shortens
        (the path's jitter outlasts a pause). None: the hold stays SHRINK_AFTER.
        LOSS_PREFETCH (adaptive): play with PREFETCH while the stream loses nothing, and
        hold LOSS_PREFETCH packets from its first loss until CALM_TICKS pass without one.
        FORCE_AFTER (stretch): a burst excess (>= BURST_EXCESS frames) that found no quiet
        frame to give back within this many ticks is trimmed anyway, speech or not — so
        continuous sound cannot keep a speaker 60 ms or more behind for good."""
        if prefetch < 1 or max_depth < prefetch:
            raise ValueError("need 1 <= prefetch <= max_depth")
        if loss_prefetch is not None and not prefetch <= loss_prefetch <= max_depth:
            raise ValueError("need prefetch <= loss_prefetch <= max_depth")
        self.prefetch = prefetch
        self.base_prefetch = prefetch
        self.loss_prefetch = loss_prefetch
        self.calm_ticks = calm_ticks
        self._calm = 0  # pops since the last loss (adaptive)
        self._build = 0  # ticks to conceal on purpose, to deepen the buffer (adaptive)
        self.max_depth = max_depth
        self.idle_reset = idle_reset  # consecutive empty ticks before we re-prime
        self.shrink_after = shrink_after  # ticks of standing excess before dropping one
        self.max_hold = shrink_after if max_hold is None else max(shrink_after, max_hold)
        self.hold = shrink_after  # the standing-excess window now (grows up to max_hold)
        self._since_give: int | None = None  # pops since a frame was given back (skip)
        self.stretch = stretch
        self._owed = 0  # ticks concealed while waiting for _next (stretch)
        # stretch mode shrinks in quiet frames: a standing excess sets this, the player
        # (media/conceal.py) skips the next quiet frame it decodes
        self.may_skip = False
        self.force_after = force_after
        self._pending = 0  # ticks may_skip has waited for a quiet frame
        self._standing = 0  # pops in a row that left a burst excess (>= BURST_EXCESS)
        self.stats = JitterStats()
        self._packets: dict[int, bytes] = {}
        self._next: int | None = None  # sequence number to play at the next pop
        self._playing = False
        self._empty_ticks = 0
        self._window = 0  # ticks in the current standing-excess window
        self._min_left = 0  # fewest packets left after a pop during that window

    def __len__(self) -> int:
        return len(self._packets)

    @property
    def playing(self) -> bool:
        return self._playing

    def push(self, sequence: int, payload: bytes, redundant: bool = False) -> None:
        """Queue one packet; REDUNDANT (a copy from RED/trunk redundancy) only fills a gap."""
        if redundant:
            if sequence in self._packets or self._next is None:
                return
            if not 0 <= seq_diff(sequence, self._next) <= self.max_depth:
                return  # already played (concealed) past it, or not near the playout point
            self.stats.recovered += 1
        else:
            self.stats.received += 1
        if self._next is not None:
            distance = seq_diff(sequence, self._next)
            if abs(distance) > 0x3000:
                self.reset()  # the sender restarted its sequence space
            elif distance < 0:
                if self._playing:
                    self.stats.late += 1  # already played past it
                    return
                self._next = sequence  # an earlier packet arrived before playout began
        if self._next is None:
            self._next = sequence
        self._packets[sequence] = payload
        if len(self._packets) > self.max_depth:
            self._trim()

    def pop(self) -> PayloadOrGap | None:
        """The payload for this tick, ``b""`` for a lost packet (conceal), None when idle.

        With ``stretch``, an empty buffer is an underrun, not a loss: the tick is concealed
        but the packet keeps its turn, so a late packet is played (20 ms later) instead of
        dropped — a late packet costs one concealed frame instead of two. If a later packet
        shows up first, the one waited for is lost and the concealed tick was its turn.
        """
        if not self._playing:
            if self._next is None or len(self._packets) < self.prefetch:
                return None
            self._playing = True
        assert self._next is not None
        payload = self._packets.pop(self._next, None)
        if payload is None and self._owed and self._packets:
            self._owed -= 1  # it never came: its turn was the tick we concealed
            self._next = (self._next + 1) & 0xFFFF
            payload = self._packets.pop(self._next, None)
            self._lost_one()
        elif payload is not None and self._build:  # never right after a concealed loss
            if len(self._packets) < self.prefetch - 1:
                # one tick concealed on purpose, the packet keeps its turn: the buffer gets
                # one packet deeper, so the next loss can be rebuilt from the FEC after it
                self._build -= 1
                self._packets[self._next] = payload
                self.stats.stretched += 1
                return b""
            self._build = 0  # already deep enough
        if payload is not None:
            self._calm_tick()
            self._next = (self._next + 1) & 0xFFFF
            self._empty_ticks = 0
            self._owed = 0
            self.stats.played += 1
            self._watch_excess()
            return payload
        if not self._packets:
            self._empty_ticks += 1
            if self._empty_ticks >= self.idle_reset:
                self.reset()
                return None
            if self.stretch:
                if self._since_give is not None and self._since_give < self.hold:
                    self.hold = min(self.hold * 2, self.max_hold)  # gave back too early
                    self._since_give = None
                self._owed += 1
                self.stats.stretched += 1
                return b""
        self._next = (self._next + 1) & 0xFFFF
        self.stats.lost += 1
        self._lost_one()
        return b""

    def _lost_one(self) -> None:
        """Adaptive: a loss deepens the buffer to ``loss_prefetch`` (FEC needs the next one)."""
        self._calm = 0
        if self.loss_prefetch is not None and self.prefetch < self.loss_prefetch:
            self._build += self.loss_prefetch - self.prefetch
            self.prefetch = self.loss_prefetch

    def _calm_tick(self) -> None:
        """Adaptive: after ``calm_ticks`` without a loss, back to the low-latency depth;
        the excess is given back like any standing excess (a quiet frame skipped)."""
        if self.prefetch == self.base_prefetch:
            return
        self._calm += 1
        if self._calm >= self.calm_ticks:
            self.prefetch = self.base_prefetch
            self._calm = 0
            self._build = 0

    def peek(self) -> bytes | None:
        """The packet the next ``pop`` will return, if it is here (for FEC recovery)."""
        return self._packets.get(self._next) if self._next is not None else None

    def reset(self) -> None:
        self._packets.clear()
        self._next = None
        self._playing = False
        self._owed = 0
        self.may_skip = False
        self._pending = 0
        self._standing = 0
        self._empty_ticks = 0
        self._window = 0
        self._build = 0
        self._since_give = None  # the hold stays: the path's jitter outlasts a pause

    def _watch_excess(self) -> None:
        """Drop the oldest packet after a full window in which we never ran down to target."""
        left = len(self._packets) - (self.prefetch - 1)  # excess over what playout needs
        self._standing = self._standing + 1 if left >= BURST_EXCESS else 0
        if self.stretch and self._standing >= BURST_STANDING:
            self.may_skip = True  # a burst (a sender's stall): give it back at the next pause
        if self.may_skip and self.force_after is not None:
            self._pending += 1
            if self._pending >= self.force_after and left >= BURST_EXCESS:
                self._trim()  # no pause came: down to one frame of excess, in one cut
                self._pending = 0
                left = len(self._packets) - (self.prefetch - 1)
        if self._since_give is not None:
            self._since_give += 1
        self._min_left = left if self._window == 0 else min(self._min_left, left)
        self._window += 1
        if self._window < self.hold:
            return
        self._window = 0
        if self._min_left >= 1 and self._next is not None:
            if self.stretch:
                self.may_skip = True  # the player skips a quiet frame (``skip``)
                return
            self._packets.pop(self._next, None)
            self._next = (self._next + 1) & 0xFFFF
            self.stats.dropped += 1

    def skip(self) -> bytes | None:
        """Drop one frame of standing excess now (the player found a quiet one): the packet
        after it, which plays in its place, or None when there is nothing to skip to."""
        if not self.may_skip or self._next is None or self._next not in self._packets:
            return None
        self.may_skip = False
        self._pending = 0
        self._since_give = 0
        self.stats.dropped += 1
        payload = self._packets.pop(self._next)
        self._next = (self._next + 1) & 0xFFFF
        self.stats.played += 1
        return payload

    def _trim(self) -> None:
        """Drop the oldest packets so the depth is back to ``prefetch``."""
        base = self._next
        newest = max(self._packets, key=lambda s: seq_diff(s, s if base is None else base))
        keep_from = (newest - self.prefetch + 1) & 0xFFFF
        for seq in list(self._packets):
            if seq_diff(seq, keep_from) < 0:
                del self._packets[seq]
                self.stats.dropped += 1
        self._next = keep_from
        self._owed = 0
