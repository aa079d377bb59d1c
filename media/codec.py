"""Opus encode/decode for the room mixer: mono, 48 kHz, 20 ms frames (libopus via ctypes).

aiortc's own Opus encoder is fixed at 96 kbps stereo and runs per sender; the room encodes
once per tick with a libopus encoder configured for voice, with in-band FEC on: libopus adds
the low-bit-rate copy of the previous frame (LBRR) only while ``set_packet_loss`` says
listeners lose packets, so a clean room pays nothing for it. The decoder conceals: a lost
frame is rebuilt from the next packet's FEC when that packet is already here, else
extrapolated by libopus' packet-loss concealment (media/conceal.py decides which).
"""

from __future__ import annotations

import logging

import numpy as np

from media.mixer import FRAME_SAMPLES, SAMPLE_RATE, SILENCE, Pcm
from media.opus import Decoder, Encoder, OpusError

logger = logging.getLogger(__name__)


class OpusEncoder:
    def __init__(self, bitrate: int = 32_000, fec: bool = True) -> None:
        self._encoder = Encoder(SAMPLE_RATE, bitrate, fec=fec)

    @property
    def packet_loss(self) -> int:
        return self._encoder.packet_loss

    @property
    def lookahead(self) -> int:
        """Encoder delay in 48 kHz samples (the pre-skip of a recording of this stream)."""
        return self._encoder.lookahead()

    def set_packet_loss(self, percent: int) -> None:
        """Expected loss in percent: how much of the bitrate libopus gives to in-band FEC."""
        self._encoder.set_packet_loss(percent)

    def encode(self, frame: Pcm) -> bytes:
        """Encode one 20 ms frame; returns one Opus packet (libopus has no lookahead queue)."""
        return self._encoder.encode(np.clip(frame, -1.0, 1.0))


class OpusDecoder:
    """A participant's decoder, made on its first packet.

    Every participant has an uplink, but most never speak: a libopus decoder and its
    output buffer are ≈ 41 KB, more than everything else an idle listener costs the node.
    """

    def __init__(self) -> None:
        self._made: Decoder | None = None

    @property
    def _decoder(self) -> Decoder:
        decoder = self._made
        if decoder is None:
            decoder = self._made = Decoder(SAMPLE_RATE, FRAME_SAMPLES)
        return decoder

    def decode(self, payload: bytes) -> Pcm:
        """Decode one packet to a 960-sample float frame; concealed when it cannot."""
        if not payload:
            return SILENCE
        pcm = self.decode_valid(payload)
        return self.conceal() if pcm is None else pcm

    def decode_valid(self, payload: bytes) -> Pcm | None:
        """Decode one packet; None when libopus rejects it (nothing decoded)."""
        try:
            pcm = self._decoder.decode(payload)
        except OpusError as exc:
            logger.debug("opus decode failed: %s", exc)
            return None
        return _frame(pcm)

    def conceal(self) -> Pcm:
        """libopus packet-loss concealment for one missing 20 ms frame."""
        return _frame(self._decoder.conceal())

    def recover(self, next_payload: bytes) -> Pcm:
        """The missing frame before NEXT_PAYLOAD from its in-band FEC (PLC when it has none)."""
        try:
            return _frame(self._decoder.recover(next_payload))
        except OpusError as exc:
            logger.debug("opus fec decode failed: %s", exc)
            return self.conceal()


def _frame(pcm: Pcm) -> Pcm:
    if pcm.shape[0] == FRAME_SAMPLES:
        return pcm
    return np.resize(pcm, FRAME_SAMPLES).astype(np.float32) if pcm.shape[0] else SILENCE
