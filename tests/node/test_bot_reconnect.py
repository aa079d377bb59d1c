"""`salon bot` comes back after a passing close (issue 18): a host bot closed with 4008 by
the node's slow-client policy is back in its room, still host, and its audio flows again."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cli.bot import RECONNECT_DELAYS, should_reconnect
from media.session import ParticipantSession
from node.rooms.subscription import Subscription
from tests.support.attacks import parts
from tests.support.audio import dominant_hz, read_pcm, tone
from tests.support.cli import bot_room_url, creds, salon
from tests.support.network import eventually
from tests.support.nodes import Node, NodeFactory


@pytest.mark.parametrize(
    ("code", "again"),
    [
        (4008, True),  # client too slow; reconnect
        (1001, True),  # going away (node restarting)
        (1006, True),  # dropped without a close frame
        (None, True),  # aiohttp's way of saying 1006
        (1011, True),
        (1012, True),
        (1013, True),
        (1000, False),  # left, or the room ended
        (4003, False),  # removed by a moderator
        (4000, False),  # anything else unknown: stop
        (1008, False),
    ],
)
def test_which_closes_are_worth_a_reconnect(code: int | None, again: bool) -> None:
    assert should_reconnect(code) is again


def test_reconnects_are_bounded() -> None:
    assert 3 <= len(RECONNECT_DELAYS) <= 10
    assert sum(RECONNECT_DELAYS) < 60


def subscriptions_of(node: Node, room_id: str, username: str) -> list[Subscription]:
    rooms = parts(node).rooms
    return [
        s
        for s in rooms._subs.get(room_id, set())  # the node's own sockets for the room
        if s.user is not None and s.user.username == username and not s.closed
    ]


def host_session(node: Node, room_id: str, user_id: int) -> ParticipantSession | None:
    media = parts(node).audio.engine.get(room_id)
    return None if media is None else media.session(str(user_id))


@pytest.mark.timeout(90)
async def test_host_bot_reconnects_after_4008_and_keeps_its_room(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    for name in ("alice", "bob"):
        await node.user(name)
    alice = parts(node).accounts.users.by_name("alice")
    assert alice is not None
    host = await salon(
        "bot",
        "host",
        *creds(node, "alice"),
        "--title",
        "Back again",
        "--play",
        str(tone(tmp_path / "440.wav", 440)),
        "--seconds",
        "20",
    )
    room_url = await bot_room_url(host)
    room_id = room_url.rsplit("/", 1)[-1]

    async def speaking() -> ParticipantSession | None:
        session = host_session(node, room_id, alice.id)
        if session is None or session.uplink.jitter.stats.received < 50:
            return None
        return session

    first = await eventually(speaking, timeout=20)
    (socket,) = subscriptions_of(node, room_id, "alice")
    # the node's slow-client policy, for real: the socket's queue overflows
    for _ in range(socket.maxsize + 1):
        socket.offer({"type": "event", "event": "noise", "seq": 0})
    assert socket.overflowed and socket.close_code == 4008

    async def back() -> bool:
        subs = subscriptions_of(node, room_id, "alice")
        session = host_session(node, room_id, alice.id)
        return bool(
            subs
            and subs[0] is not socket
            and session is not None
            and session is not first
            and session.uplink.jitter.stats.received > 50
        )

    await eventually(back, timeout=20)
    room = parts(node).rooms.find(room_id)
    assert room is not None and room.status.value == "live"
    seat = room.participants[alice.id]
    assert seat.role.value == "host"  # never hostless

    # and a listener joining now hears the host's tone through the node
    heard = tmp_path / "heard.wav"
    listener = await salon(
        "bot", "listen", room_url, *creds(node, "bob"), "--record", str(heard), "--seconds", "3"
    )
    out, err = await asyncio.wait_for(listener.communicate(), 30)
    assert listener.returncode == 0, err.decode()
    assert json.loads(out.decode().strip().splitlines()[-1])["packets_received"] >= 100
    assert abs(dominant_hz(read_pcm(heard)) - 440) <= 5

    host.send_signal(2)  # SIGINT: the bot ends its room and prints its outcome
    out, err = await asyncio.wait_for(host.communicate(), 30)
    assert host.returncode == 0, err.decode()
    outcome = json.loads(out.decode().strip().splitlines()[-1])
    assert outcome["reconnects"] == 1
    assert outcome["role"] == "host"
