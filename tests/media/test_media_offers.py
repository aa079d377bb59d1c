"""Offers whose candidates the node cannot use still get an answer with the node's own.

Issue 19: Firefox (default privacy settings) offers only mDNS ``.local`` host candidates
followed by ``a=end-of-candidates``. Handed that as is, aioice 0.13 spent a second failing
to resolve the names, dropped the component and answered with no candidate at all.
``data/firefox-esr-offer.sdp`` is such an offer, captured from Debian's firefox-esr.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from media.client import BotPeer
from media.engine import MediaConfig, MediaEngine
from media.lite import LiteConnection
from media.session import MAX_REMOTE_CANDIDATES, prune_remote_candidates
from media.signaling import SignalError
from tests.media.media_harness import LOOPBACK, Harness, dominant_frequency, write_tone

_CAPTURED = (Path(__file__).parent / "data" / "firefox-esr-offer.sdp").read_text()
FIREFOX_OFFER = "\r\n".join(_CAPTURED.strip().splitlines()) + "\r\n"
CANDIDATE = re.compile(r"^a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host", re.M | re.I)


def with_candidates(sdp: str, lines: list[str], end: bool = True) -> str:
    """SDP with its candidate lines (and end-of-candidates) replaced by LINES."""
    body = [
        line
        for line in sdp.splitlines()
        if not line.startswith("a=candidate:") and line != "a=end-of-candidates"
    ]
    at = next(i for i, line in enumerate(body) if line.startswith("c=")) + 1
    extra = lines + (["a=end-of-candidates"] if end else [])
    return "\r\n".join(body[:at] + extra + body[at:]) + "\r\n"


async def answer_to(sdp: str) -> tuple[dict[str, Any], float]:
    """Offer SDP to a fresh room; return the node's answer message and how long it took."""
    engine = MediaEngine(MediaConfig(ice_addresses=LOOPBACK))
    sent: list[dict[str, Any]] = []
    room = engine.room("r1", lambda _who, message: sent.append(message), lambda _levels: None)
    try:
        started = time.perf_counter()
        await room.signal("ff", {"type": "offer", "sdp": sdp})
        elapsed = time.perf_counter() - started
        session = room.session("ff")
        assert session is not None and session.pc.remoteDescription is not None
        # aioice was never handed a name it would have to resolve
        assert ".local " not in session.pc.remoteDescription.sdp
    finally:
        await engine.close()
    assert [m["type"] for m in sent] == ["answer"]
    return sent[0], elapsed


def assert_has_node_candidates(answer: dict[str, Any]) -> None:
    sdp = answer["sdp"]
    found = CANDIDATE.findall(sdp)
    assert "127.0.0.1" in {host for host, _ in found}, sdp
    port = int(re.search(r"^m=audio (\d+) ", sdp, re.M).group(1))  # type: ignore[union-attr]
    assert port != 9 and port in {int(p) for _, p in found}, sdp
    assert "c=IN IP4 127.0.0.1" in sdp, sdp


async def test_firefox_offer_gets_the_nodes_candidates_at_once(
    record_property: Callable[[str, object], None],
) -> None:
    assert "a=end-of-candidates" in FIREFOX_OFFER and ".local " in FIREFOX_OFFER
    answer, elapsed = await answer_to(FIREFOX_OFFER)
    record_property("firefox_offer_answer_seconds", round(elapsed, 4))
    print(f"firefox-shaped offer answered in {elapsed * 1000:.1f} ms")
    assert_has_node_candidates(answer)


def test_prune_keeps_reachable_candidates_and_their_end() -> None:
    usable = [
        "a=candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host",
        "a=candidate:2 1 udp 1686052607 198.51.100.4 40000 typ srflx raddr 192.0.2.7 rport 5",
    ]
    sdp = prune_remote_candidates(with_candidates(FIREFOX_OFFER, usable))
    assert [line for line in sdp.splitlines() if "candidate" in line] == [
        *usable,
        "a=end-of-candidates",
    ]
    assert sdp.endswith("\r\n") and "\r\n\r\n" not in sdp


def test_prune_drops_mdns_and_then_end_of_candidates() -> None:
    sdp = prune_remote_candidates(FIREFOX_OFFER)
    assert "a=candidate:" not in sdp and "end-of-candidates" not in sdp
    # everything else is untouched
    rest = [
        line
        for line in FIREFOX_OFFER.splitlines()
        if "candidate" not in line and not line.startswith("a=rtcp:")
    ]
    assert sdp.splitlines() == rest


