"""What a lost DTLS flight costs a speaker: the node's 100 ms timer against OpenSSL's 1 s.

A real node room (media/engine.py, on loopback) and a real bot speaker (media/client.py)
connect; the bot is the DTLS server (the node answers ``setup:active``), and its last
flight — ChangeCipherSpec + Finished — is dropped once, as a lossy network would. The bot
is then connected and speaking, the node is not: every packet it sends until the node's
handshake completes is lost. The figure is that time, the node's DTLS ``connected`` minus
the bot's, per trial: with the node's timer (media/dtls_timer.py) and with OpenSSL's own
(the hook switched off), in the same run, trials interleaved.

    .venv/bin/python bench/dtls_loss.py [--trials 5]

Last line: one JSON object (``short_ms``, ``openssl_ms``: medians; ``ratio``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "media"))

from aiortc.rtcdtlstransport import RTCDtlsTransport, State  # noqa: E402
from media_harness import Harness, write_tone  # noqa: E402
from OpenSSL import SSL  # noqa: E402

from media import dtls, dtls_timer  # noqa: E402


class Recorder:
    """Drops the bot's last flight once per trial and notes when each side connected."""

    def __init__(self) -> None:
        self.connected: dict[str, float] = {}
        self.dropped = False
        self._write = RTCDtlsTransport._write_ssl
        self._set_state = RTCDtlsTransport._set_state

    def install(self) -> None:
        recorder = self

        async def write_ssl(transport: RTCDtlsTransport) -> None:
            ssl = transport._ssl
            bot = not isinstance(transport, dtls.NodeDtlsTransport)
            if bot and transport._role == "server" and not recorder.dropped and ssl is not None:
                try:
                    data = ssl.bio_read(1500)
                except SSL.Error:
                    data = b""
                if data[:1] == b"\x14":  # ChangeCipherSpec first: the last flight
                    recorder.dropped = True
                elif data:
                    await transport.transport._send(data)
                return
            await recorder._write(transport)

        def set_state(transport: RTCDtlsTransport, state: State) -> None:
            if state == State.CONNECTED:
                side = "node" if isinstance(transport, dtls.NodeDtlsTransport) else "bot"
                recorder.connected.setdefault(side, time.monotonic())
            recorder._set_state(transport, state)

        RTCDtlsTransport._write_ssl = write_ssl  # type: ignore[method-assign]
        RTCDtlsTransport._set_state = set_state  # type: ignore[method-assign]


async def trial(recorder: Recorder, tone: Path) -> float:
    recorder.connected, recorder.dropped = {}, False
    h = Harness()
    try:
        await h.join("alice", play=tone, can_speak=True)
        for _ in range(200):
            if "node" in recorder.connected:
                break
            await asyncio.sleep(0.01)
        if not recorder.dropped or set(recorder.connected) != {"node", "bot"}:
            raise RuntimeError(f"trial did not run as meant: {recorder.connected}")
        return (recorder.connected["node"] - recorder.connected["bot"]) * 1000
    finally:
        await h.close()


async def main_async(trials: int) -> dict[str, Any]:
    recorder = Recorder()
    recorder.install()
    shorten = dtls_timer.shorten
    results: dict[str, list[float]] = {"short": [], "openssl": []}
    with tempfile.TemporaryDirectory() as work:
        tone = write_tone(Path(work) / "a.wav", 440)
        for _ in range(trials):
            for mode in ("short", "openssl"):
                dtls_timer.shorten = shorten if mode == "short" else (lambda _c: False)  # type: ignore[assignment]
                results[mode].append(await trial(recorder, tone))
    dtls_timer.shorten = shorten  # type: ignore[assignment]
    short, openssl = statistics.median(results["short"]), statistics.median(results["openssl"])
    return {
        "trials": trials,
        "short_ms": round(short, 1),
        "openssl_ms": round(openssl, 1),
        "ratio": round(short / openssl, 3),
        "short_all": [round(x, 1) for x in results["short"]],
        "openssl_all": [round(x, 1) for x in results["openssl"]],
        "speaker_frames_lost": {"short": round(short / 20), "openssl": round(openssl / 20)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.trials))
    print(
        f"a lost last flight: node connected {result['short_ms']} ms after the speaker "
        f"(OpenSSL's timer: {result['openssl_ms']} ms; ×{result['ratio']})"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
