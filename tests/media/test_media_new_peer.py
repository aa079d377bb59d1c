"""A participant's offer from a new peer connection (new ICE credentials) starts a new
session on the node — a client back after a 4008 close, a reloaded page — and a bad one
leaves the working session alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from media_harness import LOOPBACK, Harness, write_tone

from media.client import BotPeer
from media.signaling import SignalError

pytestmark = pytest.mark.timeout(30)


async def test_a_new_peer_connection_gets_a_new_session(tmp_path: Path) -> None:
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        old_bob = await h.join("bob")
        first = h.room.session("bob")
        assert first is not None

        async def to_node(message: dict) -> None:
            await h.room.signal("bob", message)

        new_bob = BotPeer(to_node, ice_addresses=LOOPBACK)
        h.bots["bob"] = new_bob  # the node's answers now go to the new connection
        await new_bob.start()
        await asyncio.wait_for(new_bob.answered.wait(), 10)
        await new_bob.wait_connected()
        second = h.room.session("bob")
        assert second is not None and second is not first
        assert first.closed
        async with asyncio.timeout(10):
            while new_bob.packets_received < 20:
                await asyncio.sleep(0.02)
        await old_bob.close()
    finally:
        await h.close()


async def test_a_bad_offer_with_new_credentials_keeps_the_session(tmp_path: Path) -> None:
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        bob = await h.join("bob")
        session = h.room.session("bob")
        bad = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:zzzz\r\n"
        with pytest.raises(SignalError):
            await h.room.signal("bob", {"type": "offer", "sdp": bad})
        assert h.room.session("bob") is session and session is not None and not session.closed
        heard = bob.packets_received
        async with asyncio.timeout(10):
            while bob.packets_received < heard + 20:
                await asyncio.sleep(0.02)
    finally:
        await h.close()


async def test_a_flood_of_new_peer_offers_is_refused(tmp_path: Path) -> None:
    """Hostile client: offers from ever new peer connections would make the node build and
    tear down one per message; past one a second they are refused, the session stays."""
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        bob = await h.join("bob")
        session = h.room.session("bob")
        offers = []
        for _ in range(5):
            other = BotPeer(lambda message: offers.append(message), ice_addresses=LOOPBACK)
            await other.start()
            await other.close()
        refused = 0
        for offer in offers:
            try:
                await h.room.signal("bob", offer)
            except SignalError as exc:
                assert str(exc) == "offer: a new peer connection at most once a second"
                refused += 1
        assert refused == len(offers) - 1  # one went through, within the same second
        replaced = h.room.session("bob")
        assert replaced is not None and replaced is not session
        assert len(h.room.participants) == 2  # one session each, never more
        del bob
    finally:
        await h.close()


async def test_the_replaced_sessions_failure_does_not_close_the_new_one(tmp_path: Path) -> None:
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        await h.join("bob")

        async def to_node(message: dict) -> None:
            await h.room.signal("bob", message)

        new_bob = BotPeer(to_node, ice_addresses=LOOPBACK)
        h.bots["bob"] = new_bob
        await new_bob.start()
        await asyncio.wait_for(new_bob.answered.wait(), 10)
        await new_bob.wait_connected()
        current = h.room.session("bob")
        # the old peer connection's ICE fails later (its client is gone): its callback
        # names the participant, whose current session is healthy
        h.room._participants._connection_failed("bob")  # type: ignore[union-attr]
        await asyncio.sleep(0.1)
        assert h.room.session("bob") is current and current is not None and not current.closed
    finally:
        await h.close()
