"""Test sound: tones written as WAV files, and what a recording holds."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 48000


def tone(path: Path, freq: float, seconds: float = 2.0, amplitude: float = 0.3) -> Path:
    t = np.arange(int(RATE * seconds)) / RATE
    pcm = (amplitude * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def read_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def dominant_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / RATE)[int(np.argmax(spectrum))])


def loud_seconds(pcm: np.ndarray) -> float:
    frames = pcm[: len(pcm) // 960 * 960].reshape(-1, 960)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return float(np.sum(rms > 300) * 0.02)


def decode_ogg(path: Path) -> np.ndarray:
    """Decode an Ogg Opus file with PyAV (FFmpeg's demuxer and decoder): 48 kHz mono int16 scale."""
    import av

    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            data = frame.to_ndarray()
            chunks.append(data.reshape(-1) if data.shape[0] == 1 else data[0])
    if not chunks:
        return np.zeros(0)
    pcm = np.concatenate(chunks).astype(np.float64)
    return pcm * 32767 if np.max(np.abs(pcm), initial=0) <= 1.0 else pcm


def dominant_by_window(pcm: np.ndarray, window: float = 0.1) -> list[float]:
    step = int(RATE * window)
    return [dominant_hz(pcm[i : i + step]) for i in range(0, len(pcm) - step + 1, step)]


def two_tones(path: Path, first: float = 440, second: float = 880, seconds: float = 10.0) -> Path:
    """FIRST Hz for SECONDS then SECOND Hz for SECONDS, one WAV (issue #14's recording test)."""
    t = np.arange(int(RATE * seconds)) / RATE
    pcm = np.concatenate([np.sin(2 * np.pi * first * t), np.sin(2 * np.pi * second * t)])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((0.3 * pcm * 32767).astype("<i2").tobytes())
    return path


def tone_change(pcm: np.ndarray, low: float, high: float, window: float = 0.05) -> float | None:
    """Seconds into PCM where the dominant tone first goes from LOW to HIGH Hz."""
    seen_low = False
    for index, freq in enumerate(dominant_by_window(pcm, window)):
        if abs(freq - low) < 30:
            seen_low = True
        elif seen_low and abs(freq - high) < 30:
            return index * window
    return None


def voiced(seconds: float, rate: int = 48_000) -> np.ndarray:
    """A speech-like float signal (gliding 140 Hz pitch, 24 harmonics, a 3 Hz syllable
    rhythm, peak 0.2) that libopus codes in SILK/hybrid mode, as it does voice."""
    t = np.arange(int(rate * seconds)) / rate
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum((1 / k) * np.sin(k * phase) for k in range(1, 25))
    x *= 0.5 * (1 + np.sin(2 * np.pi * 3 * t))
    return (0.2 * x / np.abs(x).max()).astype(np.float32)
