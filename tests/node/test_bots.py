"""`salon bot host` / `salon bot listen` as real subprocesses through a real node."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.support.audio import dominant_hz, loud_seconds, read_pcm, tone
from tests.support.cli import bot_room_url, creds, salon
from tests.support.nodes import Node, NodeFactory


async def audio_node(node_factory: NodeFactory) -> Node:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    for name in ("alice", "bob"):
        await node.user(name)
    return node


@pytest.mark.timeout(60)
async def test_bot_listener_hears_host_tone_through_node(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = await audio_node(node_factory)
    host = await salon(
        "bot",
        "host",
        *creds(node, "alice"),
        "--title",
        "Tone",
        "--play",
        str(tone(tmp_path / "440.wav", 440)),
        "--seconds",
        "9",
    )
    room_url = await bot_room_url(host)
    assert room_url.startswith(node.url + "/rooms/")
    heard = tmp_path / "heard.wav"
    listener = await salon(
        "bot", "listen", room_url, *creds(node, "bob"), "--record", str(heard), "--seconds", "5"
    )
    out, err = await asyncio.wait_for(listener.communicate(), 30)
    assert listener.returncode == 0, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["role"] == "listener"
    assert summary["packets_received"] >= 200  # 50 packets a second
    pcm = read_pcm(heard)
    assert abs(dominant_hz(pcm) - 440) <= 5
    assert loud_seconds(pcm) >= 0.8 * 5  # heard for at least 80% of the 5 s
    await asyncio.wait_for(host.communicate(), 30)
    assert host.returncode == 0


@pytest.mark.timeout(90)
async def test_raised_hand_invited_and_heard_by_host(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = await audio_node(node_factory)
    host_rec = tmp_path / "host-heard.wav"
    host = await salon(
        "bot",
        "host",
        *creds(node, "alice"),
        "--title",
        "Stage",
        "--play",
        str(tone(tmp_path / "440.wav", 440)),
        "--auto-invite",
        "--record",
        str(host_rec),
        "--seconds",
        "12",
    )
    room_url = await bot_room_url(host)
    listener = await salon(
        "bot",
        "listen",
        room_url,
        *creds(node, "bob"),
        "--raise-hand",
        "--play",
        str(tone(tmp_path / "880.wav", 880)),
        "--seconds",
        "8",
    )
    out, err = await asyncio.wait_for(listener.communicate(), 40)
    assert listener.returncode == 0, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["role"] == "speaker"
    await asyncio.wait_for(host.communicate(), 40)
    pcm = read_pcm(host_rec)
    assert abs(dominant_hz(pcm) - 880) <= 5, "the host hears the promoted listener"
    assert loud_seconds(pcm) >= 2.0


@pytest.mark.timeout(60)
async def test_bot_bad_input_is_one_clear_error(node: Node, tmp_path: Path) -> None:
    await node.user("alice")
    bad_wav = tmp_path / "bad.wav"
    bad_wav.write_bytes(b"not a wav")
    cases = [
        (
            [
                "bot",
                "listen",
                node.url + "/rooms/x",
                "--node",
                "http://127.0.0.1:1",
                "--user",
                "a",
                "--password",
                "p",
            ],
            "cannot reach node",
        ),
        (
            [
                "bot",
                "host",
                "--node",
                node.url,
                "--user",
                "alice",
                "--password",
                "nope-nope",
                "--title",
                "t",
            ],
            "wrong username or password",
        ),
        (
            [
                "bot",
                "listen",
                node.url + "/rooms/doesnotexist",
                "--node",
                node.url,
                "--user",
                "alice",
                "--password",
                "password123",
            ],
            "no such room",
        ),
        (
            [
                "bot",
                "host",
                "--node",
                node.url,
                "--user",
                "alice",
                "--password",
                "password123",
                "--title",
                "t",
                "--play",
                str(bad_wav),
            ],
            "cannot read",
        ),
        (
            [
                "bot",
                "listen",
                "http://elsewhere.example/rooms/abc",
                "--node",
                node.url,
                "--user",
                "alice",
                "--password",
                "password123",
            ],
            "cannot reach the room",
        ),
    ]
    for args, message in cases:
        proc = await salon(*args)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 1, (args, out, err)
        text = err.decode()
        assert message in text, (args, text)
        assert "Traceback" not in text
