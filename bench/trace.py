"""Where a listener's recording differs from what the speaker encoded (bench/loss.py --trace).

Reads one kept session directory of ``bench/loss.py --keep DIR --trace`` (``host.trace``,
``origin.trace``/``relay.trace``, ``origin.wav``/``relay.wav``, and ``speech.wav`` one
level up) and, timing-free, reports per listener:

- **packets**: each received payload matched to the host's sent packets (byte-equal): how
  many are the speaker's own (pass-through), how many are not (the room's encoding: a
  fallback tick), where the sequence of the speaker's packets jumps (a frame the node
  skipped, ``skip``) or stalls (a frame it inserted, ``insert``), and sequence-number or
  timestamp gaps on the listener's RTP timeline;
- **recording**: the recording against the reference — the host's sent packets decoded in
  order by a fresh decoder, i.e. its encode + decode — aligned frame by frame (20 ms),
  where the alignment changes;
- **scores**: PESQ-wb of the recording and of the reference with bench/loss.py's scoring,
  so a drop can be charged to the network path or to the scoring.

    .venv/bin/python bench/trace.py DIR/salon-0-0 [DIR/salon-5-0 ...]

Last line: one JSON object.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from loss import read, score, to_score_rate  # noqa: E402

from media.opus import Decoder  # noqa: E402

FRAME = 960


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def match(sent: list[bytes], received: list[bytes]) -> list[int | None]:
    """Each received payload's index among SENT (the nearest after the previous match)."""
    where: dict[bytes, list[int]] = {}
    for i, payload in enumerate(sent):
        where.setdefault(payload, []).append(i)
    out: list[int | None] = []
    last = -1
    for payload in received:
        candidates = where.get(payload, [])
        if not candidates:
            out.append(None)
            continue
        best = min(candidates, key=lambda i: abs(i - (last + 1)))
        out.append(best)
        last = best
    return out


def packets(host: list[dict[str, Any]], listener: list[dict[str, Any]]) -> dict[str, Any]:
    sent = [bytes.fromhex(e["p"]) for e in host if e["k"] == "sent"]
    got = [e for e in listener if e["k"] == "received"]
    idx = match(sent, [bytes.fromhex(e["p"]) for e in got])
    own = [i for i in idx if i is not None]
    steps: dict[str, list[int]] = {"skip": [], "insert": [], "back": []}
    prev: int | None = None
    last_n = 0
    for n, i in enumerate(idx):
        if i is None:
            continue
        if prev is not None:
            # frames of the speaker between two consecutive received packets of the speaker
            gap_packets = n - last_n
            d = i - prev
            if d > gap_packets:
                steps["skip"].append(n)
            elif d < gap_packets:
                steps["insert" if d >= 0 else "back"].append(n)
        prev, last_n = i, n
    seq_gaps = sum(1 for a, b in itertools.pairwise(got) if (b["seq"] - a["seq"]) & 0xFFFF != 1)
    ts_jumps = sum(
        1 for a, b in itertools.pairwise(got) if (b["ts"] - a["ts"]) & 0xFFFFFFFF != FRAME
    )
    return {
        "sent": len(sent),
        "received": len(got),
        "own": len(own),
        "not_own": len(idx) - len(own),
        "not_own_at": [n for n, i in enumerate(idx) if i is None][:40],
        "skips": len(steps["skip"]),
        "inserts": len(steps["insert"]),
        "backs": len(steps["back"]),
        "skip_at": steps["skip"][:40],
        "insert_at": steps["insert"][:40],
        "seq_gaps": seq_gaps,
        "ts_jumps": ts_jumps,
    }


def reference(host: list[dict[str, Any]]) -> np.ndarray:
    """The host's sent packets decoded in order: its encode + decode (48 kHz float)."""
    decoder = Decoder(48_000, FRAME)
    sent = [bytes.fromhex(e["p"]) for e in host if e["k"] == "sent"]
    return np.concatenate([decoder.decode(p) for p in sent]) if sent else np.zeros(0)


def alignment(recording: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    """Frame by frame: the offset of each loud recording frame in REF (exact match)."""
    from scipy.signal import correlate

    probe = recording[: min(len(recording), 48_000 * 10)]
    corr = correlate(ref, probe, mode="valid", method="fft") if len(ref) > len(probe) else None
    if corr is None:
        return {}
    offset = int(np.argmax(corr))  # recording[n] ≈ ref[n + offset]
    changes: list[tuple[int, int]] = []
    mismatched = 0
    loud = 0
    for f in range(len(recording) // FRAME):
        frame = recording[f * FRAME : (f + 1) * FRAME]
        if np.sqrt(np.mean(frame**2)) < 1e-3:
            continue
        loud += 1
        start = f * FRAME + offset
        seg = ref[start : start + FRAME]
        if len(seg) == FRAME and np.max(np.abs(seg - frame)) < 2e-3:
            continue
        # look for the offset that matches now (±15 frames)
        found = None
        for d in range(-15, 16):
            s = start + d * FRAME
            seg = ref[s : s + FRAME] if s >= 0 else np.zeros(0)
            if len(seg) == FRAME and np.max(np.abs(seg - frame)) < 2e-3:
                found = d
                break
        if found is None:
            mismatched += 1
        elif found:
            offset += found * FRAME
            changes.append((f, found))
    return {"loud_frames": loud, "mismatched_frames": mismatched, "shifts": changes[:40]}


def main() -> None:
    report: dict[str, Any] = {}
    for arg in sys.argv[1:]:
        run = Path(arg)
        speech = read(run.parent / "speech.wav")
        src = to_score_rate(speech)
        host = events(run / "host.trace")
        ref = reference(host)
        row: dict[str, Any] = {"reference": score(to_score_rate(ref * 32768.0), src)}
        for key in ("origin", "relay"):
            trace = run / f"{key}.trace"
            if not trace.exists():
                continue
            listener = events(trace)
            rec = read(run / f"{key}.wav") / 32768.0
            row[key] = {
                "packets": packets(host, listener),
                "recording": alignment(rec, ref),
                "score": score(to_score_rate(rec * 32768.0), src),
            }
        report[run.name] = row
        print(run.name, json.dumps(row), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
