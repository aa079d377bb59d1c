"""Replays for tests, until a room records itself: an ended room with a ready replay.

The file is what the recorder writes (Ogg Opus, 48 kHz mono, the room's Opus packets as
encoded by the room's own encoder): 440 Hz for the first half, 880 Hz for the second.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np

from cli.app import NODE
from media import ogg
from media.codec import OpusEncoder
from tests.support.nodes import ApiUser, Node

FRAME = 960


def tone_packets(seconds: float, hz: float, start_sample: int = 0) -> list[tuple[bytes, int]]:
    encoder = OpusEncoder()
    out = []
    for i in range(int(seconds * 50)):
        t = (start_sample + i * FRAME + np.arange(FRAME)) / 48_000
        pcm = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        out.append((encoder.encode(pcm), FRAME))
    return out


def two_tones(seconds_each: float = 10.0) -> bytes:
    """An Ogg Opus file: 440 Hz for SECONDS_EACH, then 880 Hz for SECONDS_EACH."""
    half = int(seconds_each * 48_000)
    return ogg.write_opus(tone_packets(seconds_each, 440) + tone_packets(seconds_each, 880, half))


def sidecar(host: str, duration: float, **extra: Any) -> dict[str, Any]:
    return {
        "duration": duration,
        "speakers": [
            {"user": host, "start": 0.0, "end": duration / 2},
            {"user": host, "start": duration / 2 + 1, "end": duration},
        ],
        "chapters": [{"at": 0.0, "title": "Opening"}, {"at": duration / 2, "title": "Octave up"}],
        "chat": [{"user": host, "text": "hello", "at": 1.0}],
        **extra,
    }


async def ended_room_with_replay(
    node: Node, host: ApiUser, join_mode: str = "open", seconds_each: float = 10.0,
    title: str = "Tones",
) -> str:  # fmt: skip
    """A room HOST hosted and ended, whose replay is ready; returns the room id."""
    status, room = await host.call("POST", "/api/rooms", {"title": title, "join_mode": join_mode})
    assert status == 201, room
    status, body = await host.call("POST", f"/api/rooms/{room['id']}/end")
    assert status == 200, body
    install_replay(node, room["id"], seconds_each)
    return str(room["id"])


def install_replay(node: Node, room_id: str, seconds_each: float = 10.0) -> Path:
    """Write the files and the row the recorder would leave at the room's end."""
    assert node.app is not None
    parts = node.app[NODE]
    room = parts.rooms.get(room_id)
    data = two_tones(seconds_each)
    duration = ogg.read_opus(data).duration
    folder = parts.settings.replay_path
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{room_id}.ogg").write_bytes(data)
    host = parts.accounts.users.get(room.host_id)
    assert host is not None
    handle = f"{host.username}@{node.url.split('://', 1)[1]}"
    (folder / f"{room_id}.json").write_text(json.dumps(sidecar(handle, duration)))
    store = parts.replays.store
    now = parts.replays.clock.now()
    store.begin(room_id, room.host_id, room.title, now)
    store.finish(room_id, status="ready", size=len(data), duration=duration, ended=now)
    parts.replays.finished(room_id)
    return folder / f"{room_id}.ogg"


async def document_with_peaks(user: ApiUser, path: str, timeout: float = 15.0) -> dict[str, Any]:
    """GET PATH (a replay's JSON) until its waveform has been decoded (``peaks`` not null)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status, doc = await user.call("GET", path)
        assert status == 200, doc
        if doc["peaks"] is not None:
            return dict(doc)
        assert loop.time() < deadline, "peaks were never decoded"
        await asyncio.sleep(0.05)
