"""Attacks on the paged listener list and the coalesced audience (node/web/listeners_api.py,
node/rooms/broadcast.py): hostile paging parameters, outsiders of closed rooms, a hostile
origin's `audience` message."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from node.rooms.broadcast import parse_audience
from tests.support.crowd import Bot, prepare_accounts
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
