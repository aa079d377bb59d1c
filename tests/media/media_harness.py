"""Shared helpers for media tests: tones, FFT, and a node + bots harness on loopback."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from media.client import BotPeer
from media.engine import MediaConfig, MediaEngine, RoomMedia, SendToParticipant
from media.relay import RelayRoom
from tests.support.audio import tone as write_tone  # noqa: F401  (the harness offers it)

LOOPBACK = ("127.0.0.1",)
RATE = 48_000


def band_energy(pcm: np.ndarray, freq: float, width: float = 15.0) -> float:
    """Fraction of the spectrum's energy within ±width Hz of freq."""
    if len(pcm) < 2048:
        return 0.0
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm)))) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1 / RATE)
    total = spectrum[freqs > 50].sum()
    if total <= 0:
        return 0.0
    return float(spectrum[(freqs > freq - width) & (freqs < freq + width)].sum() / total)


def dominant_frequency(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    freqs = np.fft.rfftfreq(len(pcm), 1 / RATE)
    spectrum[freqs < 50] = 0
    return float(freqs[int(np.argmax(spectrum))])


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


def loopback_config() -> MediaConfig:
    """Loopback ICE; SALON_NATIVE_FANOUT=0 runs the media tests on the Python fan-out."""
    native = os.environ.get("SALON_NATIVE_FANOUT", "1").lower() not in ("0", "false")
    return MediaConfig(ice_addresses=LOOPBACK, native_fanout=native)


class Harness:
    """A MediaEngine with one room, and bots whose signalling is an in-process queue."""

    def __init__(
        self,
        make_room: Callable[[SendToParticipant, MediaEngine], RelayRoom] | None = None,
        engine: MediaEngine | None = None,
        room_id: str = "r1",
    ) -> None:
        """``make_room`` builds another kind of room (a relay) around our ``send`` and
        engine (whose media port its trunk shares; pass one already started)."""
        self.engine = engine or MediaEngine(loopback_config())
        self.bots: dict[str, BotPeer] = {}
        self.levels: list[dict[str, float]] = []
        self.sent: list[tuple[str, dict]] = []
        self._pending: set[asyncio.Task[None]] = set()
        self.room: RoomMedia | RelayRoom = (
            make_room(self._send, self.engine)
            if make_room is not None
            else self.engine.room(room_id, self._send, self.levels.append)
        )

    def _send(self, participant: str, message: dict) -> None:
        self.sent.append((participant, message))
        bot = self.bots.get(participant)
        if bot is not None:
            task = asyncio.ensure_future(bot.handle(message))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def join(
        self, name: str, *, play: Path | None = None, can_speak: bool = False, **kw: object
    ) -> BotPeer:
        await self.engine.start()  # binds the media port once (idempotent)
        self.room.set_can_speak(name, can_speak)

        async def to_node(message: dict) -> None:
            await self.room.signal(name, message)

        bot = BotPeer(to_node, play=play, ice_addresses=LOOPBACK, **kw)  # type: ignore[arg-type]
        self.bots[name] = bot
        await bot.start()
        await asyncio.wait_for(bot.answered.wait(), 10)
        await bot.wait_connected()
        return bot

    async def leave(self, name: str) -> None:
        bot = self.bots.pop(name)
        await self.room.remove(name)
        await bot.close()

    async def close(self) -> None:
        for name in list(self.bots):
            await self.leave(name)
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self.room.close()
        await self.engine.close()
        await self.engine.close_port()
