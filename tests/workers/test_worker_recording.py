"""Recording a room mixed on a media worker (issue 15): the node records a trunk of the
mixer worker's encode-once mix into its own replay directory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.support.audio import RATE, decode_ogg, dominant_hz, tone_change, two_tones
from tests.support.cli import bot_room_url, creds, salon
from tests.support.network import eventually
from tests.support.nodes import NodeFactory
from tests.support.workers import node_on_workers, worker_audio


@pytest.mark.timeout(120)
async def test_a_room_on_a_worker_is_recorded_by_the_node(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = await node_on_workers(node_factory, 2)
    await node.user("alice")
    host = await salon(
        "bot",
        "host",
        *creds(node, "alice"),
        "--title",
        "Recorded on a worker",
        "--record-room",
        "--play",
        str(two_tones(tmp_path / "tones.wav")),
        "--seconds",
        "21",
    )
    room_id = (await bot_room_url(host)).rsplit("/", 1)[1]
    _, err = await asyncio.wait_for(host.communicate(), 60)
    assert host.returncode == 0, err.decode()
    assert worker_audio(node).engine.rooms() == []  # the node itself mixed nothing
    replays = node.settings.replay_path

    async def written() -> bool:
        return (replays / f"{room_id}.json").exists()

    await eventually(written, timeout=20)
    sidecar = json.loads((replays / f"{room_id}.json").read_text())
    pcm = decode_ogg(replays / f"{room_id}.ogg")
    duration = len(pcm) / RATE
    assert abs(duration - sidecar["duration"]) <= 0.2
    assert duration >= 18
    change = tone_change(pcm, 440, 880)
    assert change is not None
    assert abs(dominant_hz(pcm[int((change - 3) * RATE) : int((change - 1) * RATE)]) - 440) < 10
    assert abs(dominant_hz(pcm[int((change + 1) * RATE) : int((change + 3) * RATE)]) - 880) < 10
