"""Mixing and level math on 20 ms frames of mono 48 kHz PCM (float32 in -1..1). Pure numpy.

One mix for the room; each speaker's mix-minus is the room mix minus their own frame, so
the cost per extra speaker is one subtraction, not one extra sum over all speakers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
Pcm = npt.NDArray[np.float32]

SILENCE: Pcm = np.zeros(FRAME_SAMPLES, dtype=np.float32)
SILENCE.setflags(write=False)

LEVEL_FLOOR_DBOV = -60.0  # level 0.0
SPEAKING_DBOV = -50.0  # below this a participant is not "speaking"


def mix(frames: Mapping[str, Pcm]) -> tuple[Pcm, dict[str, Pcm]]:
    """Return (room mix, {speaker: mix-minus}) with hard clipping to -1..1."""
    if not frames:
        return SILENCE, {}
    total = np.sum(np.stack(list(frames.values())), axis=0, dtype=np.float32)
    minus = {name: np.clip(total - own, -1.0, 1.0) for name, own in frames.items()}
    return np.clip(total, -1.0, 1.0), minus


def dbov(frame: Pcm) -> float:
    """RMS level relative to full scale (a full-scale square wave is 0 dBov)."""
    rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float32))))
    if rms <= 1e-7:
        return -127.0
    return max(-127.0, 20.0 * math.log10(rms))


def level(dbov_value: float) -> float:
    """Map dBov to the 0..1 scale the node's speaking rings use (0 below the speaking gate)."""
    if dbov_value < SPEAKING_DBOV:
        return 0.0
    return min(1.0, max(0.0, (dbov_value - LEVEL_FLOOR_DBOV) / -LEVEL_FLOOR_DBOV))


def quantize(value: float, steps: int = 10) -> float:
    return round(value * steps) / steps


class LevelMeter:
    """Collects per-tick peaks and reports quantized levels every ``window`` ticks on change."""

    def __init__(self, window: int = 5) -> None:
        self.window = window
        self._ticks = 0
        self._peak: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def add(self, speaker: str, frame_dbov: float) -> None:
        value = level(frame_dbov)
        if value > self._peak.get(speaker, 0.0):
            self._peak[speaker] = value

    def tick(self) -> dict[str, float] | None:
        """Call once per mixer tick; returns the new levels when they changed, else None."""
        self._ticks += 1
        if self._ticks < self.window:
            return None
        self._ticks = 0
        current = {name: quantize(v) for name, v in self._peak.items() if quantize(v) > 0}
        self._peak = {}
        if current == self._last:
            return None
        self._last = current
        return dict(current)
