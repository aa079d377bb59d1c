"""DTX for silent rooms: what it saves and what it does to the onset of speech (timing-free).

The room encoder (media/codec.py settings: libopus VOIP, 32 kbit/s, in-band FEC on, 0 %
expected loss — a clean room) encodes, one 20 ms tick at a time:

- ``conversation``: espeak-ng sentences separated by 1–3 s of digital silence (seeded), as
  a stage of people taking turns;
- ``conversation_tone``: the same with room tone (white noise, ``--tone-db``, default
  -60 dBFS) throughout, as an open microphone without noise suppression would give;
- ``empty``: 30 s of digital silence (an empty stage: no speaker contributes a frame, the
  mix is zeros), and ``empty_tone``: 30 s of the room tone alone.

Modes, each on the same signal in the same run:

- ``off``: no DTX, a packet every tick — the room as built, the baseline;
- ``on``: ``OPUS_SET_DTX`` on; libopus then emits a TOC-only packet (≤ 2 bytes) for each
  frame it does not code and a coded comfort-noise update every 400 ms, and the send edge
  does what libwebrtc does (``WebRtcOpus_Encode`` in
  modules/audio_coding/codecs/opus/opus_interface.cc: a packet of ≤ 2 bytes is sent only
  when the one before was not such a packet): the first of a run goes, the rest are not
  sent; the listener's sequence numbers do not advance over them (RFC 3551 §4.1), its
  timestamps do;
- ``gated``: DTX switched on only on ticks whose mix is digital silence (the stand-in for
  "no speaker contributed a frame") and off on the first tick with a signal — does the
  encoder's own activity decision cost the onset?
- ``primed``: ``on``, and when a coded frame follows packets that were not sent, one coded
  frame of digital silence (made once by a second encoder with the room's settings) is
  sent first as the frame of the tick before — an experiment: does the onset cost come
  from the receiving decoder coming out of concealment?

For each signal and mode the bench reports, per listener:

- packets and bytes per second sent (Opus payload; ``wire`` adds the RTP header with the
  node's two one-byte extensions, the SRTP tag, UDP and IPv4: the measured entry size
  plus 28);
- fan-out CPU: the same packets (the real payload sizes, the DTX run's sequence numbers)
  sent by media/batch.py to ``--listeners`` local UDP sockets with pylibsrtp sessions, as
  bench/batch.py does — native (media/_fastpath.c) and Python — thread CPU per second of
  the signal, and µs per listener-packet;
- the onset (speech signals only), decoded by the receiving side as built: the listening
  bot's ``Timeline`` (media/conceal.py: reorder window, libopus decoder, a timestamp jump
  with no missing sequence number concealed frame by frame) fed exactly the packets sent:
  PESQ-wb of each whole utterance; PESQ-wb of the first 300 ms of every talkspurt put end
  to end (100 ms of silence between, the same cuts in both modes); the energy of those
  first 300 ms against the baseline's (dB); the onset delay: when the decoded 5 ms
  envelope first comes within 20 dB of the talkspurt's peak, minus when the source's does;
  and concealed frames.

Ratios are each mode / ``off`` in the same run. ::

    .venv/bin/python bench/dtx.py [--listeners 100] [--seed 1]

Needs espeak-ng and sox. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
from pesq import pesq
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.batch import build, drain  # noqa: E402
from media.batch import Entry, load_native, send_batch_python  # noqa: E402
from media.conceal import Timeline  # noqa: E402
from media.opus import OPUS_SET_DTX_REQUEST, Encoder  # noqa: E402

RATE = 48_000
SCORE_RATE = 16_000
FRAME = 960
BITRATE = 32_000  # audio_bitrate's default
MODES = ("off", "on", "gated", "primed")
ONSET = RATE * 3 // 10  # the first 300 ms of a talkspurt
IP_UDP = 28  # IPv4 + UDP headers
LEVEL = b"\x9e"
SENTENCES = [
    "Welcome back to the room, everyone.",
    "I wanted to ask about the new release.",
    "Sure, it went out on Tuesday.",
    "Did the relay problem get fixed?",
    "Yes, the trunk now carries redundancy.",
    "Great. Anyone else have a question?",
    "Just one: when is the next meeting?",
    "Next week, same time. Thanks, all.",
]


def espeak(text: str, work: Path, n: int) -> np.ndarray:
    raw, wav = work / f"{n}.raw.wav", work / f"{n}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", "-D", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(wav)], check=True
    )
    with wave.open(str(wav), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    return pcm / 32768.0 * 0.7071


def conversation(work: Path, rng: random.Random) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The sentences with 1–3 s of silence before each; (start, end) of each utterance."""
    pieces: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    at = 0
    for n, text in enumerate(SENTENCES):
        gap = np.zeros(int(RATE * rng.uniform(1.0, 3.0)) // FRAME * FRAME, dtype=np.float32)
        speech = espeak(text, work, n)
        loud = np.flatnonzero(np.abs(speech) > 1e-3)
        speech = speech[loud[0] : loud[-1] + 1]  # the utterance itself, no espeak padding
        pieces += [gap, speech]
        at += len(gap)
        spans.append((at, at + len(speech)))
        at += len(speech)
    pieces.append(np.zeros(RATE, dtype=np.float32))
    pcm = np.concatenate(pieces)
    return np.concatenate([pcm, np.zeros(-len(pcm) % FRAME, dtype=np.float32)]), spans


def room_tone(samples: int, rng: np.random.Generator, dbfs: float) -> np.ndarray:
    return (rng.standard_normal(samples) * 10 ** (dbfs / 20)).astype(np.float32)


def encode(pcm: np.ndarray, mode: str) -> list[bytes]:
    """The room encoder's packet of every tick (media/codec.py settings, clean room).

    MODE ``off``: no DTX; ``on``: ``OPUS_SET_DTX`` 1 throughout; ``gated``: DTX only on
    ticks whose mix is digital silence (the stand-in for "no speaker contributed a frame"),
    switched off again on the first tick with a signal."""
    encoder = Encoder(RATE, BITRATE, fec=True)
    dtx = mode == "on"
    if dtx:
        encoder.ctl(OPUS_SET_DTX_REQUEST, 1)
    packets = []
    for i in range(0, len(pcm), FRAME):
        frame = np.clip(pcm[i : i + FRAME], -1.0, 1.0)
        if mode == "gated" and dtx != (not frame.any()):
            dtx = not dtx
            encoder.ctl(OPUS_SET_DTX_REQUEST, int(dtx))
        packets.append(encoder.encode(frame))
    return packets


def silence_frame() -> bytes:
    """A coded frame of digital silence (the room encoder's settings, DTX off): the primer."""
    encoder = Encoder(RATE, BITRATE, fec=True)
    frames = [encoder.encode(np.zeros(FRAME, dtype=np.float32)) for _ in range(5)]
    return frames[-1]  # past the encoder's start-up frames


def send_edge(packets: list[bytes], primer: bytes | None = None) -> list[tuple[int, bytes]]:
    """(tick, packet) of what a listener is sent: a ≤ 2-byte packet only when the one
    before was not one (libwebrtc's rule); everything without DTX. With PRIMER, a coded
    frame follows a run of packets not sent: PRIMER goes first, as the frame of the tick
    before it, so that the listener's decoder comes out of concealment on a real frame."""
    sent: list[tuple[int, bytes]] = []
    previous_empty = skipped = False
    for tick, packet in enumerate(packets):
        empty = len(packet) <= 2
        if empty and previous_empty:
            skipped = True
        else:
            if primer is not None and skipped and not empty:
                sent.append((tick - 1, primer))
            sent.append((tick, packet))
            skipped = False
        previous_empty = empty
    return sent


def receive(sent: list[tuple[int, bytes]], ticks: int) -> tuple[np.ndarray, dict[str, int]]:
    """The listening bot's Timeline fed the packets sent: sequence numbers only for those."""
    timeline = Timeline(protect=True)
    out: list[np.ndarray] = []
    for seq, (tick, packet) in enumerate(sent):
        out.extend(timeline.push(seq & 0xFFFF, tick * FRAME, packet))
    out.extend(timeline.flush())
    last = sent[-1][0] if sent else -1
    out.extend([np.zeros(FRAME, dtype=np.float32)] * (ticks - 1 - last))  # trailing DTX run
    stats = timeline.stats
    return np.concatenate(out), {"decoded": stats.decoded, "concealed": stats.fec + stats.plc}


def to16(pcm: np.ndarray) -> np.ndarray:
    return np.asarray(resample_poly(pcm, 1, RATE // SCORE_RATE))


def envelope_onset(pcm: np.ndarray) -> int | None:
    """First sample whose 5 ms RMS is within 20 dB of the signal's loudest 5 ms."""
    win = RATE // 200
    n = len(pcm) // win
    if n == 0:
        return None
    rms = np.sqrt(np.mean(pcm[: n * win].reshape(n, win) ** 2, axis=1)) + 1e-9
    above = np.flatnonzero(rms >= rms.max() * 0.1)
    return int(above[0] * win) if len(above) else None


def onset_figures(
    source: np.ndarray, decoded: np.ndarray, spans: list[tuple[int, int]], delay: int
) -> dict[str, Any]:
    """PESQ-wb of utterances and of onsets, onset energy, onset delay (decoded vs source)."""
    utterances, onsets_ref, onsets_out, energies, delays = [], [], [], [], []
    pad = RATE // 10
    gap = np.zeros(RATE // 10, dtype=np.float32)
    for start, end in spans:
        ref = source[start - pad : end + pad]
        out = decoded[start - pad + delay : end + pad + delay]
        utterances.append(pesq(SCORE_RATE, to16(ref), to16(out), "wb"))
        head_ref = source[start : start + ONSET]
        head_out = decoded[start + delay : start + delay + ONSET]
        onsets_ref += [head_ref, gap]
        onsets_out += [head_out, gap]
        energies.append(float(np.sum(head_out**2)))
        look = RATE // 10  # the envelope over the talkspurt's first 400 ms, 100 ms before
        a = envelope_onset(source[start - look : start + ONSET + look])
        b = envelope_onset(decoded[start - look + delay : start + ONSET + look + delay])
        delays.append((b - a) * 1000 / RATE if a is not None and b is not None else float("nan"))
    onsets = pesq(
        SCORE_RATE, to16(np.concatenate(onsets_ref)), to16(np.concatenate(onsets_out)), "wb"
    )
    return {
        "pesq_wb_utterances": round(float(np.mean(utterances)), 3),
        "pesq_wb_utterance_min": round(float(np.min(utterances)), 3),
        "pesq_wb_onsets_300ms": round(float(onsets), 3),
        "onset_energy": energies,
        "onset_delay_ms": delays,
    }


def fanout_cpu(
    sent: list[tuple[int, bytes]], listeners: int, native: Any, seq_base: int
) -> dict[str, float]:
    """Thread CPU of sending SENT to LISTENERS sockets through media/batch.py, both paths."""
    receivers = []
    for _ in range(min(listeners, 64)):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        receivers.append(rx)
    entries, senders = build(listeners, receivers)
    result: dict[str, float] = {}
    try:
        for name, send in (("native", native.send_batch), ("python", send_batch_python)):
            total = 0.0
            for seq, (tick, packet) in enumerate(sent):
                batch: list[Entry] = [
                    (e[0], (seq_base + seq) & 0xFFFF, 111, packet) for e in entries
                ]
                t0 = time.thread_time()
                send(batch, tick * FRAME, LEVEL)
                total += time.thread_time() - t0
                drain(receivers)
            seq_base += len(sent)  # libsrtp refuses a replayed sequence number
            result[f"{name}_s"] = total
            result[f"{name}_us_per_packet"] = total / max(1, len(sent) * listeners) * 1e6
        overhead = len(entries[0][0].ext_head) + 1 + len(entries[0][0].ext_tail) + 12 + 10
        result["overhead_bytes"] = overhead + IP_UDP
    finally:
        for sock in [*senders, *receivers]:
            sock.close()
    return result


def measure(
    name: str,
    pcm: np.ndarray,
    spans: list[tuple[int, int]],
    listeners: int,
    native: Any,
    seq_base: int,
) -> dict[str, Any]:
    seconds = len(pcm) / RATE
    ticks = len(pcm) // FRAME
    runs: dict[str, Any] = {}
    decoded: dict[str, np.ndarray] = {}
    primer = silence_frame()
    for mode in MODES:
        packets = encode(pcm, "on" if mode == "primed" else mode)
        sent = send_edge(packets, primer if mode == "primed" else None)
        cpu = fanout_cpu(sent, listeners, native, seq_base)
        seq_base += 2 * len(sent)
        payload = sum(len(p) for _, p in sent)
        run: dict[str, Any] = {
            "packets_per_s": round(len(sent) / seconds, 2),
            "payload_bytes_per_s": round(payload / seconds, 1),
            "wire_bytes_per_s": round((payload + len(sent) * cpu["overhead_bytes"]) / seconds, 1),
            "toc_only_encoded": sum(len(p) <= 2 for p in packets),
            "fanout_native_ms_per_s": round(cpu["native_s"] * 1000 / seconds, 2),
            "fanout_python_ms_per_s": round(cpu["python_s"] * 1000 / seconds, 2),
            "native_us_per_listener_packet": round(cpu["native_us_per_packet"], 3),
            "python_us_per_listener_packet": round(cpu["python_us_per_packet"], 3),
        }
        if spans:
            out, counts = receive(sent, ticks)
            assert len(out) == len(pcm), (len(out), len(pcm))  # the timeline is kept
            decoded[mode] = out
            run["concealed_frames"] = counts["concealed"]
        runs[mode] = run
    result: dict[str, Any] = {"seconds": round(seconds, 1), **runs}
    for mode in MODES[1:]:  # each against the baseline (DTX off), same run
        for key in ("packets_per_s", "wire_bytes_per_s", "fanout_native_ms_per_s"):
            result[f"ratio_{mode}_{key}"] = round(runs[mode][key] / runs["off"][key], 3)
    if spans:
        delay = _delay(pcm, decoded["off"], spans[0])
        figures = {mode: onset_figures(pcm, decoded[mode], spans, delay) for mode in MODES}
        energies = {mode: figures[mode].pop("onset_energy") for mode in MODES}
        delays = {mode: figures[mode].pop("onset_delay_ms") for mode in MODES}
        for mode in MODES:
            runs[mode].update(figures[mode])
            runs[mode]["onset_delay_ms_mean"] = round(float(np.nanmean(delays[mode])), 1)
        for mode in MODES[1:]:
            result[f"onset_energy_db_{mode}_vs_off"] = [
                round(float(10 * np.log10((a + 1e-12) / (b + 1e-12))), 2)
                for a, b in zip(energies[mode], energies["off"], strict=True)
            ]
            result[f"onset_delay_ms_{mode}_minus_off"] = [
                round(float(a - b), 1) for a, b in zip(delays[mode], delays["off"], strict=True)
            ]
            for key in ("pesq_wb_utterances", "pesq_wb_onsets_300ms"):
                result[f"ratio_{mode}_{key}"] = round(figures[mode][key] / figures["off"][key], 3)
        result["codec_delay_samples"] = delay
    print(f"{name}: {json.dumps(result)}", flush=True)
    return result


def _delay(source: np.ndarray, decoded: np.ndarray, span: tuple[int, int]) -> int:
    """The decoder chain's delay in samples, from the first utterance (0–50 ms)."""
    start, end = span
    ref = source[start:end]
    best, best_lag = -1.0, 0
    for lag in range(0, RATE // 20):
        c = float(np.dot(ref, decoded[start + lag : end + lag]))
        if c > best:
            best, best_lag = c, lag
    return best_lag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tone-db", type=float, default=-60.0, help="room tone level, dBFS")
    args = parser.parse_args()
    native = load_native()
    if native is None:
        sys.exit("media/_fastpath.c is not built: pip install -e . with gcc and python3-dev")
    rng = random.Random(args.seed)
    noise = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="salon-dtx-") as work:
        speech, spans = conversation(Path(work), rng)
    empty = np.zeros(RATE * 30, dtype=np.float32)
    signals = {
        "conversation": (speech, spans),
        "conversation_tone": (speech + room_tone(len(speech), noise, args.tone_db), spans),
        "empty": (empty, []),
        "empty_tone": (room_tone(len(empty), noise, args.tone_db), []),
    }
    results: dict[str, Any] = {
        "listeners": args.listeners,
        "bitrate": BITRATE,
        "tone_dbfs": args.tone_db,
    }
    seq_base = 0
    for name, (pcm, cuts) in signals.items():
        results[name] = measure(name, pcm, cuts, args.listeners, native, seq_base)
        seq_base += 100_000
    print(json.dumps(results))


if __name__ == "__main__":
    main()
