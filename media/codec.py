"""Opus encode/decode with PyAV for the room mixer: mono, 48 kHz, 20 ms frames.

aiortc's own Opus encoder is fixed at 96 kbps stereo and runs per sender; the room encodes
once per tick with a libopus encoder configured for voice.
"""

from __future__ import annotations

import fractions
import logging

import av
import numpy as np

from media.mixer import FRAME_SAMPLES, SAMPLE_RATE, SILENCE, Pcm

logger = logging.getLogger(__name__)
_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


class OpusEncoder:
    def __init__(self, bitrate: int = 32_000) -> None:
        self._ctx = av.CodecContext.create("libopus", "w")
        self._ctx.sample_rate = SAMPLE_RATE
        self._ctx.layout = "mono"
        self._ctx.format = "s16"
        self._ctx.bit_rate = bitrate
        self._ctx.time_base = _TIME_BASE
        self._ctx.options = {"application": "voip", "frame_duration": "20"}
        self._ctx.open()
        self._pts = 0

    def encode(self, frame: Pcm) -> bytes:
        """Encode one 20 ms frame; returns one Opus packet (libopus has no lookahead queue)."""
        samples = np.clip(frame * 32767.0, -32768, 32767).astype(np.int16).reshape(1, -1)
        audio = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        audio.sample_rate = SAMPLE_RATE
        audio.pts = self._pts
        audio.time_base = _TIME_BASE
        self._pts += FRAME_SAMPLES
        packets = self._ctx.encode(audio)
        return b"".join(bytes(p) for p in packets)


class OpusDecoder:
    def __init__(self) -> None:
        self._ctx = av.CodecContext.create("opus", "r")
        self._ctx.sample_rate = SAMPLE_RATE
        self._ctx.layout = "mono"
        self._ctx.format = "s16"

    def decode(self, payload: bytes) -> Pcm:
        """Decode one packet to a 960-sample float frame; silence when it cannot."""
        if not payload:
            return SILENCE
        try:
            frames = self._ctx.decode(av.Packet(payload))
        except av.FFmpegError as exc:
            logger.debug("opus decode failed: %s", exc)
            return SILENCE
        if not frames:
            return SILENCE
        pcm = np.concatenate([f.to_ndarray().reshape(-1, f.samples)[0] for f in frames])
        if pcm.dtype == np.int16:
            pcm = pcm.astype(np.float32) / 32768.0
        pcm = pcm.astype(np.float32, copy=False)
        if pcm.shape[0] != FRAME_SAMPLES:
            pcm = np.resize(pcm, FRAME_SAMPLES) if pcm.shape[0] else SILENCE
        return pcm
