"""turn_servers, stun_servers and the other ICE settings: TOML and environment forms, and
the errors an operator sees for bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.settings import SettingsError, load_settings
from node.turn import TurnServer


def test_turn_servers_from_toml(tmp_path: Path) -> None:
    (tmp_path / "salon.toml").write_text(
        """
stun_servers = ["stun:stun.example.org:3478"]
turn_ttl_seconds = 3600
ice_transport_policy = "relay"

[[turn_servers]]
urls = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp"]
secret = "north"

[[turn_servers]]
urls = "turn:[2001:db8::1]:3478"
username = "salon"
credential = "pw"
"""
    )
    s = load_settings(tmp_path, environ={})
    assert s.turn_servers == (
        TurnServer(
            (
                "turn:turn.example.org:3478?transport=udp",
                "turns:turn.example.org:5349?transport=tcp",
            ),
            secret="north",
        ),
        TurnServer(("turn:[2001:db8::1]:3478",), "salon", "pw"),
    )
    assert (s.turn_ttl_seconds, s.ice_transport_policy) == (3600, "relay")
    assert s.stun_servers == ("stun:stun.example.org:3478",)
    # secrets and static passwords stay out of repr (settings get logged)
    assert "north" not in repr(s) and "'pw'" not in repr(s)


def test_turn_servers_from_environment(tmp_path: Path) -> None:
    one = {"urls": "turn:127.0.0.1:3478", "secret": "s"}
    s = load_settings(tmp_path, environ={"SALON_TURN_SERVERS": json.dumps(one)})
    assert s.turn_servers == (TurnServer(("turn:127.0.0.1:3478",), secret="s"),)
    s = load_settings(tmp_path, environ={"SALON_TURN_SERVERS": json.dumps([one, one])})
    assert len(s.turn_servers) == 2
    s = load_settings(
        tmp_path,
        environ={
            "SALON_TURN_SERVERS": "",
            "SALON_TURN_TTL_SECONDS": "600",
            "SALON_ICE_TRANSPORT_POLICY": "all",
        },
    )
    assert (s.turn_servers, s.turn_ttl_seconds) == ((), 600)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("{not json", r"setting 'turn_servers': not valid JSON"),
        ('"turn:a.example"', r"must be a list of servers"),
        ('[{"secret": "s"}]', r"server 1: 'urls' must be a URL or a non-empty list"),
        ('[{"urls": [], "secret": "s"}]', r"'urls' must be a URL or a non-empty list"),
        ('[{"urls": "http://a.example", "secret": "s"}]', r"is not a TURN URL"),
        ('[{"urls": "stun:a.example", "secret": "s"}]', r"is not a TURN URL"),
        ('[{"urls": "turn:a.example?transport=sctp", "secret": "s"}]', r"is not a TURN URL"),
        ('[{"urls": "turn:a.example:70000", "secret": "s"}]', r"port out of range"),
        ('[{"urls": "turns:a.example?transport=udp", "secret": "s"}]', r"TCP \(TLS\) only"),
        ('[{"urls": "turn:a.example"}]', r"server 1: needs 'secret'"),
        ('[{"urls": "turn:a.example", "username": "u"}]', r"needs 'secret'"),
        ('[{"urls": "turn:a.example", "secret": "s", "username": "u"}]', r"not both"),
        ('[{"urls": "turn:a.example", "secret": 5}]', r"'secret' must be a string"),
        ('[{"urls": "turn:a.example", "secret": "s", "ttl": 1}]', r"unknown key\(s\) ttl"),
        ('[{"urls": "turn:a.example", "secret": "s"}, 3]', r"server 2: must be a table"),
    ],
)
def test_bad_turn_servers_in_environment(tmp_path: Path, env: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(tmp_path, environ={"SALON_TURN_SERVERS": env})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("turn_servers = 'turn:a.example'", r"setting 'turn_servers': not valid JSON"),
        ("turn_servers = [1]", r"server 1: must be a table"),
        ("[[turn_servers]]\nurls = 'turn:a.example'", r"needs 'secret'"),
        ("turn_ttl_seconds = 10", r"'turn_ttl_seconds' must be 60 to 604800"),
        ("turn_ttl_seconds = 'long'", r"setting 'turn_ttl_seconds': 'long' is not a valid int"),
        ("ice_transport_policy = 'none'", r"must be 'all' or 'relay'"),
        ("ice_transport_policy = 'relay'", r"'relay' needs 'turn_servers'"),
        ("ice_servers_per_user_per_minute = 0", r"must be at least 1"),
        ("stun_servers = ['stun.l.example:19302']", r"setting 'stun_servers': .* not a STUN URL"),
        ("stun_servers = ['turn:a.example']", r"not a STUN URL"),
        ("stun_servers = ['stun:a.example:0']", r"port out of range"),
    ],
)
def test_bad_ice_settings_in_toml(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "salon.toml").write_text(text + "\n")
    with pytest.raises(SettingsError, match=message):
        load_settings(tmp_path, environ={})
