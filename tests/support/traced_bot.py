"""``salon bot`` that also writes down what it sent and received (bench/loss.py ``--trace``).

    SALON_TRACE=FILE python -m tests.support.traced_bot bot host ...

runs the ``salon`` command with three taps on the bot (media/client.py), and at exit writes
FILE as JSON lines: ``sent`` — each Opus packet the bot's track handed aiortc (monotonic
time, RTP time ``pts``, payload hex); ``received`` — each packet the recording's
``Timeline`` was given (monotonic time, sequence number, RTP timestamp, payload hex);
``written`` — each write to the recording (monotonic time, samples, what it was). Nothing
in the product reads it; it lets bench/trace.py compare a listener's recording, frame by
frame, with what the speaker really encoded.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from typing import Any

import av
import numpy as np

from media import client, conceal

TRACE = os.environ.get("SALON_TRACE", "")
_events: list[dict[str, Any]] = []


def _install() -> None:
    recv = client.LoopTrack.recv

    async def traced_recv(self: client.LoopTrack) -> Any:
        out = await recv(self)
        if isinstance(out, av.Packet):
            _events.append(
                {"k": "sent", "t": time.monotonic(), "pts": out.pts, "p": bytes(out).hex()}
            )
        return out

    client.LoopTrack.recv = traced_recv  # type: ignore[method-assign]

    push = conceal.Timeline.push

    def traced_push(self: conceal.Timeline, sequence: int, timestamp: int, payload: bytes) -> Any:
        _events.append(
            {"k": "received", "t": time.monotonic(), "seq": sequence, "ts": timestamp,
             "p": payload.hex()}
        )  # fmt: skip
        return push(self, sequence, timestamp, payload)

    conceal.Timeline.push = traced_push  # type: ignore[method-assign]

    write = client.BotPeer._record

    def traced_record(self: client.BotPeer, frames: list[np.ndarray]) -> None:
        before = self._recorded
        write(self, frames)
        if self._recorded != before:
            _events.append(
                {"k": "written", "t": time.monotonic(), "at": before,
                 "n": self._recorded - before, "frames": len(frames)}
            )  # fmt: skip

    client.BotPeer._record = traced_record  # type: ignore[method-assign]

    pad = client.BotPeer._pad_to_now

    def traced_pad(self: client.BotPeer) -> None:
        before = self._recorded
        pad(self)
        _events.append({"k": "padded", "t": time.monotonic(), "at": before,
                        "n": self._recorded - before})  # fmt: skip

    client.BotPeer._pad_to_now = traced_pad  # type: ignore[method-assign]


def _dump() -> None:
    with open(TRACE, "w") as out:
        for event in _events:
            out.write(json.dumps(event) + "\n")


if TRACE:
    _install()
    atexit.register(_dump)

from cli.main import main  # noqa: E402

main()
