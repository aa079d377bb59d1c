"""DTX heard by a real Chromium: the bench/dtx.py conversation sent to a headless Chromium.

No node: an aiortc peer sends the room encoder's packets of bench/dtx.py (the same
conversation, the same modes ``off``, ``on`` and ``primed``) to Chromium on loopback, each
packet at its tick's wall-clock time (a primer one tick late, with the coded frame after
it), sequence numbers only for packets sent, RTP timestamps from the tick. The page plays
the track and records what its WebAudio graph receives (48 kHz); afterwards the recording
is aligned on each utterance and scored as bench/dtx.py scores the bot's: PESQ-wb of whole
utterances and of the first 300 ms of every talkspurt, onset energy against ``off``, plus
Chromium's own ``getStats`` (concealed and silently concealed samples, concealment events,
samples inserted or removed by its jitter buffer's time stretching). Real time on a shared
machine: single runs move a lot (docs/performance.md has seven and their median).

    .venv/bin/python bench/dtx_browser.py

Needs Debian's Chromium, playwright, espeak-ng and sox. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import fractions
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from pesq import pesq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dtx import (  # noqa: E402
    FRAME,
    ONSET,
    RATE,
    SCORE_RATE,
    conversation,
    encode,
    send_edge,
    silence_frame,
    to16,
)

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--no-sandbox",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
]

PAGE_JS = """
async () => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('audio', {direction: 'recvonly'});
  window.chunks = [];
  window.pc = pc;
  pc.ontrack = (event) => {
    const stream = new MediaStream([event.track]);
    const audio = new Audio();
    audio.srcObject = stream;  // Chromium feeds WebAudio a remote track only while it plays
    audio.muted = true;
    audio.play();
    const ctx = new AudioContext({sampleRate: 48000});
    const source = ctx.createMediaStreamSource(stream);
    const tap = ctx.createScriptProcessor(4096, 1, 1);
    tap.onaudioprocess = (e) => {
      window.chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    };
    const mute = ctx.createGain();
    mute.gain.value = 0;
    source.connect(tap);
    tap.connect(mute);
    mute.connect(ctx.destination);
    window.ctx = ctx;
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') resolve();
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') resolve(); };
  });
  return pc.localDescription.sdp;
}
"""

STATS_JS = """
async () => {
  const report = await window.pc.getStats();
  for (const s of report.values()) if (s.type === 'inbound-rtp' && s.kind === 'audio') return s;
  return null;
}
"""

TAKE_JS = """
() => {
  let n = 0;
  for (const c of window.chunks) n += c.length;
  const all = new Float32Array(n);
  let at = 0;
  for (const c of window.chunks) { all.set(c, at); at += c.length; }
  window.chunks = [];
  const bytes = new Uint8Array(all.buffer);
  let text = '';
  for (let i = 0; i < bytes.length; i += 32768) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 32768));
  }
  return btoa(text);
}
"""


class Scheduled(MediaStreamTrack):
    """Yields (release tick, RTP tick, payload) packets at the release tick's wall clock."""

    kind = "audio"

    def __init__(self, packets: list[tuple[int, int, bytes]], lead_in: float) -> None:
        super().__init__()
        self._packets = packets
        self._next = 0
        self._start = time.monotonic() + lead_in

    async def recv(self) -> av.Packet:
        if self._next >= len(self._packets) or self.readyState != "live":
            self.stop()
            raise MediaStreamError
        release, tick, payload = self._packets[self._next]
        self._next += 1
        wait = self._start + release * FRAME / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(payload)
        packet.pts = tick * FRAME
        packet.time_base = fractions.Fraction(1, RATE)
        return packet


def schedule(sent: list[tuple[int, bytes]], primer: bytes | None) -> list[tuple[int, int, bytes]]:
    out = []
    for tick, payload in sent:
        late = primer is not None and payload is primer  # sent with the frame after it
        out.append((tick + 1 if late else tick, tick, payload))
    return out


async def play(browser: Any, packets: list[tuple[int, int, bytes]], seconds: float) -> Any:
    page = await browser.new_page()
    offer = await page.evaluate(PAGE_JS)
    pc = RTCPeerConnection()
    lead_in = 3.0  # connect first; the conversation starts with silence anyway
    pc.addTrack(Scheduled(packets, lead_in))
    await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    await page.evaluate(
        "async (sdp) => window.pc.setRemoteDescription({type: 'answer', sdp})",
        pc.localDescription.sdp,
    )
    await asyncio.sleep(lead_in + seconds + 1.5)
    stats = await page.evaluate(STATS_JS)
    raw = base64.b64decode(await page.evaluate(TAKE_JS))
    await pc.close()
    await page.close()
    return np.frombuffer(raw, dtype=np.float32).copy(), stats


