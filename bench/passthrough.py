"""Pass-through against re-encoding, with the machine's timing taken out.

bench/loss.py measures the whole system (real nodes, bots, a lossy namespace), and on the
shared 2-core box its runs differ by up to 1 PESQ with how often the mixer or a jitter
buffer was late. This bench runs the node's own parts in one process, one 20 ms tick at a
time, so the only differences are the ones the design makes:

speech (espeak-ng) → the bot's encoder (media/client.py: 32 kbit/s, in-band FEC at 10 %)
→ a random drop of LOSS % (the uplink, what RED did not repair) → the speaker's ``Uplink``
jitter buffer and decoder (``protected_jitter``, FEC/PLC) → the room:
``PassThrough.choose`` and the room's ``OpusEncoder`` (32 kbit/s, FEC sized to LOSS) → a
random drop of LOSS % (the downlink) → the listening bot's ``Timeline`` (FEC/PLC) →
PESQ-wb and STOI as bench/loss.py scores them.

Modes in the same run, on the same drops: ``passthrough`` (the default) and ``mixed``
(``speaker_passthrough = false``: every tick the room's encoding). Ceilings: libopus
32 kbit/s alone and the bot's encoder alone with its FEC (what pass-through can reach).

    .venv/bin/python bench/passthrough.py --loss 0 2 5 10 --seeds 3

Needs espeak-ng and sox. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loss import make_speech, score, to_score_rate  # noqa: E402
from media.client import UPLINK_BITRATE, UPLINK_LOSS_PERCENT  # noqa: E402
from media.codec import OpusEncoder  # noqa: E402
from media.conceal import ConcealStats, Timeline  # noqa: E402
from media.mixer import FRAME_SAMPLES  # noqa: E402
from media.passthrough import PassThrough  # noqa: E402
from media.session import Uplink  # noqa: E402

ROOM_BITRATE = 32_000
MAX_BITRATE = 48_000  # speaker_passthrough_max_bitrate's default
REPEATS = 3  # the speech played this many times in a row (the bot loops it)


def frames(pcm: np.ndarray) -> list[np.ndarray]:
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % FRAME_SAMPLES, dtype=np.float32)])
    return [pcm[i : i + FRAME_SAMPLES] for i in range(0, len(pcm), FRAME_SAMPLES)]


def session(
    speech: np.ndarray,
    loss: int,
    seed: int,
    mode: str,
    uplink_loss: float | None = None,
    speaker_bitrate: int = UPLINK_BITRATE,
    speaker_fec: int = UPLINK_LOSS_PERCENT,
) -> dict[str, Any]:
    """One listener's recording of the looped speech through the room's parts.

    UPLINK_LOSS: the uplink's own rate (default LOSS). MODE ``gap`` is an experiment, not
    what the node does: on a tick that falls back while the speaker is alone, send nothing
    (the listener conceals from the next pass-through packet's FEC) instead of the room's
    encoding."""
    passthrough = mode != "mixed"
    up = loss if uplink_loss is None else uplink_loss
    drops = random.Random(seed)
    speaker = OpusEncoder(speaker_bitrate)
    speaker.set_packet_loss(speaker_fec)
    uplink = Uplink(protect=True)
    room = OpusEncoder(ROOM_BITRATE)
    room.set_packet_loss(loss)
    chooser = PassThrough(MAX_BITRATE) if passthrough else None
    listener = Timeline(protect=True)
    stats = ConcealStats()
    pcm = (np.tile(speech, REPEATS) / 32768.0).astype(np.float32) * 0.7071
    out: list[np.ndarray] = []
    sent = passed = payload_bytes = 0
    for n, frame in enumerate(frames(pcm)):
        packet = speaker.encode(frame)
        if drops.random() * 100 >= up:
            uplink.push(n & 0xFFFF, packet)
        heard, decoded_from = uplink.next_frame_and_packet(True, stats)
        if heard is None:
            continue  # still priming
        encoded = room.encode(heard)
        chosen = chooser.choose({"speaker": decoded_from}) if chooser is not None else None
        passed += chosen is not None
        sent += 1
        if mode == "gap" and chosen is None and decoded_from is None:
            continue
        payload_bytes += len(chosen or encoded)
        if drops.randrange(100) >= loss:
            out.extend(listener.push(sent & 0xFFFF, sent * FRAME_SAMPLES, chosen or encoded))
    out.extend(listener.flush())
    recording = np.concatenate(out) * 32768.0 / 0.7071
    result = score(to_score_rate(recording), to_score_rate(speech))
    return {
        **result,
        "passed": passed,
        "ticks": sent,
        "rebuilt_uplink": stats.fec + stats.plc,
        "bytes_per_s": payload_bytes * 50 / max(1, sent),  # Opus payload, before any RED
    }


def one_generation(speech: np.ndarray, bitrate: int, loss_percent: int) -> dict[str, Any]:
    encoder, decoder = OpusEncoder(bitrate), Timeline(protect=True)
    encoder.set_packet_loss(loss_percent)
    pcm = (np.tile(speech, REPEATS) / 32768.0).astype(np.float32)
    out: list[np.ndarray] = []
    for n, frame in enumerate(frames(pcm)):
        out.extend(decoder.push(n, n * FRAME_SAMPLES, encoder.encode(frame)))
    out.extend(decoder.flush())
    return score(to_score_rate(np.concatenate(out) * 32768.0), to_score_rate(speech))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loss", type=int, nargs="+", default=[0, 2, 5, 10])
    parser.add_argument("--seeds", type=int, default=3, help="drop patterns per loss rate")
    parser.add_argument(
        "--uplink-loss", type=float, help="the uplink's rate (default: --loss; RED repairs most)"
    )
    parser.add_argument(
        "--speaker-bitrate", type=int, default=UPLINK_BITRATE, help="the speaker's Opus bitrate"
    )
    parser.add_argument(
        "--speaker-fec",
        type=int,
        default=UPLINK_LOSS_PERCENT,
        help="the speaker's expected loss in percent (its in-band FEC share)",
    )
    args = parser.parse_args()
    speaker = (args.speaker_bitrate, args.speaker_fec)
    with tempfile.TemporaryDirectory(prefix="salon-passthrough-") as work:
        speech = make_speech(Path(work) / "speech.wav")
    results: dict[str, Any] = {
        "codec_alone_32k": one_generation(speech, ROOM_BITRATE, 0),
        "uplink_alone": one_generation(speech, *speaker),
        "speaker": {"bitrate": speaker[0], "fec_loss_percent": speaker[1]},
    }
    print(json.dumps(results), flush=True)
    print("| loss | pass-through PESQ-wb | mixed PESQ-wb | ratio | pass-through STOI | mixed STOI "
          "| ticks passed | gap (experiment) PESQ-wb | B/s pass-through / mixed |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for loss in args.loss:
        rows = {
            mode: [
                session(speech, loss, seed, mode, args.uplink_loss, *speaker)
                for seed in range(args.seeds)
            ]
            for mode in ("passthrough", "mixed", "gap")
        }
        mean = {
            mode: {
                key: round(float(np.mean([r[key] for r in runs])), 3) for key in ("pesq_wb", "stoi")
            }
            for mode, runs in rows.items()
        }
        for mode, runs in rows.items():
            mean[mode]["bytes_per_s"] = round(float(np.mean([r["bytes_per_s"] for r in runs])))
        share = np.mean([r["passed"] / max(1, r["ticks"]) for r in rows["passthrough"]])
        ratio = round(mean["passthrough"]["pesq_wb"] / mean["mixed"]["pesq_wb"], 3)
        results[f"loss_{loss}"] = {**mean, "ratio": ratio, "passed_share": round(float(share), 3)}
        print(
            f"| {loss} % | {mean['passthrough']['pesq_wb']} | {mean['mixed']['pesq_wb']} "
            f"| {ratio} | {mean['passthrough']['stoi']} | {mean['mixed']['stoi']} "
            f"| {share:.1%} | {mean['gap']['pesq_wb']} "
            f"| {mean['passthrough']['bytes_per_s']} / {mean['mixed']['bytes_per_s']} |",
            flush=True,
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
