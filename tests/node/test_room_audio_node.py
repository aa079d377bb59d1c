"""Audio rules enforced by a real node: moderator mute and demotion cut a speaker within
200 ms, bad signalling over the room WebSocket is an error event that harms nobody, and
leave/removal/end close the node's peer connections."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cli.app import NODE
from cli.bot import Bot, BotOptions
from tests.media.media_harness import band_energy
from tests.support.audio import tone
from tests.support.nodes import Node, NodeFactory

pytestmark = pytest.mark.timeout(60)
LOOP = ("127.0.0.1",)


@contextlib.asynccontextmanager
async def bot_in(node: Node, user: str, room_id: str, play: Path | None) -> AsyncIterator[Bot]:
    """A `salon bot` participant in-process, so its audio can be read with timestamps."""
    options = BotOptions(
        node=node.url, user=user, password="password123", play=play, ice_addresses=LOOP
    )
    async with Bot(options) as bot:
        await bot.sign_in()
        bot.room_id = room_id
        await bot.connect(speak=play is not None)
        events = asyncio.create_task(bot.run_events())
        assert bot.peer is not None
        await asyncio.wait_for(bot.peer.answered.wait(), 10)
        try:
            yield bot
        finally:
            events.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await events


def sessions(node: Node, room_id: str) -> list[str]:
    assert node.app is not None
    media = node.app[NODE].audio.engine.get(room_id)
    return media.participants if media else []


async def stage(node: Node, tmp: Path) -> tuple[str, dict[str, int]]:
    for name in ("alice", "bob", "carol"):
        await node.user(name)
    alice = node.users[0]
    _, room = await alice.call("POST", "/api/rooms", {"title": "Rules"})
    ids = {u.username: i for i, u in enumerate(node.users)}
    return room["id"], ids


async def test_moderator_mute_and_demotion_cut_within_200ms(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = await node_factory(ice_addresses=LOOP)
    room_id, _ = await stage(node, tmp_path)
    alice = node.users[0]
    async with (
        bot_in(node, "alice", room_id, tone(tmp_path / "a.wav", 440)),
        bot_in(node, "bob", room_id, tone(tmp_path / "b.wav", 880)) as bob,
        bot_in(node, "carol", room_id, None) as carol,
    ):
        assert carol.peer is not None
        await bob.command("raise_hand")
        await asyncio.sleep(0.3)
        assert (await alice.call("POST", f"/api/rooms/{room_id}/invite_to_speak", {"user": "bob"}))[
            0
        ] == 200
        await bob.command("accept_invite")
        await asyncio.sleep(3.0)
        t = time.monotonic()
        assert band_energy(carol.peer.heard_since(t - 1.0), 880) > 0.2, "bob is heard"
        # a moderator's mute: silent at carol within 200 ms
        assert (await alice.call("POST", f"/api/rooms/{room_id}/mute", {"user": "bob"}))[0] == 200
        muted = time.monotonic()
        await asyncio.sleep(1.2)
        assert band_energy(carol.peer.heard_since(muted + 0.2), 880) < 0.01
        assert band_energy(carol.peer.heard_since(muted + 0.2), 440) > 0.8
        # unlocked and unmuted, then moved to the audience: silent again within 200 ms
        await alice.call("POST", f"/api/rooms/{room_id}/unmute", {"user": "bob"})
        await bob.command("unmute")
        await asyncio.sleep(2.0)
        assert band_energy(carol.peer.heard_since(time.monotonic() - 1.0), 880) > 0.2
        await alice.call("POST", f"/api/rooms/{room_id}/move_to_audience", {"user": "bob"})
        moved = time.monotonic()
        await asyncio.sleep(1.2)
        assert band_energy(carol.peer.heard_since(moved + 0.2), 880) < 0.01
        # removal closes bob's peer connection on the node; ending closes the room's media
        before = set(sessions(node, room_id))
        await alice.call("POST", f"/api/rooms/{room_id}/remove", {"user": "bob"})
        await asyncio.sleep(0.5)
        after = set(sessions(node, room_id))
        assert len(after) == len(before) - 1
        await alice.call("POST", f"/api/rooms/{room_id}/end")
        await asyncio.sleep(0.5)
        assert sessions(node, room_id) == []


async def test_bad_signalling_is_an_error_event_and_harms_nobody(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = await node_factory(ice_addresses=LOOP)
    room_id, _ = await stage(node, tmp_path)
    bob_api = node.users[1]
    async with (
        bot_in(node, "alice", room_id, tone(tmp_path / "a.wav", 440)),
        bot_in(node, "carol", room_id, None) as carol,
    ):
        assert carol.peer is not None
        ws = await bob_api.ws(room_id)
        await ws.receive_json(timeout=5)
        cases = [
            ({"type": "signal", "signal": {"type": "offer", "sdp": "v=0 garbage"}}, "signalling"),
            (
                {
                    "type": "signal",
                    "signal": {
                        "type": "ice",
                        "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
                        "sdpMid": "0",
                        "sdpMLineIndex": 0,
                    },
                },
                "no media session",
            ),
            ({"type": "signal", "signal": {"type": "dance"}}, "unknown signal type"),
            ({"type": "signal"}, "need a 'signal' object"),
        ]
        for message, text in cases:
            await ws.send_json(message)
            while True:
                reply = await ws.receive_json(timeout=5)
                if reply.get("type") == "error":
                    break
            assert text in reply["error"], (message, reply)
        t = time.monotonic()
        before = carol.peer.packets_received
        await asyncio.sleep(1.0)
        assert carol.peer.packets_received - before >= 40, "carol still hears the room"
        assert band_energy(carol.peer.heard_since(t), 440) > 0.8
        await ws.close()


async def test_late_listener_gets_current_levels_in_its_first_state(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    """Levels are sent only when they change: a steady speaker sends none after the first,
    so a listener who joins mid-speech needs them in the state it gets on joining."""
    node = await node_factory(ice_addresses=LOOP)
    room_id, _ = await stage(node, tmp_path)
    async with bot_in(node, "alice", room_id, tone(tmp_path / "a.wav", 440, seconds=20)):
        assert node.app is not None
        deadline = time.monotonic() + 10
        media = node.app[NODE].audio.engine.get(room_id)
        while time.monotonic() < deadline:
            _, view = await node.users[0].call("GET", f"/api/rooms/{room_id}")
            if view["levels"].get("alice", 0) > 0:
                break
            await asyncio.sleep(0.2)
        assert media is not None and media.ticks > 0
        await asyncio.sleep(1.0)  # steady: no new speaking message since

        carol = node.users[2]
        assert (await carol.call("POST", f"/api/rooms/{room_id}/join"))[0] == 200
        ws = await carol.ws(room_id)
        first = await ws.receive_json()
        assert first["type"] == "state"
        assert first["room"]["levels"]["alice"] >= 0.2, first["room"]["levels"]
        assert set(first["room"]["levels"]) == {"alice"}
        await ws.close()
