"""TURN through a real coturn: credentials from GET /api/ice-servers are accepted, expired
or forged ones refused, and a relay-only bot hears a room through the relay."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aioice import stun, turn
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from cli.bot import Bot, BotOptions
from media.client import IceConfigError, rtc_configuration
from node.clock import FakeClock
from node.turn import rest_credentials
from tests.support.audio import tone
from tests.support.cli import creds, salon
from tests.support.network import eventually
from tests.support.nodes import Node, NodeFactory
from tests.support.turn import Coturn, running_coturn


async def ice_servers(node: Node, name: str) -> dict[str, Any]:
    user = await node.user(name)
    status, body = await user.call("GET", "/api/ice-servers")
    assert status == 200, body
    return dict(body)


async def allocate(server: Coturn, username: str, credential: str) -> tuple[str, int]:
    """Ask coturn for a relay (a TURN Allocate over UDP); returns the relayed address."""
    transport, _ = await turn.create_turn_endpoint(
        asyncio.DatagramProtocol, ("127.0.0.1", server.port), username, credential
    )
    try:
        address = transport.get_extra_info("sockname")
    finally:
        transport.close()
    return address[0], int(address[1])


@pytest.mark.timeout(60)
async def test_node_credentials_allocate_and_expired_ones_are_refused(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    async with running_coturn(tmp_path / "coturn") as coturn:
        fresh_node = await node_factory("fresh", turn_servers=(coturn.server,))
        # a node whose clock is two hours behind mints credentials that expired an hour ago
        behind = FakeClock(time.time() - 7200)
        stale_node = await node_factory(
            "stale", clock=behind, turn_servers=(coturn.server,), turn_ttl_seconds=3600
        )
        fresh = (await ice_servers(fresh_node, "alice"))["iceServers"][0]
        stale = (await ice_servers(stale_node, "alice"))["iceServers"][0]
        assert fresh["urls"] == [coturn.url] and stale["urls"] == [coturn.url]
        assert (
            int(stale["username"].split(":")[0])
            < time.time()
            < int(fresh["username"].split(":")[0])
        )

        host, port = await allocate(coturn, fresh["username"], fresh["credential"])
        assert host == "127.0.0.1" and port != coturn.port

        with pytest.raises(stun.TransactionFailed) as refused:
            await allocate(coturn, stale["username"], stale["credential"])
        assert refused.value.response.attributes["ERROR-CODE"][0] == 401

        # a future expiry signed with another secret is refused too
        forged = rest_credentials("not-the-secret", "alice", int(time.time()) + 3600)
        with pytest.raises(stun.TransactionFailed) as refused:
            await allocate(coturn, *forged)
        assert refused.value.response.attributes["ERROR-CODE"][0] == 401
    log = coturn.log()
    assert f"user <{fresh['username']}>: incoming packet ALLOCATE processed, success" in log
    assert f"user <{stale['username']}>: incoming packet message processed, error 401" in log


@pytest.mark.timeout(90)
async def test_relay_only_bot_hears_the_room_through_coturn(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    async with running_coturn(tmp_path / "coturn") as coturn:
        node = await node_factory(ice_addresses=("127.0.0.1",), turn_servers=(coturn.server,))
        await node.user("alice")
        await node.user("bob")

        def options(user: str, **kw: Any) -> BotOptions:
            return BotOptions(node.url, user, "password123", ice_addresses=("127.0.0.1",), **kw)

        async with contextlib.AsyncExitStack() as stack:
            host = await stack.enter_async_context(
                Bot(options("alice", play=tone(tmp_path / "440.wav", 440)))
            )
            await host.sign_in()
            room_url = await host.open_room("Relayed")
            await host.connect(speak=True)
            events = [asyncio.create_task(host.run_events())]

            listener = await stack.enter_async_context(Bot(options("bob", relay_only=True)))
            await listener.sign_in()
            listener.room_from_url(room_url)
            await listener.connect(speak=False)
            events.append(asyncio.create_task(listener.run_events()))
            try:
                peer = listener.peer
                assert peer is not None
                await peer.wait_connected(timeout=30)
                await eventually(lambda: _heard(peer.frames_heard), timeout=30)
                gatherer = peer.pc.getTransceivers()[0].receiver.transport.transport.iceGatherer
                kinds = {c.type for c in gatherer.getLocalCandidates()}
                assert kinds == {"relay"}, kinds
            finally:
                for task in events:
                    task.cancel()
                await asyncio.gather(*events, return_exceptions=True)
    # bob's relay was allocated with the credentials his node minted for him
    assert re.search(
        r"user <[0-9]+:bob>: incoming packet ALLOCATE processed, success", coturn.log()
    )


async def _heard(frames: int) -> bool:
    return frames >= 25  # half a second of the host's tone


def test_rtc_configuration_from_node_json() -> None:
    data = {
        "iceServers": [
            {
                "urls": ["turn:[2001:db8::1]:3478", "turn:t.example:3478"],
                "username": "u",
                "credential": "c",
            },
            {"urls": "stun:s.example:3478"},
        ],
        "iceTransportPolicy": "all",
    }
    config = rtc_configuration(data)
    assert config.iceTransportPolicy is RTCIceTransportPolicy.ALL
    assert [(s.urls, s.username, s.credential) for s in config.iceServers or []] == [
        (["turn:t.example:3478"], "u", "c"),  # aiortc cannot parse the IPv6 literal: skipped
        (["stun:s.example:3478"], None, None),
    ]
    assert (
        rtc_configuration(data, relay_only=True).iceTransportPolicy is RTCIceTransportPolicy.RELAY
    )
    relay = rtc_configuration({**data, "iceTransportPolicy": "relay"})
    assert relay.iceTransportPolicy is RTCIceTransportPolicy.RELAY
    with pytest.raises(IceConfigError, match="iceTransportPolicy"):
        rtc_configuration({"iceServers": [], "iceTransportPolicy": "none"})
    with pytest.raises(IceConfigError, match="needs 'urls'"):
        rtc_configuration({"iceServers": [{"username": "u"}]})


@pytest.mark.timeout(60)
async def test_relay_only_bot_refuses_a_node_without_turn(node_factory: NodeFactory) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",))
    alice = await node.user("alice")
    await node.user("bob")
    status, room = await alice.call("POST", "/api/rooms", {"title": "Direct only"})
    assert status == 201, room
    bot = await salon("bot", "listen", room["url"], *creds(node, "bob"), "--relay-only")
    _, err = await asyncio.wait_for(bot.communicate(), 50)
    assert bot.returncode == 1
    assert (
        err.decode()
        .strip()
        .endswith("error: --relay-only: the node offers no TURN server (turn_servers)")
    )
