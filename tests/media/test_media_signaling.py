"""Signalling wire types (pure) and bad input through a real RoomMedia."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from media_harness import Harness, band_energy, write_tone

from media.signaling import (
    Answer,
    Ice,
    Offer,
    Renegotiate,
    SignalError,
    parse_client_message,
    parse_node_message,
)

SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
CANDIDATE = "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"


@pytest.mark.parametrize(
    "message",
    [
        Offer(sdp=SDP),
        Ice(candidate=CANDIDATE, sdp_mid="0", sdp_mline_index=0),
        Ice(candidate="", sdp_mid="0", sdp_mline_index=None),
    ],
)
def test_client_messages_round_trip(message: Offer | Ice) -> None:
    data = message.serialize()
    assert parse_client_message(data) == message
    assert parse_client_message(data).serialize() == data


@pytest.mark.parametrize("message", [Answer(sdp=SDP), Renegotiate(can_speak=True), Renegotiate()])
def test_node_messages_round_trip(message: Answer | Renegotiate) -> None:
    assert parse_node_message(message.serialize()) == message


def test_fixed_vectors() -> None:
    assert Ice(CANDIDATE, "0", 0).serialize() == {
        "type": "ice",
        "candidate": CANDIDATE,
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    assert Renegotiate().serialize() == {"type": "renegotiate"}
    assert Renegotiate(False).serialize() == {"type": "renegotiate", "canSpeak": False}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ([], "signal message must be a JSON object"),
        ({}, "signal message: 'type' must be a string"),
        ({"type": "hello"}, "unknown signal type 'hello' (expected 'offer' or 'ice')"),
        (
            {"type": "answer", "sdp": SDP},
            "unknown signal type 'answer' (expected 'offer' or 'ice')",
        ),
        ({"type": "offer"}, "offer: 'sdp' must be a string"),
        ({"type": "offer", "sdp": "hello"}, "offer: malformed SDP (must start with 'v=0')"),
        ({"type": "offer", "sdp": "v=0\r\n"}, "offer: malformed SDP (no audio m-line)"),
        (
            {"type": "offer", "sdp": "v=0" + "x" * 70_000},
            "offer: 'sdp' is longer than 64000 characters",
        ),
        ({"type": "ice", "candidate": 3, "sdpMid": "0"}, "ice: 'candidate' must be a string"),
        (
            {"type": "ice", "candidate": "x", "sdpMid": "0"},
            "ice: 'candidate' must start with 'candidate:'",
        ),
        (
            {"type": "ice", "candidate": "candidate:1 1 udp", "sdpMid": "0"},
            "ice: malformed candidate",
        ),
        (
            {"type": "ice", "candidate": CANDIDATE},
            "ice: one of 'sdpMid' or 'sdpMLineIndex' is required",
        ),
        (
            {"type": "ice", "candidate": CANDIDATE, "sdpMid": 0},
            "ice: 'sdpMid' must be a string or null",
        ),
        (
            {"type": "ice", "candidate": CANDIDATE, "sdpMLineIndex": -1},
            "ice: 'sdpMLineIndex' must be a non-negative integer or null",
        ),
    ],
)
def test_client_parse_errors(data: Any, error: str) -> None:
    with pytest.raises(SignalError) as info:
        parse_client_message(data)
    assert str(info.value) == error


def test_node_parse_errors() -> None:
    with pytest.raises(SignalError, match=r"^renegotiate: 'canSpeak' must be a boolean$"):
        parse_node_message({"type": "renegotiate", "canSpeak": "yes"})
    with pytest.raises(SignalError, match=r"^unknown signal type 'offer' \(expected"):
        parse_node_message({"type": "offer", "sdp": SDP})


@pytest.mark.timeout(30)
async def test_bad_input_rejected_and_others_unaffected(tmp_path: Path) -> None:
    h = Harness()
    try:
        await h.join("alice", play=write_tone(tmp_path / "a.wav", 440), can_speak=True)
        bob = await h.join("bob")
        ice = {"type": "ice", "candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("mallory", {"type": "nope"}, "unknown signal type 'nope'"),
            ("mallory", ice, "ice: no media session for this participant (send an offer first)"),
            ("mallory", {"type": "offer", "sdp": "garbage"}, "offer: malformed SDP"),
            # structurally plausible SDP that aiortc refuses (no ICE/DTLS parameters)
            ("mallory", {"type": "offer", "sdp": SDP}, "offer: rejected"),
            ("bob", {"type": "offer", "sdp": SDP}, "offer: rejected"),
            ("bob", {**ice, "candidate": "candidate:bogus"}, "ice: malformed candidate"),
            ("bob", {**ice, "sdpMLineIndex": 7, "sdpMid": "9"}, "ice: unknown sdpMid"),
            ("bob", {**ice, "sdpMLineIndex": 7, "sdpMid": None}, "ice: unknown sdpMLineIndex"),
        ]
        for who, message, error in cases:
            with pytest.raises(SignalError) as info:
                await h.room.signal(who, message)
                pytest.fail(f"accepted: {who} {message}")
            assert str(info.value).startswith(error), info.value
        assert "mallory" not in h.room.participants  # a failed first offer leaves nothing
        await h.room.signal("bob", ice)  # a well-formed trickled candidate is accepted
        start = time.monotonic()
        await asyncio.sleep(0.8)
        assert band_energy(bob.heard_since(start + 0.2), 440) > 0.8
    finally:
        await h.close()
