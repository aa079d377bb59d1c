"""kill -9 of a recording node (a real ``salon serve``): the file decodes up to the crash,
and after a restart the same file goes on and is finished at room end."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from media.ogg import EOS, parse_pages
from tests.support.audio import RATE, decode_ogg, dominant_hz, tone
from tests.support.cli import bot_room_url, run_cli, salon
from tests.support.network import eventually
from tests.support.nodes import ApiUser, free_port
from tests.support.serve import start_serve


@pytest.mark.timeout(120)
async def test_kill_9_leaves_a_playable_file_and_restart_finishes_it(tmp_path: Path) -> None:
    data, port = tmp_path / "node", free_port()
    settings = {"ice_addresses": "127.0.0.1", "replay_flush_seconds": "0.5"}
    node = await start_serve(data, port, **settings)
    base = f"http://127.0.0.1:{port}"
    try:
        added = run_cli(
            "user", "add", "alice", "--password", "password123", "--data", str(data), cwd=tmp_path
        )
        assert added.returncode == 0, added.stderr
        host = await salon(
            "bot",
            "host",
            "--node",
            base,
            "--user",
            "alice",
            "--password",
            "password123",
            "--ice-address",
            "127.0.0.1",
            "--title",
            "Crash",
            "--record-room",
            "--play",
            str(tone(tmp_path / "440.wav", 440, seconds=30)),
            "--seconds",
            "60",
        )
        room_id = (await bot_room_url(host)).rsplit("/", 1)[1]
        ogg = data / "replays" / f"{room_id}.ogg"
        await asyncio.sleep(6)
        node.send_signal(signal.SIGKILL)
        node.wait(10)
        host.kill()
        await host.wait()
        crashed = ogg.read_bytes()
        pages = list(parse_pages(crashed))
        assert pages and not pages[-1].flags & EOS  # no clean end: the crash cut it
        pcm = decode_ogg(ogg)
        assert len(pcm) / RATE >= 3.0  # everything up to the last flush
        assert abs(dominant_hz(pcm[-RATE:]) - 440) < 10

        node = await start_serve(data, port, **settings)
        alice = ApiUser(base)
        await alice.signin("alice")
        status, view = await alice.call("GET", f"/api/rooms/{room_id}")
        assert status == 200 and view["recording"] is True  # resumed after the restart
        status, _ = await alice.call("POST", f"/api/rooms/{room_id}/end")
        assert status == 200
        sidecar = data / "replays" / f"{room_id}.json"

        async def written() -> bool:
            return sidecar.exists()

        await eventually(written, 10)
        await alice.close()
        finished = ogg.read_bytes()
        assert list(parse_pages(finished))[-1].flags & EOS
        total = len(decode_ogg(ogg)) / RATE
        assert abs(total - json.loads(sidecar.read_text())["duration"]) <= 0.2
        assert total >= len(pcm) / RATE
    finally:
        node.kill()
        node.wait(10)
