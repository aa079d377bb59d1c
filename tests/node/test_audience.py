"""Large audiences on a real node: coalesced `audience` messages instead of per-listener
events, gap-free seq, moderators kept exact, the coalesced view and the paged listener
list (node/rooms/broadcast.py, node/web/listeners_api.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.crowd import Bot, kinds, prepare_accounts
from tests.support.nodes import NodeFactory

pytestmark = pytest.mark.timeout(90)

THRESHOLD = 3


def check_seq(messages: list[dict[str, Any]], start: int) -> int:
    """Events continue the seq by one; audience messages may jump ahead, never back."""
    seq = start
    for m in messages:
        if m.get("type") == "event":
            assert m["seq"] == seq + 1, (seq, m)
            seq = m["seq"]
        elif m.get("type") == "audience":
            assert m["seq"] >= seq, (seq, m)
            seq = m["seq"]
    return seq


async def until(condition: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_listener_churn_reaches_listeners_as_counts(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    names = ["alice", "bob"] + [f"u{i}" for i in range(8)]
    tokens = prepare_accounts(tmp_path / "a", names)
    node = await node_factory("a", audience_coalesce_above=THRESHOLD)
    async with aiohttp.ClientSession() as http:
        bots = {n: Bot(http, node.url, n, tokens[n]) for n in names}
        alice, bob = bots["alice"], bots["bob"]
        status, room = await alice.call("POST", "/api/rooms", {"title": "Big"})
        assert status == 201, room
        await alice.connect(room["id"])
        state = await bob.connect(room["id"])
        start = state["room"]["seq"]
        for i in range(8):
            await bots[f"u{i}"].connect(room["id"])
        await until(
            lambda: any(m.get("type") == "audience" and m["listener_count"] == 9 for m in bob.got)
        )
        # u0 joined a room of 3 (not coalesced yet); everyone after it was folded for bob
        joined = [m["user"] for m in bob.got if m.get("event") == "joined"]
        assert joined == ["u0"]
        last = check_seq(bob.got, start)
        final = [m for m in bob.got if m.get("type") == "audience"][-1]
        assert final["participant_count"] == 10 and final["coalesced"] is True
        # the host (a moderator) saw every arrival, in order
        host_joined = [m["user"] for m in alice.got if m.get("event") == "joined"]
        assert host_joined == ["bob"] + [f"u{i}" for i in range(8)]

        # a stage event reaches bob at once and continues his seq without a gap
        await alice.send(type="command", action="mute")
        await until(lambda: "muted" in kinds(bob.got))
        muted = next(m for m in bob.got if m.get("event") == "muted")
        assert muted["seq"] > last
        check_seq(bob.got, start)

        # bob's own hand is his; the other listeners only see the hand count change
        await bob.send(type="command", action="raise_hand")
        await until(lambda: "hand_raised" in kinds(bob.got))
        await until(lambda: "hand_raised" in kinds(alice.got))
        u5 = bots["u5"]
        await until(
            lambda: any(m.get("type") == "audience" and m["hand_count"] == 1 for m in u5.got)
        )
        assert "hand_raised" not in kinds(u5.got)

        # the coalesced view lists THRESHOLD listeners and the viewer, the rest is paged
        status, view = await bots["u7"].call("GET", f"/api/rooms/{room['id']}")
        assert status == 200 and view["coalesced"] is True
        shown = [p["user"] for p in view["listeners"]]
        assert len(shown) == THRESHOLD + 1 and "u7" in shown
        assert view["listener_count"] == 9 and view["hand_count"] == 1
        assert view["hands"] == ["bob"]
        for b in bots.values():
            await b.close()


async def test_listener_pages_cover_everyone_once(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    names = ["alice"] + [f"l{i}" for i in range(11)]
    tokens = prepare_accounts(tmp_path / "a", names)
    node = await node_factory("a", audience_coalesce_above=THRESHOLD)
    async with aiohttp.ClientSession() as http:
        bots = {n: Bot(http, node.url, n, tokens[n]) for n in names}
        alice = bots["alice"]
        _, room = await alice.call("POST", "/api/rooms", {"title": "Paged"})
        for i in range(11):
            status, _ = await bots[f"l{i}"].call("POST", f"/api/rooms/{room['id']}/join")
            assert status == 200
        seen: list[str] = []
        after = ""
        pages = 0
        while True:
            status, page = await bots["l3"].call(
                "GET", f"/api/rooms/{room['id']}/listeners?limit=4&after={after}"
            )
            assert status == 200, page
            pages += 1
            assert len(page["listeners"]) <= 4 and page["listener_count"] == 11
            seen += [p["user"] for p in page["listeners"]]
            if page["next"] is None:
                break
            after = page["next"]
        assert pages == 3
        assert sorted(seen) == sorted(f"l{i}" for i in range(11))
        assert len(seen) == len(set(seen))
        assert "alice" not in seen  # the host is on stage, not in the audience
