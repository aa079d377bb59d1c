"""Notify me, the host's count and calendars through a real node's HTTP API."""

from __future__ import annotations

import time

import aiohttp
import pytest

from tests.support.nodes import ApiUser, NodeFactory
from tests.support.rsvp import events

pytestmark = pytest.mark.timeout(60)


async def scheduled(host: ApiUser, title: str = "Tea time", ahead: float = 3600) -> dict:
    status, room = await host.call(
        "POST", "/api/rooms", {"title": title, "start_time": time.time() + ahead}
    )
    assert status == 201, room
    assert room["status"] == "scheduled"
    return room


async def get_text(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, resp.content_type, await resp.text()


async def test_notify_me_count_and_room_ics(node_factory: NodeFactory) -> None:
    a = await node_factory("a")
    alice = await a.user("alice")
    bob = await a.user("bob")
    room = await scheduled(alice)
    status, body = await bob.call("POST", f"/api/rooms/{room['id']}/rsvp")
    assert status == 200 and body == {"room": room["id"], "notify": True}, body
    _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert view["rsvp_count"] == 1 and view["you_rsvped"] is False
    _, view = await bob.call("GET", f"/api/rooms/{room['id']}")
    assert view["you_rsvped"] is True and "rsvp_count" not in view
    _, hallway = await bob.call("GET", "/api/hallway")
    assert hallway["rooms"][0]["you_rsvped"] is True
    _, mine = await bob.call("GET", "/api/me/rsvps")
    assert mine == {"rooms": [room["id"]]}

    status, kind, ics = await get_text(f"{a.url}/rooms/{room['id']}.ics")
    assert status == 200 and kind == "text/calendar"
    (event,) = events(ics)
    assert str(event["SUMMARY"]) == "Tea time"
    assert str(event["URL"]) == room["url"]
    assert event.decoded("DTSTART").timestamp() == int(room["start_time"])

    status, body = await bob.call("POST", "/api/rsvps", {"room": room["url"], "notify": False})
    assert status == 200 and body["notify"] is False
    _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert view["rsvp_count"] == 0


async def test_calendar_feed_lists_rsvps_and_hosted_rooms_and_rotates(
    node_factory: NodeFactory,
) -> None:
    a = await node_factory("a")
    alice = await a.user("alice")
    bob = await a.user("bob")
    tea = await scheduled(alice, "Tea")
    jazz = await scheduled(bob, "Jazz", ahead=7200)
    other = await scheduled(alice, "Not for bob", ahead=5000)
    assert (await bob.call("POST", f"/api/rooms/{tea['id']}/rsvp"))[0] == 200
    assert (await bob.call("GET", "/api/me/calendar"))[1] == {"active": False}
    status, feed = await bob.call("POST", "/api/me/calendar")
    assert status == 201 and feed["url"].startswith(f"{a.url}/calendar/")
    assert (await bob.call("GET", "/api/me/calendar"))[1] == {"active": True}
    status, kind, ics = await get_text(feed["url"])
    assert status == 200 and kind == "text/calendar"
    titles = [str(e["SUMMARY"]) for e in events(ics)]
    assert titles == ["Tea", "Jazz"]  # by start time; alice's other room is not bob's
    assert other["id"] not in ics and jazz["id"] in ics

    status, rotated = await bob.call("POST", "/api/me/calendar")
    assert rotated["url"] != feed["url"]
    status, _, text = await get_text(feed["url"])
    assert status == 404 and "no such calendar" in text
    assert (await get_text(rotated["url"]))[0] == 200
    assert (await bob.call("DELETE", "/api/me/calendar"))[1] == {"active": False}
    assert (await get_text(rotated["url"]))[0] == 404
