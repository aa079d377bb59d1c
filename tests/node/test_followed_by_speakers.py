"""The room view marks listeners someone on stage follows (`followed_by_speakers`)."""

from __future__ import annotations

from typing import Any

from node.web.api import ROOMS
from tests.support.nodes import Node


def flags(view: dict[str, Any]) -> dict[str, bool]:
    return {p["user"]: p["followed_by_speakers"] for p in view["listeners"]}


async def test_listeners_followed_by_anyone_on_stage(node: Node) -> None:
    alice, bob, carol, dave, erin = [
        await node.user(n) for n in ("alice", "bob", "carol", "dave", "erin")
    ]
    _, room = await alice.call("POST", "/api/rooms", {"title": "Followed"})
    rid = room["id"]
    assert (await alice.call("POST", f"/api/rooms/{rid}/join"))[0] == 200
    # alice (host) follows bob; carol follows dave, but carol is not on stage yet;
    # erin is locked and alice's request is still pending: not a follow yet
    assert (await alice.call("POST", "/api/users/bob/follow"))[0] == 200
    assert (await carol.call("POST", "/api/users/dave/follow"))[0] == 200
    await erin.call("PATCH", "/api/me", {"locked": True})
    _, pending = await alice.call("POST", "/api/users/erin/follow")
    assert pending["state"] == "pending", pending
    # listeners following a speaker do not count the other way round
    assert (await bob.call("POST", "/api/users/alice/follow"))[0] == 200
    for who in (bob, carol, dave, erin):
        assert (await who.call("POST", f"/api/rooms/{rid}/join"))[0] == 200

    _, view = await bob.call("GET", f"/api/rooms/{rid}")
    assert flags(view) == {"bob": True, "carol": False, "dave": False, "erin": False}
    assert view["you"]["followed_by_speakers"] is True
    assert "followed_by_speakers" not in view["speakers"][0]  # the flag is for listeners

    # carol becomes a moderator (on stage): dave, whom she follows, is now marked
    status, body = await alice.call("POST", f"/api/rooms/{rid}/make_moderator", {"user": "carol"})
    assert status == 200, body
    _, view = await alice.call("GET", f"/api/rooms/{rid}")
    assert flags(view) == {"bob": True, "dave": True, "erin": False}

    # erin approves alice: accepted follows count
    assert (await erin.call("POST", "/api/me/follow-requests/alice/approve"))[0] == 200
    _, view = await dave.call("GET", f"/api/rooms/{rid}")
    assert flags(view)["erin"] is True
    assert view["you"]["followed_by_speakers"] is True

    # carol moves back to the audience: dave is no longer followed by anyone on stage
    for action in ("unmake_moderator", "move_to_audience"):
        status, body = await alice.call("POST", f"/api/rooms/{rid}/{action}", {"user": "carol"})
        assert status == 200, body
    _, view = await alice.call("GET", f"/api/rooms/{rid}")
    assert flags(view) == {"bob": True, "carol": False, "dave": False, "erin": True}


async def test_no_query_per_pair(node: Node) -> None:
    """One follows query per view, however many people are on stage and in the audience."""
    host = await node.user("host")
    _, room = await host.call("POST", "/api/rooms", {"title": "Busy"})
    rid = room["id"]
    await host.call("POST", f"/api/rooms/{rid}/join")
    for i in range(6):
        u = await node.user(f"user{i}")
        await u.call("POST", f"/api/rooms/{rid}/join")
        if i < 3:
            await host.call("POST", f"/api/rooms/{rid}/invite_to_speak", {"user": f"user{i}"})
            await u.call("POST", f"/api/rooms/{rid}/accept_invite")
        else:
            await node.users[1].call("POST", f"/api/users/user{i}/follow")  # user0 follows
    assert node.app is not None
    service = node.app[ROOMS]
    db = service.follows.db
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        view = service.view(service.get(rid), None)
    finally:
        db.conn.set_trace_callback(None)
    assert flags(view) == {"user3": True, "user4": True, "user5": True}
    assert len([s for s in statements if "FROM follows" in s]) == 1, statements