BAD_CANDIDATES = {
    "mdns only": [f"a=candidate:0 1 UDP 2122187007 {uuid.uuid4()}.local 54326 typ host"],
    "none": [],
    "garbage": [
        "a=candidate:garbage",
        "a=candidate:1 1 UDP notanumber 10.0.0.1 5000 typ host",
        "a=candidate:1 1 UDP 1 10.0.0.1 port typ host",
        "a=candidate:1 1 UDP 1 not-an-ip 5000 typ host",
        "a=candidate:1 1 UDP 1 10.0.0.1 5000 typ weird",
        "a=candidate:1 1 UDP 1 10.0.0.1 0 typ host",
        "a=candidate:1 1 UDP 1 0.0.0.0 5000 typ host",
        "a=candidate:1 1 UDP 1 224.0.0.251 5353 typ host",
        "a=candidate:1 1 TCP 1 10.0.0.1 9 typ host tcptype active",
        "a=candidate:\u00e9 1 UDP 1 \u00e9\u00e9 5000 typ host",
    ],
    "hundreds": [
        f"a=candidate:{i} 1 UDP {2122252543 - i} 10.{i // 250}.{i % 250}.1 {20000 + i} typ host"
        for i in range(600)
    ],
    "ipv6 link-local": [
        "a=candidate:1 1 UDP 2122252543 fe80::1c2d:3eff:fe4f:5a6b 50000 typ host",
        "a=candidate:2 1 UDP 2122252542 fe80::1c2d:3eff:fe4f:5a6b%eth0 50001 typ host",
        "a=candidate:3 1 UDP 2122252541 169.254.10.20 50002 typ host",
    ],
}


@pytest.mark.parametrize("end", [True, False], ids=["end-of-candidates", "open"])
@pytest.mark.parametrize("kind", list(BAD_CANDIDATES))
async def test_unusable_candidates_still_get_an_answer_with_ours(
    kind: str, end: bool, record_property: Callable[[str, object], None]
) -> None:
    sdp = with_candidates(FIREFOX_OFFER, BAD_CANDIDATES[kind], end=end)
    assert len(sdp) < 64_000
    answer, elapsed = await answer_to(sdp)
    record_property("answer_seconds", round(elapsed, 4))
    assert_has_node_candidates(answer)


def test_hundreds_of_candidates_are_capped() -> None:
    sdp = prune_remote_candidates(with_candidates(FIREFOX_OFFER, BAD_CANDIDATES["hundreds"]))
    assert sdp.count("a=candidate:") == MAX_REMOTE_CANDIDATES
    assert "end-of-candidates" not in sdp  # some were dropped: more may be peer-reflexive


async def test_broken_offers_are_a_clear_signal_error() -> None:
    engine = MediaEngine(MediaConfig(ice_addresses=LOOPBACK))
    room = engine.room("r1", lambda _who, _message: None, lambda _levels: None)
    try:
        no_ice = "\r\n".join(
            line for line in FIREFOX_OFFER.splitlines() if not line.startswith("a=ice-")
        )
        with pytest.raises(SignalError, match=r"^offer: rejected: "):
            await room.signal("ff", {"type": "offer", "sdp": no_ice + "\r\n"})
        assert room.session("ff") is None
    finally:
        await engine.close()


def mdns_only(sdp: str) -> str:
    """An aiortc offer rewritten the way Firefox sends it: mDNS names, end-of-candidates."""
    names: dict[str, str] = {}

    def hide(match: re.Match[str]) -> str:
        name = names.setdefault(match.group(2), f"{uuid.uuid4()}.local")
        return f"{match.group(1)}{name}{match.group(3)}"

    lines = [
        re.sub(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( .*)$", hide, line)
        for line in sdp.splitlines()
        if line != "a=end-of-candidates"
    ]
    assert names, "the client offered no candidate"
    at = max(i for i, line in enumerate(lines) if line.startswith("a=candidate:")) + 1
    return "\r\n".join([*lines[:at], "a=end-of-candidates", *lines[at:]]) + "\r\n"


@pytest.mark.timeout(60)
async def test_mdns_only_client_connects_as_peer_reflexive(tmp_path: Path) -> None:
    """The node answers, the client's checks reach it from an address it never signalled,
    the node's ICE-lite agent binds that address from the authenticated check and the
    audio flows both ways."""
    harness = Harness()
    try:
        await harness.join("host", play=write_tone(tmp_path / "440.wav", 440), can_speak=True)
        harness.room.set_can_speak("ff", True)
        offers: list[str] = []

        async def to_node(message: dict[str, Any]) -> None:
            if message.get("type") == "offer":
                message = {**message, "sdp": mdns_only(message["sdp"])}
                offers.append(message["sdp"])
            await harness.room.signal("ff", message)

        bot = BotPeer(to_node, play=write_tone(tmp_path / "1k.wav", 1000), ice_addresses=LOOPBACK)
        harness.bots["ff"] = bot
        await bot.start()
        await asyncio.wait_for(bot.answered.wait(), 10)
        await asyncio.wait_for(bot.wait_connected(), 20)
        assert ".local " in offers[0] and "a=end-of-candidates" in offers[0]

        session = harness.room.session("ff")
        assert session is not None
        connection = session.pc.getTransceivers()[0].sender.transport.transport._connection
        assert isinstance(connection, LiteConnection)
        assert connection.selected is not None and connection.selected.addr[0] == "127.0.0.1"
        assert not any(c.host == "127.0.0.1" for c in connection.remote_candidates)

        await asyncio.sleep(3)
        heard = bot.heard_since(0.0)
        assert abs(dominant_frequency(heard) - 440) <= 5
        host = harness.bots["host"]
        assert abs(dominant_frequency(host.heard_since(0.0)) - 1000) <= 5
    finally:
        await harness.close()