def align(recording: np.ndarray, ref: np.ndarray, around: int, slack: int) -> int:
    """Where REF starts in RECORDING, searched within ±SLACK of AROUND (cross-correlation
    at 16 kHz)."""
    r16, x16 = to16(recording), to16(ref)
    lo = max(0, (around - slack) // 3)
    hi = min(len(r16) - len(x16), (around + slack) // 3)
    best, at = -np.inf, lo
    for start in range(lo, max(lo + 1, hi)):
        c = float(np.dot(r16[start : start + len(x16)], x16))
        if c > best:
            best, at = c, start
    return at * 3


def score(recording: np.ndarray, pcm: np.ndarray, spans: list[tuple[int, int]]) -> dict[str, Any]:
    first_start, first_end = spans[0]
    offset = align(recording, pcm[first_start:first_end], first_start + RATE * 3, RATE * 2)
    offset -= first_start
    utterances, refs, outs, energies = [], [], [], []
    gap = np.zeros(RATE // 10, dtype=np.float32)
    pad = RATE // 10
    for start, end in spans:
        at = align(recording, pcm[start:end], start + offset, RATE // 5) - start
        offset = at  # follow Chromium's playout as it stretches
        ref = pcm[start - pad : end + pad]
        out = recording[start - pad + at : end + pad + at]
        if len(out) < len(ref):
            break
        utterances.append(pesq(SCORE_RATE, to16(ref), to16(out), "wb"))
        head = recording[start + at : start + at + ONSET]
        refs += [pcm[start : start + ONSET], gap]
        outs += [head, gap]
        energies.append(float(np.sum(head**2)))
    onsets = pesq(SCORE_RATE, to16(np.concatenate(refs)), to16(np.concatenate(outs)), "wb")
    return {
        "pesq_wb_utterances": round(float(np.mean(utterances)), 3),
        "pesq_wb_onsets_300ms": round(float(onsets), 3),
        "utterances_scored": len(utterances),
        "onset_energy": energies,
    }


async def run(seed: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="salon-dtx-browser-") as work:
        pcm, spans = conversation(Path(work), random.Random(seed))
    seconds = len(pcm) / RATE
    primer = silence_frame()
    streams = {
        "off": schedule(send_edge(encode(pcm, "off")), None),
        "on": schedule(send_edge(encode(pcm, "on")), None),
        "primed": schedule(send_edge(encode(pcm, "on"), primer), primer),
    }
    results: dict[str, Any] = {"seconds": round(seconds, 1)}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=ARGS, headless=True, ignore_default_args=["--mute-audio"]
        )
        try:
            for mode, packets in streams.items():
                recording, stats = await play(browser, packets, seconds)
                figures = score(recording, pcm, spans)
                keys = (
                    "packetsReceived",
                    "packetsLost",
                    "totalSamplesReceived",
                    "concealedSamples",
                    "silentConcealedSamples",
                    "concealmentEvents",
                    "insertedSamplesForDeceleration",
                    "removedSamplesForAcceleration",
                )
                figures["stats"] = {k: (stats or {}).get(k) for k in keys}
                s = figures["stats"]
                if s["totalSamplesReceived"]:
                    figures["concealed_not_silent_share"] = round(
                        (s["concealedSamples"] - s["silentConcealedSamples"])
                        / s["totalSamplesReceived"],
                        4,
                    )
                results[mode] = figures
                print(mode, json.dumps({k: v for k, v in figures.items() if k != "onset_energy"}))
        finally:
            await browser.close()
    for mode in ("on", "primed"):
        a, b = results[mode].pop("onset_energy"), results["off"]["onset_energy"]
        results[f"onset_energy_db_{mode}_vs_off"] = [
            round(float(10 * np.log10((x + 1e-12) / (y + 1e-12))), 2)
            for x, y in zip(a, b, strict=False)
        ]
        for key in ("pesq_wb_utterances", "pesq_wb_onsets_300ms"):
            results[f"ratio_{mode}_{key}"] = round(results[mode][key] / results["off"][key], 3)
    results["off"].pop("onset_energy")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.seed))))


if __name__ == "__main__":
    main()
