"""Speech quality under packet loss on every leg: Salon as built against the baseline.

A network namespace with only a loopback interface drops a share of every UDP packet at
random (nftables ``meta l4proto udp numgen random mod 100 < N drop``, on the output hook:
each packet crosses it once). Inside it run two real nodes and three real ``salon bot``s
(tests/support/lossy_room.py): alice's host bot on node A plays speech (espeak-ng, looped),
bob listens on A, carol on B through the relay trunk — so the host's uplink, both
downlinks and the trunk lose packets at the same rate.

Each listener's recording is cut into whole loops of the speech (each one aligned on the
source by cross-correlation, at 16 kHz) and scored with PESQ wide-band (ITU-T P.862.2,
``pesq``) and STOI (``pystoi``); the figures are the mean over loops. Bytes per second are
the RTP payload bytes a listener received per second of stream (RED included; the RTP
header, SRTP tag and UDP/IP add a constant ≈ 58 bytes per packet, 50 packets a second).

Modes: ``salon`` (concealment, FEC, RED, trunk redundancy: ``SALON_LOSS_PROTECTION=true``,
the default) and ``baseline`` (``SALON_LOSS_PROTECTION=false``: lost frames are silence,
no FEC, no RED, no trunk redundancy); ``mixed`` is ``salon`` with
``SALON_SPEAKER_PASSTHROUGH=false`` (a lone speaker's packets re-encoded by the room, two
codec generations, as before pass-through). The codec alone (libopus 32 kbit/s encode + decode
of the same speech, no network) is the ceiling.

    .venv/bin/python bench/loss.py                       # 0 2 5 10 %, both modes, ~8 min
    .venv/bin/python bench/loss.py --loss 5 --mode salon --seconds 30

Needs root (network namespaces), nftables, espeak-ng and sox. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np
from pesq import pesq
from pystoi import stoi
from scipy.signal import correlate, resample_poly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from media.client import UPLINK_BITRATE  # noqa: E402
from media.codec import OpusEncoder  # noqa: E402
from media.opus import Decoder  # noqa: E402
from tests.support.lossy_room import lossy_namespace, netns_available, run_in  # noqa: E402

TEXT = (
    "The quick brown fox jumps over the lazy dog. Salon rooms carry voices between "
    "servers that trust each other. A listener on a train still hears every word, "
    "even when the network drops a few packets along the way."
)
RATE = 48_000
SCORE_RATE = 16_000


def make_speech(path: Path) -> np.ndarray:
    """espeak-ng speech at 48 kHz mono 16-bit, with 300 ms of silence after it."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(raw), TEXT], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(path), "pad", "0", "0.3"],
        check=True,
    )
    return read(path)


def read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def to_score_rate(pcm: np.ndarray) -> np.ndarray:
    return np.asarray(resample_poly(pcm / 32768.0, 1, RATE // SCORE_RATE))


CHUNK = SCORE_RATE  # re-aligned every second
SLACK = SCORE_RATE // 4  # by up to ±250 ms from the previous second's delay


def follow(recording: np.ndarray, ref: np.ndarray, start: int) -> np.ndarray | None:
    """The loop of REF starting near START, re-aligned chunk by chunk.

    The node's timeline moves by whole 20 ms frames when a jitter buffer waits for a late
    packet or drops one it has too many of (and when a loaded machine delays the mixer),
    so one alignment per loop would score a 100 ms shift as noise: STOI compares 384 ms
    windows without looking for a delay. Each second of the reference is found again
    within ±250 ms of where the previous one was (silent seconds keep the last delay).
    A shift still costs what it costs inside its second: the glitch itself is scored.
    (Shorter pieces were tried: at 250 ms the seams between pieces, aligned a few samples
    apart, cost a clean recording 0.7 PESQ; at 1 s a clean one scores as the codec chain.)
    """
    out = np.zeros(len(ref))
    delay = start
    for c in range(0, len(ref), CHUNK):
        piece = ref[c : c + CHUNK]
        if np.sqrt(np.mean(piece**2)) > 1e-3:
            low = max(0, delay + c - SLACK)
            window = recording[low : delay + c + len(piece) + SLACK]
            if len(window) >= len(piece):
                corr = correlate(window, piece, mode="valid", method="fft")
                delay = low + int(np.argmax(corr)) - c
        segment = recording[delay + c : delay + c + len(piece)]
        if len(segment) < len(piece):
            return None
        out[c : c + len(piece)] = segment
    return out


def loops(recording: np.ndarray, ref: np.ndarray) -> list[np.ndarray]:
    """Every whole loop of REF in RECORDING that is not mostly silence (16 kHz signals)."""
    period = len(ref)
    if len(recording) < period:
        return []
    corr = correlate(recording, ref, mode="valid", method="fft")
    start = int(np.argmax(corr[: min(len(corr), period)]))
    found = []
    while start + period <= len(recording):
        segment = follow(recording, ref, start)
        if segment is not None and np.sqrt(np.mean(segment**2)) > 1e-3:
            found.append(segment)
        start += period
    return found


def score(recording: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    segments = loops(recording, ref)
    if not segments:
        return {"pesq_wb": float("nan"), "stoi": float("nan"), "loops": 0}
    pesqs = [pesq(SCORE_RATE, ref, seg, "wb") for seg in segments]
    stois = [stoi(ref, seg, SCORE_RATE, extended=False) for seg in segments]
    return {
        "pesq_wb": round(float(np.mean(pesqs)), 2),
        "stoi": round(float(np.mean(stois)), 3),
        "loops": len(segments),
    }


def _code(pcm: np.ndarray, bitrate: int, loss_percent: int) -> np.ndarray:
    encoder, decoder = OpusEncoder(bitrate), Decoder(RATE, 960)
    encoder.set_packet_loss(loss_percent)
    frames = range(0, len(pcm), 960)
    return np.concatenate([decoder.decode(encoder.encode(pcm[i : i + 960])) for i in frames])


def codec_ceilings(speech: np.ndarray) -> dict[str, dict[str, float]]:
    """What no network can improve: libopus 32 kbit/s once (``codec_alone``), and the two
    generations a re-encoded listener hears (``two_generations``: the speaker's uplink as the
    bot sends it on a clean network, media/client.py — 32 kbit/s, FEC share 0 since fec16 —,
    decoded and re-encoded by the room at 32 kbit/s)."""
    pcm = (speech / 32768.0).astype(np.float32)
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % 960, dtype=np.float32)])
    once = _code(pcm, 32_000, 0)
    twice = _code(_code(pcm, UPLINK_BITRATE, 0), 32_000, 0)
    ref = to_score_rate(speech)
    return {
        name: score(to_score_rate(np.concatenate([out] * 3) * 32768.0), ref)
        for name, out in (("codec_alone", once), ("two_generations", twice))
    }


