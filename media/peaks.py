"""Waveform peaks of a replay: the file decoded once (PyAV), max |sample| per bucket."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def peaks(path: Path, buckets: int, duration: float) -> list[float]:
    """BUCKETS values in [0, 1], each the loudest sample of its slice of DURATION seconds."""
    out = np.zeros(buckets, dtype=np.float32)
    if duration <= 0:
        return out.tolist()
    per_bucket = duration / buckets
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        seen = 0  # samples decoded so far, at the decoder's rate
        for frame in container.decode(stream):
            samples = np.abs(frame.to_ndarray().astype(np.float32)).max(axis=0)
            rate = frame.sample_rate or 48_000
            times = (seen + np.arange(samples.size)) / rate
            seen += samples.size
            index = np.minimum((times / per_bucket).astype(np.int64), buckets - 1)
            np.maximum.at(out, index, samples)
    return [round(float(v), 3) for v in np.clip(out, 0.0, 1.0)]
