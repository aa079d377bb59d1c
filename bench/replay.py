"""Replay a traced run's uplink against its own mixer ticks, timing-free (bench/loss.py --trace).

``node.trace`` holds when each of the speaker's packets reached the origin's jitter buffer
and when each mixer tick ran, as they happened on the (possibly loaded) machine. This
feeds the same packets, in the same order relative to the same ticks, through the node's
own ``JitterBuffer``, ``next_frame_and_packet``, ``PassThrough`` and room ``OpusEncoder``,
decodes what a listener would receive with a fresh decoder and scores it with bench/loss.py's
scoring. So a change to the uplink's buffering can be judged on the exact timing of a bad
run — no second run, no luck — and the replay of the code as it is checks itself against
the run's real recording.

    .venv/bin/python bench/replay.py DIR/salon-0-0 [...]

Last line: one JSON object.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from loss import read, score, to_score_rate  # noqa: E402

from media.codec import OpusDecoder, OpusEncoder  # noqa: E402
from media.conceal import ConcealStats, next_frame_and_packet  # noqa: E402
from media.jitter import JitterBuffer  # noqa: E402
from media.passthrough import PassThrough  # noqa: E402
from media.session import protected_jitter  # noqa: E402


def replay(
    trace: list[dict[str, Any]], jitter: JitterBuffer, window: tuple[float, float] | None = None
) -> dict[str, Any]:
    """WINDOW (monotonic start, end): keep only what a listener heard (all ticks run)."""
    pushes = Counter(e["u"] for e in trace if e["k"] == "push")
    uplink = pushes.most_common(1)[0][0]
    rooms = Counter(e["room"] for e in trace if e["k"] == "tick")
    room = rooms.most_common(1)[0][0]
    decoder, encoder, listener = OpusDecoder(), OpusEncoder(32_000), OpusDecoder()
    passthrough = PassThrough(48_000)
    stats = ConcealStats()
    out: list[np.ndarray] = []
    sent = 0
    for event in trace:
        if event["k"] == "push" and event["u"] == uplink:
            jitter.push(event["seq"], bytes.fromhex(event["p"]), event["r"])
        elif event["k"] == "tick" and event["room"] == room:
            pcm, packet = next_frame_and_packet(jitter, decoder, True, stats)
            if pcm is None:
                pcm = np.zeros(960, dtype=np.float32)
                packets: dict[str, bytes | None] = {}
            else:
                packets = {"speaker": packet}
            encoded = encoder.encode(pcm)
            passed = passthrough.choose(packets)
            pcm = listener.decode(passed if passed is not None else encoded)
            if window is None or window[0] <= event["t"] <= window[1]:
                out.append(pcm)
                sent += 1
    return {
        "pcm": np.concatenate(out),
        "ticks": sent,
        "passed": passthrough.stats.passed,
        "mixed": passthrough.stats.mixed,
        "jitter": vars(jitter.stats),
    }


POLICIES = {"as_built": protected_jitter}


def main() -> None:
    report: dict[str, Any] = {}
    names = [a for a in sys.argv[1:] if a.startswith("--policy=")]
    chosen = [n.split("=", 1)[1] for n in names] or list(POLICIES)
    for arg in (a for a in sys.argv[1:] if not a.startswith("--")):
        run = Path(arg)
        src = to_score_rate(read(run.parent / "speech.wav"))
        trace = [json.loads(line) for line in (run / "node.trace").read_text().splitlines()]
        row: dict[str, Any] = {}
        window = None
        heard_trace = run / "origin.trace"
        if heard_trace.exists():  # the origin listener's session, on the same clock
            times = [json.loads(line)["t"] for line in heard_trace.read_text().splitlines()]
            window = (min(times), max(times))
        for name in chosen:
            result = replay(trace, POLICIES[name](), window)
            heard = to_score_rate(result.pop("pcm") * 32768.0)
            row[name] = {**score(heard, src), **result}
        report[run.name] = row
        print(run.name, json.dumps(row), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
