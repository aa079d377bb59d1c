"""What a Chromium page heard, sampled inside the page every 50 ms: getStats'
totalAudioEnergy of its current peer connection, each connection numbered in order of
appearance, on the browser's wall clock (tests compare it with ``time.time()`` of a kill
or a drain)."""

from __future__ import annotations

import itertools
from typing import Any

# energy per 50 ms sample: a 0.3 full-scale tone adds ≈ 0.002, Opus silence ≈ 0
AUDIBLE_STEP = 0.0002

# Every 50 ms: [wall-clock ms, which peer connection (1, 2, … in order of appearance),
# its inbound totalAudioEnergy]; kept in window.salonHeard.
SAMPLER_JS = """
() => {
  const heard = [];
  const ids = new WeakMap();
  let next = 0;
  setInterval(async () => {
    const pc = window.salonDebug.pc;
    if (!pc) { heard.push([Date.now(), 0, 0]); return; }
    if (!ids.has(pc)) ids.set(pc, ++next);
    const stats = await window.salonDebug.inbound();
    heard.push([Date.now(), ids.get(pc), stats ? stats.totalAudioEnergy : 0]);
  }, 50);
  window.salonHeard = heard;
}
"""


def audible_times(samples: list[list[float]]) -> list[float]:
    """Seconds (wall clock) of each 50 ms step in which the current connection's energy grew
    audibly (steps across a change of connection do not count)."""
    found = []
    for (_, pc_before, before), (at, pc, energy) in itertools.pairwise(samples):
        if pc and pc == pc_before and energy - before > AUDIBLE_STEP:
            found.append(at / 1000.0)
    return found


def gap_after(samples: list[list[float]], moment: float) -> float:
    """Seconds from MOMENT (time.time()) until the page heard sound on a later connection
    than the one it had at MOMENT (inf if it never did)."""
    old = max((pc for at, pc, _ in samples if at / 1000.0 <= moment), default=0)
    later = [s for s in samples if s[1] > old]
    heard = [t for t in audible_times(later) if t > moment]
    return heard[0] - moment if heard else float("inf")


def longest_silence(samples: list[list[float]], start: float, end: float) -> float:
    """The longest run without audible sound between START and END (wall clock)."""
    times = [start, *[t for t in audible_times(samples) if start < t < end], end]
    return max(b - a for a, b in itertools.pairwise(times))


async def samples(person: Any) -> list[list[float]]:
    """Every sample so far."""
    found: list[list[float]] = await person.page.evaluate("() => window.salonHeard")
    return found


async def connections(person: Any) -> int:
    """How many peer connections the page has had since the sampler started."""
    return int(max(pc for _, pc, _ in await samples(person)))


async def start_sampling(person: Any) -> None:
    """Start sampling PERSON's page (see SAMPLER_JS)."""
    await person.page.evaluate(SAMPLER_JS)