def run(
    losses: list[int],
    modes: list[str],
    seconds: float,
    repeat: int,
    keep: Path | None,
    trace: bool = False,
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="salon-loss-"))
    try:
        speech = make_speech(work / "speech.wav")
        ref = to_score_rate(speech)
        results: dict[str, Any] = {**codec_ceilings(speech), "runs": []}
        print(f"speech {len(speech) / RATE:.1f} s; {json.dumps(results)}")
        for loss, mode, n in ((x, m, n) for n in range(repeat) for x in losses for m in modes):
            out = work / f"{mode}-{loss}-{n}"
            with lossy_namespace() as ns:
                ns.set_loss(loss)
                session = run_in(
                    ns, work / "speech.wav", seconds, out, mode != "baseline", mode == "salon",
                    trace,
                )  # fmt: skip
            row: dict[str, Any] = {"loss_percent": loss, "mode": mode, "dir": out.name}
            for key in ("origin", "relay"):
                bot = session[key]
                heard = to_score_rate(read(Path(bot["wav"])))
                packets = max(1, bot["packets_received"])
                row[key] = {
                    **score(heard, ref),
                    "bytes_per_s": round(bot["octets_received"] / (packets * 0.02)),
                    "recording_s": round(len(heard) / SCORE_RATE, 2),
                    "concealed": bot.get("concealed", {}),
                }
            for key, value in session.items():  # the origin's own counters
                if key.startswith(("origin_", "jitter_", "passthrough_")):
                    row[key] = value
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
        if keep is not None:
            shutil.copytree(work, keep, dirs_exist_ok=True)
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def rescore(keep: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Score kept recordings again (after a change to the scoring, not to Salon)."""
    ref = to_score_rate(read(keep / "speech.wav"))
    for row in results["runs"]:
        for key in ("origin", "relay"):
            heard = to_score_rate(read(keep / row["dir"] / f"{key}.wav"))
            row[key].update(score(heard, ref))
    return results


def table(results: dict[str, Any]) -> str:
    """Mean (min–max) over repeats per loss rate and mode, plus the timing events."""
    lines = [
        "| loss | mode | origin PESQ-wb | origin STOI | relay PESQ-wb | relay STOI "
        "| B/s origin / relay | uplink stretched+skipped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted(
        {(r["loss_percent"], r["mode"]) for r in results["runs"]},
        key=lambda k: (k[0], k[1] != "salon"),
    )
    for loss, mode in keys:
        rows = [r for r in results["runs"] if (r["loss_percent"], r["mode"]) == (loss, mode)]

        def cell(key: str, field: str, rows: list[dict[str, Any]] = rows) -> str:
            values = [r[key][field] for r in rows]
            if len(values) == 1:
                return f"{values[0]}"
            return f"{np.mean(values):.2f} ({min(values)}–{max(values)})"

        events = [
            sum(v.get("stretched", 0) + v.get("dropped", 0) for k, v in r.items()
                if k.startswith("jitter_"))
            for r in rows
        ]  # fmt: skip
        rate = f"{rows[0]['origin']['bytes_per_s']} / {rows[0]['relay']['bytes_per_s']}"
        lines.append(
            f"| {loss} % | {mode} | {cell('origin', 'pesq_wb')} | {cell('origin', 'stoi')} "
            f"| {cell('relay', 'pesq_wb')} | {cell('relay', 'stoi')} | {rate} | {events} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loss", type=int, nargs="+", default=[0, 2, 5, 10])
    parser.add_argument("--mode", choices=["salon", "mixed", "baseline"], nargs="+",
                        default=["salon", "baseline"])  # fmt: skip
    parser.add_argument("--seconds", type=float, default=30.0, help="each listener's session")
    parser.add_argument("--repeat", type=int, default=1, help="runs per loss rate and mode")
    parser.add_argument("--keep", type=Path, help="copy recordings and speech here")
    parser.add_argument(
        "--trace", action="store_true",
        help="with --keep: each bot also writes what it sent and received (bench/trace.py)",
    )  # fmt: skip
    parser.add_argument(
        "--rescore", type=Path, metavar="OUTPUT", help="re-score a kept run: its printed output"
    )
    args = parser.parse_args()
    if args.rescore:
        last = args.rescore.read_text().strip().splitlines()[-1]
        results = rescore(args.keep, json.loads(last))
        print(table(results))
        print(json.dumps(results))
        return
    reason = netns_available()
    if reason:
        raise SystemExit(f"bench/loss.py {reason}")
    results = run(args.loss, args.mode, args.seconds, args.repeat, args.keep, args.trace)
    print(table(results))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
