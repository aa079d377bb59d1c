"""The node <-> media worker wire format (media/worker/protocol.py): round trips, a fixed
vector built by hand (an independent HMAC over the canonical JSON), exact errors."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from media.worker.protocol import (
    COMMANDS,
    EVENTS,
    NODE,
    Command,
    Event,
    ProtocolError,
    Signer,
    Verifier,
)
from node.settings import SettingsError, load_settings

pytestmark = pytest.mark.timeout(10)
SECRET = b"0123456789abcdef-secret"


def test_commands_and_events_round_trip() -> None:
    command = Command(
        "open_relay",
        7,
        {
            "room": "r1",
            "trunk": 99,
            "own_key": "ab" * 32,
            "peer_key": "cd" * 32,
            "origin_host": "10.0.0.2",
            "origin_port": 40001,
        },
    )
    assert Command.parse(json.loads(json.dumps(command.serialize()))) == command
    event = Event("to_participant", {"room": "r1", "participant": "3", "message": {"a": 1}})
    assert Event.parse(json.loads(json.dumps(event.serialize()))) == event
    assert set(COMMANDS) >= {"open_mixer", "signal", "close_room"} and "heartbeat" in EVENTS


def test_a_fixed_vector_verifies_and_one_changed_byte_does_not() -> None:
    unsigned = {
        "from": NODE,
        "to": "w-1",
        "seq": 1000,
        "ts": 1700000000.0,
        "body": {"command": "open_mixer", "id": 1, "fields": {"room": "r"}},
    }
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    mac = hmac.new(SECRET, canonical, hashlib.sha256).hexdigest()
    raw = json.dumps({**unsigned, "mac": mac}).encode()
    opened = Verifier(SECRET, "w-1").open(raw, now=1700000001.0)
    assert opened.sender == NODE and Command.parse(opened.body).fields == {"room": "r"}
    tampered = raw.replace(b'"room": "r"', b'"room": "s"')
    with pytest.raises(ProtocolError, match="bad MAC"):
        Verifier(SECRET, "w-1").open(tampered, now=1700000001.0)


def test_sequence_numbers_grow_per_sender_and_short_secrets_are_refused() -> None:
    signer, verifier = Signer(SECRET, "w-2"), Verifier(SECRET, NODE)
    first, second = signer.seal(NODE, {"x": 1}), signer.seal(NODE, {"x": 2})
    verifier.open(second)
    with pytest.raises(ProtocolError, match="replayed"):
        verifier.open(first)  # older than the last one accepted from w-2
    with pytest.raises(ProtocolError, match="at least 16 bytes"):
        Signer(b"short", NODE)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SALON_MEDIA_WORKERS": "300"}, "setting 'media_workers' must be 0-256"),
        ({"SALON_REDIS_URL": "http://x"}, "setting 'redis_url' must start with redis://"),
        ({"SALON_REDIS_URL": "redis://x"}, "setting 'worker_secret' (at least 16 characters)"),
        ({"SALON_WORKER_SECRET": "short"}, "setting 'worker_secret' must be at least 16"),
        ({"SALON_WORKER_HEARTBEAT_SECONDS": "2"}, "settings 'worker_heartbeat_seconds'"),
        ({"SALON_WORKER_DRAIN_OVERLAP_SECONDS": "99"}, "'worker_drain_overlap_seconds' must"),
        ({"SALON_MAX_WORKERS": "0"}, "setting 'max_workers' must be 1-4096"),
    ],
)
def test_worker_settings_are_checked(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(tmp_path, environ=env)
    assert message in str(caught.value)
