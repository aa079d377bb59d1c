"""End-to-end audio through a real RoomMedia: tones in, FFT out."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from media_harness import Harness, band_energy, dominant_frequency, rms, write_tone

pytestmark = pytest.mark.timeout(45)


async def test_listener_hears_speaker_tone(tmp_path: Path) -> None:
    h = Harness()
    try:
        speaker = await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        listener = await h.join("bob", record=tmp_path / "bob.wav")
        start = time.monotonic()
        await asyncio.sleep(2.0)
        heard = listener.heard_since(start)
        assert len(heard) >= 0.8 * 2.0 * 48_000
        tail = heard[-48_000:]
        assert abs(dominant_frequency(tail) - 440) <= 5
        assert listener.packets_received >= 80
        assert listener.seconds_heard >= 1.0
        # alice hears only the others (nobody here): her mix-minus is silence
        assert rms(speaker.heard_since(start)[-24_000:]) < 50
        assert (tmp_path / "bob.wav").exists()
    finally:
        await h.close()


async def test_two_speakers_mix_minus_and_mute(tmp_path: Path) -> None:
    h = Harness()
    try:
        a = await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        b = await h.join("bob", play=write_tone(tmp_path / "b.wav", 660), can_speak=True)
        # carol has a microphone (offers sendrecv) but is a listener: never heard
        c = await h.join("carol", play=write_tone(tmp_path / "c.wav", 1000))
        # both uplinks connect in their own time (slower on a loaded machine): wait until
        # carol's last second holds both tones, then judge the second after that
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            recent = c.heard_since(time.monotonic() - 1.0)
            if band_energy(recent, 440) > 0.2 and band_energy(recent, 660) > 0.2:
                break
        start = time.monotonic()
        await asyncio.sleep(1.0)
        heard_c = c.heard_since(start)
        heard_a = a.heard_since(start)
        heard_b = b.heard_since(start)
        assert band_energy(heard_c, 440) > 0.2 and band_energy(heard_c, 660) > 0.2
        assert band_energy(heard_a, 660) > 0.8 and band_energy(heard_a, 440) < 0.01
        assert band_energy(heard_b, 440) > 0.8 and band_energy(heard_b, 660) < 0.01
        for heard in (heard_a, heard_b, heard_c):
            assert band_energy(heard, 1000) < 0.01
        assert any("alice" in lv and "bob" in lv for lv in h.levels)
        assert all("carol" not in lv for lv in h.levels)

        # mute alice at the node: silent for everyone within 200 ms
        h.room.set_can_speak("alice", False)
        muted_at = time.monotonic()
        await asyncio.sleep(1.2)
        after = c.heard_since(muted_at + 0.2)
        assert len(after) > 0.5 * 48_000
        assert band_energy(after, 440) < 0.01 and band_energy(after, 660) > 0.8
        assert band_energy(b.heard_since(muted_at + 0.2), 440) < 0.01
        assert h.levels[-1] == {"bob": h.levels[-1]["bob"]}
    finally:
        await h.close()


async def test_role_change_listener_becomes_speaker_and_back(tmp_path: Path) -> None:
    h = Harness()
    try:
        await h.join("host", play=write_tone(tmp_path / "h.wav", 440), can_speak=True)
        guest = await h.join("guest", play=write_tone(tmp_path / "g.wav", 880))
        ear = await h.join("ear")
        await asyncio.sleep(0.5)
        assert band_energy(ear.heard_since(time.monotonic() - 0.4), 880) < 0.01
        assert h.room.session("guest").negotiated_direction == "sendonly"  # type: ignore[union-attr]

        answers = guest.answers
        h.room.set_can_speak("guest", True)  # invited on stage: node asks for a fresh offer
        assert ("guest", {"type": "renegotiate", "canSpeak": True}) in h.sent
        async with asyncio.timeout(5):
            while guest.answers == answers:
                await asyncio.sleep(0.02)
        assert h.room.session("guest").negotiated_direction == "sendrecv"  # type: ignore[union-attr]
        promoted = time.monotonic()
        await asyncio.sleep(1.2)
        assert band_energy(ear.heard_since(promoted + 0.4), 880) > 0.2
        assert band_energy(guest.heard_since(promoted + 0.4), 880) < 0.01  # mix-minus

        h.room.set_can_speak("guest", False)  # back to the audience
        demoted = time.monotonic()
        await asyncio.sleep(1.0)
        assert band_energy(ear.heard_since(demoted + 0.2), 880) < 0.01
        assert band_energy(ear.heard_since(demoted + 0.2), 440) > 0.8
        async with asyncio.timeout(5):
            while h.room.session("guest").negotiated_direction != "sendonly":  # type: ignore[union-attr]
                await asyncio.sleep(0.02)
    finally:
        await h.close()
