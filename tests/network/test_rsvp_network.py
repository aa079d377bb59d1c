"""Notify me across nodes: bob@B asks about alice@A's scheduled room through B."""

from __future__ import annotations

import time

import aiohttp
import pytest

from cli.app import NODE
from federation.as2 import host_of
from tests.support.network import FAST, eventually
from tests.support.nodes import Node, NodeFactory
from tests.support.rsvp import events

pytestmark = pytest.mark.timeout(90)


def reminded(node: Node, username: str, room_url: str) -> set[str]:
    assert node.app is not None
    built = node.app[NODE]
    user = built.accounts.users.by_name(username)
    assert user is not None
    return built.rsvps.store.reminded(user.id, room_url)


async def test_remote_notify_me_count_live_reminder_feed_and_cancel(
    node_factory: NodeFactory,
) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice = await a.user("alice")
    bob = await b.user("bob")  # bob does not follow alice
    status, room = await alice.call(
        "POST", "/api/rooms", {"title": "Night radio", "start_time": time.time() + 3600}
    )
    assert status == 201, room

    status, body = await bob.call("POST", "/api/rsvps", {"room": room["url"], "notify": True})
    assert status == 200 and body == {"room": room["url"], "notify": True}, body
    _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert view["rsvp_count"] == 1  # the remote RSVP counts at the origin
    _, mine = await bob.call("GET", "/api/me/rsvps")
    assert mine == {"rooms": [room["url"]]}

    # bob's calendar feed on B lists the remote room with A's times, title and URL
    _, feed = await bob.call("POST", "/api/me/calendar")
    async with aiohttp.ClientSession() as http, http.get(feed["url"]) as resp:
        (event,) = events(await resp.text())
    assert str(event["SUMMARY"]) == "Night radio" and str(event["URL"]) == room["url"]
    assert event.decoded("DTSTART").timestamp() == int(room["start_time"])

    # alice starts the room: A tells bob's node (he RSVPed), B reminds bob once
    assert (await alice.call("POST", f"/api/rooms/{room['id']}/start"))[0] == 200

    async def told() -> list[dict]:
        _, page = await bob.call("GET", "/api/notifications")
        return [n for n in page["items"] if n["kind"] == "rsvp_starting"]

    (notice,) = await eventually(told)
    assert notice["room_url"] == room["url"] and notice["title"] == "Night radio"
    assert notice["actor"] == f"alice@{host_of(a.url)}"
    assert "start" in reminded(b, "bob", room["url"])
    # more announcements of the live room (an Update as it changes) remind nobody again
    assert (await alice.call("PATCH", f"/api/rooms/{room['id']}", {"title": "Night radio!"}))[
        0
    ] == 200
    b_parts = b.app[NODE] if b.app is not None else None
    assert b_parts is not None
    assert b_parts.reminders.room_live(room["url"]) == 0
    _, page = await bob.call("GET", "/api/notifications")
    assert [n["kind"] for n in page["items"]].count("rsvp_starting") == 1

    # Don't notify me: B sends Undo{Follow}, A's count drops
    status, body = await bob.call("POST", "/api/rsvps", {"room": room["url"], "notify": False})
    assert status == 200 and body["notify"] is False

    async def withdrawn() -> bool:
        _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
        return bool(view["rsvp_count"] == 0)

    await eventually(withdrawn)


async def test_remote_room_starting_soon_reminds_once_through_bobs_node(
    node_factory: NodeFactory,
) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST, rsvp_reminder_poll_seconds=0.1)
    alice = await a.user("alice")
    bob = await b.user("bob")
    status, room = await alice.call(
        "POST", "/api/rooms", {"title": "Soon", "start_time": time.time() + 300}
    )
    assert status == 201, room
    assert (await bob.call("POST", "/api/rsvps", {"room": room["url"]}))[0] == 200

    async def soon() -> list[dict]:
        _, page = await bob.call("GET", "/api/notifications")
        return [n for n in page["items"] if n["kind"] == "rsvp_soon"]

    (notice,) = await eventually(soon)  # B's own worker: 5 minutes ahead is within 10
    assert notice["room_url"] == room["url"] and notice["title"] == "Soon"
    assert b.app is not None
    assert b.app[NODE].reminders.run_once() == 0  # and only once
    assert len(await soon()) == 1
