"""Attacks on the uplink jitter buffer's hold (media/jitter.py, loss16c).

A stretch's 20 ms is now held 30 s, and the hold doubles while a stream keeps being late
after give-backs. A speaker controls when its packets arrive: it must not be able to make
the node keep more than ``max_depth`` frames for it, nor a hold past ``MAX_HOLD_TICKS``,
nor make another speaker's buffer hold anything. Pure: the node's own buffer, fed the
arrival patterns an attacker can produce.
"""

from __future__ import annotations

import random

import pytest

from media.session import MAX_HOLD_TICKS, protected_jitter

pytestmark = pytest.mark.timeout(30)


def test_late_on_purpose_forever_cannot_grow_the_hold_or_the_buffer() -> None:
    jitter = protected_jitter()
    seq = 0
    for tick in range(60_000):  # 20 minutes: late after every give-back, bursts, gaps
        pattern = tick % 97
        if pattern == 0:
            for _ in range(40):  # a burst far past max_depth
                jitter.push(seq & 0xFFFF, b"\x08")
                seq += 1
        elif pattern != 5:  # tick 5 of every 97: nothing arrives (a stretch)
            jitter.push(seq & 0xFFFF, b"\x08")
            seq += 1
        jitter.pop()
        assert len(jitter) <= jitter.max_depth
        assert jitter.hold <= MAX_HOLD_TICKS


def test_random_arrivals_and_sequence_jumps_keep_the_bounds() -> None:
    rng = random.Random(16)
    victim, attacker = protected_jitter(), protected_jitter()
    seq = 0
    for _ in range(20_000):
        victim.push(_ & 0xFFFF, b"\x08")
        for _ in range(rng.choice((0, 0, 1, 1, 1, 3, 30))):
            seq = (seq + rng.choice((1, 1, 1, 2, 0x4000, 60_000))) & 0xFFFF
            attacker.push(seq, b"\x08", redundant=rng.random() < 0.2)
        victim.pop()
        attacker.pop()
        assert len(attacker) <= attacker.max_depth and attacker.hold <= MAX_HOLD_TICKS
    # the victim's steady stream is never held or stretched by the attacker's
    assert victim.stats.stretched == 0 and victim.hold == victim.shrink_after
