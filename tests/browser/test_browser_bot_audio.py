"""Issue 3's browser test: Chromium and a `salon bot host` hear each other through a node."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.browser.browser_harness import Launch, Person, heard_in_room
from tests.support.audio import dominant_hz, loud_seconds, read_pcm, tone
from tests.support.cli import creds, salon
from tests.support.network import eventually
from tests.support.nodes import NodeFactory


@pytest.mark.timeout(90)
async def test_chromium_hears_bot_and_bot_hears_chromium(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    await node.user("alice")
    recording = tmp_path / "host-heard.wav"
    host = await salon(
        "bot",
        "host",
        *creds(node, "alice"),
        "--title",
        "Tone check",
        "--play",
        str(tone(tmp_path / "440.wav", 440)),
        "--auto-invite",
        "--record",
        str(recording),
        "--seconds",
        "60",
    )
    try:
        assert host.stdout is not None
        room_url = (await asyncio.wait_for(host.stdout.readline(), 20)).decode().strip()
        assert room_url.startswith(node.url + "/rooms/")

        bob = await Person.open(await launch(tone(tmp_path / "660.wav", 660)), node.url, "bob")
        await bob.signup()
        await bob.page.goto(room_url)
        await bob.page.get_by_role("heading", name="Tone check").wait_for()
        await bob.button("Join")

        # the browser hears the bot's tone (inbound audio energy rises)
        await bob.wait_hearing(timeout=20)

        # raise hand → the bot invites → Join as speaker → the bot hears the browser
        await bob.go_on_stage()
        # the node mixes bob once his uplink is up (his level shows in the room view), then
        # the bot records him speaking
        room_id = room_url.rsplit("/", 1)[1]
        watcher = await node.user()
        assert (await watcher.signin("alice"))[0] == 200

        await eventually(lambda: heard_in_room(watcher, room_id, "bob"), timeout=30)
        await asyncio.sleep(4)
    finally:
        if host.returncode is None:
            host.send_signal(signal.SIGINT)
        await asyncio.wait_for(host.communicate(), 30)
    assert host.returncode == 0
    await bob.page.get_by_text("Room ended").wait_for()
    pcm = read_pcm(recording)
    assert abs(dominant_hz(pcm) - 660) <= 5, dominant_hz(pcm)
    assert loud_seconds(pcm) >= 2.0, loud_seconds(pcm)
    assert not bob.errors, bob.errors
