"""GET /api/ice-servers: TURN REST credentials minted per request for signed-in clients."""

from __future__ import annotations

import base64
import hashlib
import json

from node.clock import FakeClock
from node.turn import TurnServer, rest_credentials
from tests.support.nodes import NodeFactory

START = 1_800_000_000.0  # FakeClock's default start
SECRET = "north"
TURN = TurnServer(
    ("turn:turn.example:3478?transport=udp", "turns:turn.example:5349"), secret=SECRET
)
STATIC = TurnServer(("turn:static.example:3478?transport=tcp",), "salon", "static-pass")


def hmac_sha1_rfc2104(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA1 built by hand from RFC 2104 §2, independent of the code under test."""
    block = 64
    key = key.ljust(block, b"\0")
    inner = hashlib.sha1(bytes(k ^ 0x36 for k in key) + message).digest()
    return hashlib.sha1(bytes(k ^ 0x5C for k in key) + inner).digest()


def test_rest_credentials_vector() -> None:
    username, credential = rest_credentials(SECRET, "alice", 1_800_021_600)
    assert username == "1800021600:alice"
    # printf '1800021600:alice' | openssl dgst -sha1 -hmac north -binary | base64
    assert credential == "/l3dkNXPTngAAWsEL2Ztc5ZTTEk="
    expected = base64.b64encode(hmac_sha1_rfc2104(b"north", b"1800021600:alice")).decode()
    assert credential == expected


async def test_minted_per_request_with_expiry(node_factory: NodeFactory) -> None:
    clock = FakeClock(START)
    node = await node_factory(
        clock=clock,
        turn_servers=(TURN, STATIC),
        stun_servers=("stun:stun.example:3478",),
        turn_ttl_seconds=3600,
    )
    alice = await node.user("alice")
    status, body = await alice.call("GET", "/api/ice-servers")
    assert status == 200, body
    expiry = int(START) + 3600
    username = f"{expiry}:alice"
    password = base64.b64encode(hmac_sha1_rfc2104(SECRET.encode(), username.encode())).decode()
    assert body == {
        "iceServers": [
            {"urls": list(TURN.urls), "username": username, "credential": password},
            {"urls": list(STATIC.urls), "username": "salon", "credential": "static-pass"},
            {"urls": ["stun:stun.example:3478"]},
        ],
        "iceTransportPolicy": "all",
        "expires_at": expiry,
        "ttl_seconds": 3600,
    }
    assert SECRET not in json.dumps(body)

    # a later request gets credentials that expire later; a bearer token works the same
    clock.advance(100)
    bot = await node.user()
    _, token = await bot.call(
        "POST", "/api/auth/token", {"username": "alice", "password": "password123"}
    )
    status, later = await bot.call(
        "GET", "/api/ice-servers", headers={"Authorization": f"Bearer {token['token']}"}
    )
    assert status == 200
    assert later["iceServers"][0]["username"] == f"{expiry + 100}:alice"
    assert later["expires_at"] == expiry + 100


async def test_static_only_and_empty(node_factory: NodeFactory) -> None:
    node = await node_factory("a", turn_servers=(STATIC,), ice_transport_policy="relay")
    alice = await node.user("alice")
    _, body = await alice.call("GET", "/api/ice-servers")
    assert body == {
        "iceServers": [
            {"urls": list(STATIC.urls), "username": "salon", "credential": "static-pass"}
        ],
        "iceTransportPolicy": "relay",
        "expires_at": None,
        "ttl_seconds": None,
    }
    bare = await node_factory("b")
    bob = await bare.user("bob")
    _, body = await bob.call("GET", "/api/ice-servers")
    assert body["iceServers"] == [] and body["iceTransportPolicy"] == "all"
