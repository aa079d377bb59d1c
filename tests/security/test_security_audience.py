"""Attacks on the paged listener list and the coalesced audience (node/web/listeners_api.py,
node/rooms/broadcast.py): hostile paging parameters, outsiders of closed rooms, a hostile
origin's `audience` message, a hostile relay node asking for listeners over its trunk."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from node.rooms.broadcast import parse_audience
from tests.support.chat import HostileTrunk
from tests.support.crowd import Bot, prepare_accounts
from tests.support.federation import signed_join
from tests.support.network import FAST
from tests.support.nodes import NodeFactory

pytestmark = pytest.mark.timeout(60)

BAD_LIMITS = [
    "0",
    "-1",
    "abc",
    "1e3",
    "1.5",
    " 5",
    "5 ",
    "+5",
    "0x10",
    "201",  # above listeners_page_max
    "9" * 400,
    "\u0663",  # ARABIC-INDIC DIGIT THREE: a digit to str.isdigit(), not to us
    "",
]
BAD_CURSORS = ["-5", "abc", "1.5", "0x10", "9" * 40, "\uff11", "1\n", "1;2", "%00"]


async def test_hostile_paging_parameters_are_400(node_factory: NodeFactory, tmp_path: Path) -> None:
    tokens = prepare_accounts(tmp_path / "a", ["alice", "bob"])
    node = await node_factory("a", listeners_page_max=200)
    async with aiohttp.ClientSession() as http:
        alice = Bot(http, node.url, "alice", tokens["alice"])
        _, room = await alice.call("POST", "/api/rooms", {"title": "Open"})
        path = f"/api/rooms/{room['id']}/listeners"
        for limit in BAD_LIMITS:
            status, body = await alice.call("GET", f"{path}?limit={quote(limit)}")
            assert status == 400, (limit, body)
            assert body == {"error": "limit must be an integer from 1 to 200"}
        for cursor in BAD_CURSORS:
            status, body = await alice.call("GET", f"{path}?after={quote(cursor)}")
            assert status == 400, (cursor, body)
            assert body == {"error": "after must be the 'next' cursor of a previous page"}
        # the biggest cursor that parses is simply past everyone
        status, body = await alice.call("GET", f"{path}?after={'9' * 15}&limit=200")
        assert status == 200 and body["listeners"] == [] and body["next"] is None
        status, body = await alice.call("GET", "/api/rooms/nope/listeners")
        assert status == 404


async def test_outsiders_may_not_list_a_closed_rooms_audience(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    tokens = prepare_accounts(tmp_path / "a", ["alice", "bob", "mallory"])
    node = await node_factory("a")
    async with aiohttp.ClientSession() as http:
        alice, bob, mallory = (Bot(http, node.url, n, tokens[n]) for n in tokens)
        _, room = await alice.call(
            "POST", "/api/rooms", {"title": "Private", "join_mode": "closed"}
        )
        path = f"/api/rooms/{room['id']}/listeners"
        # bob comes in with the invite link; mallory has none
        token = room["invite_link"].split("invite=")[1]
        status, _ = await bob.call("POST", f"/api/rooms/{room['id']}/join", {"invite_token": token})
        assert status == 200
        status, body = await mallory.call("GET", path)
        assert (status, body) == (403, {"error": "only the room's members may see who listens"})
        async with http.get(node.url + path) as resp:  # signed out
            assert resp.status == 401
            assert await resp.json() == {"error": "sign in first"}
        status, body = await bob.call("GET", path)
        assert status == 200 and [p["user"] for p in body["listeners"]] == ["bob"]
        status, body = await alice.call("GET", path)
        assert status == 200
        # bob left: his invitation stays (he may come back), so he still may; mallory not
        status, _ = await bob.call("POST", f"/api/rooms/{room['id']}/leave")
        assert status == 200
        status, body = await bob.call("GET", path)
        assert status == 200 and body["listeners"] == []
        status, body = await mallory.call("GET", path + "?limit=1")
        assert status == 403


def test_a_hostile_origins_audience_message_is_ignored() -> None:
    """A remote origin's counts must be small non-negative integers, or nothing changes."""
    good = {"seq": 1, "participant_count": 2, "listener_count": 1, "hand_count": 0}
    assert parse_audience(good) is not None
    for bad in (
        {**good, "seq": 2**60},
        {**good, "listener_count": -3},
        {**good, "participant_count": 1.5},
        {**good, "hand_count": None},
        {**good, "seq": "1"},
        {**good, "listener_count": [1]},
        {"type": "audience"},
    ):
        assert parse_audience(bad) is None, bad


async def test_a_hostile_trunk_asking_for_listeners(node_factory: NodeFactory) -> None:
    """B's trunk may page the audience only for its own users, with sane numbers, and
    never more than A's own page cap at once."""
    a = await node_factory("a", **FAST, listeners_page_max=2)
    b = await node_factory("b", **FAST)
    c = await node_factory("c", **FAST)
    alice = await a.user("alice")
    await b.user("bob")
    await c.user("carol")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Watched"})
    for i in range(3):
        listener = await a.user(f"l{i}")
        status, _ = await listener.call("POST", f"/api/rooms/{room['id']}/join")
        assert status == 200
    url = room["url"]
    assert await signed_join(b, url, username="bob") == 202
    assert await signed_join(c, url, username="carol") == 202
    trunk = await HostileTrunk.open(b, url)
    bob_uri = f"{b.url}/users/bob"
    assert await trunk.seat({bob_uri: 1}) == []

    def ask(**fields: object) -> dict[str, object]:
        return {"type": "get_listeners", "actor": bob_uri, "after": 0, "limit": 2, **fields}

    page = await trunk.request(ask(limit=10_000))  # capped at A's listeners_page_max
    assert page["type"] == "listeners" and len(page["listeners"]) == 2, page
    assert page["next"] is not None
    for bad, error in (
        ({"after": -1}, "after must be a listener cursor"),
        ({"after": "0"}, "after must be a listener cursor"),
        ({"after": 10**20}, "after must be a listener cursor"),
        ({"after": 1.5}, "after must be a listener cursor"),
        ({"limit": 0}, "limit must be an integer from 1 to 10000"),
        ({"limit": 10**9}, "limit must be an integer from 1 to 10000"),
        ({"limit": True}, "limit must be an integer from 1 to 10000"),
        ({"actor": None}, "actor must be a string"),
    ):
        answer = await trunk.request(ask(**bad))
        assert answer["type"] == "error" and answer["error"] == error, (bad, answer)
    # another node's user, and the room node's own
    for actor in (f"{c.url}/users/carol", f"{a.url}/users/alice"):
        answer = await trunk.request(ask(actor=actor))
        assert answer["type"] == "error" and answer["status"] == 403, answer
    await trunk.close()
