"""Attacks on Notify me and calendars: rooms you cannot see, floods, hostile remote
Follows of rooms (blocked actors and domains, objects on other hosts, undoing someone
else's RSVP), iCalendar injection through titles and descriptions, feed token guessing."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from typing import Any

import aiohttp
import pytest

from federation.as2 import host_of
from node.calendar import CalendarRoom, calendar
from tests.security.fake_actor_server import FakeActorServer
from tests.support.attacks import parts
from tests.support.network import FAST
from tests.support.nodes import ApiUser, Node, NodeFactory
from tests.support.rsvp import events

pytestmark = pytest.mark.timeout(60)
_ids = itertools.count()


async def scheduled(host: ApiUser, **fields: Any) -> dict[str, Any]:
    body = {"title": "Tea", "start_time": time.time() + 3600, **fields}
    status, room = await host.call("POST", "/api/rooms", body)
    assert status == 201, room
    return room


def rsvp_rows(node: Node) -> int:
    row = parts(node).db.one("SELECT count(*) FROM rsvps")
    assert row is not None
    return int(row[0])


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


def follow(remote: FakeActorServer, actor: str, target: str) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.url}/activities/follow-{next(_ids)}",
        "type": "Follow",
        "actor": actor,
        "object": target,
    }


def undo(remote: FakeActorServer, actor: str, inner: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.url}/activities/undo-{next(_ids)}",
        "type": "Undo",
        "actor": actor,
        "object": {k: v for k, v in inner.items() if k != "@context"},
    }


async def test_rsvp_to_rooms_you_cannot_see_is_not_found(node_factory: NodeFactory) -> None:
    a = await node_factory("a")
    alice, bob = await a.user("alice"), await a.user("bob")
    closed = await scheduled(alice, join_mode="closed")
    social = await scheduled(alice, join_mode="social")
    for room in (closed, social):
        status, body = await bob.call("POST", f"/api/rooms/{room['id']}/rsvp")
        assert status == 404 and body == {"error": "no such room"}, body
        status, body = await bob.call("POST", "/api/rsvps", {"room": room["url"]})
        assert status == 404, body
        assert (await get(f"{a.url}/rooms/{room['id']}.ics"))[0] == 404
    for bad in ("../etc", "x" * 500, "", None, 5, "http://a b/rooms/x"):
        status, body = await bob.call("POST", "/api/rsvps", {"room": bad})
        assert status in (400, 404) and "error" in body, (bad, body)
    status, body = await bob.call("POST", "/api/rsvps", {"room": closed["id"], "x": 1})
    assert status == 400 and body == {"error": "unknown field(s): x"}
    assert rsvp_rows(a) == 0
    # blocked by the host: the room is not there for bob
    bob_user = parts(a).accounts.users.by_name("bob")
    alice_user = parts(a).accounts.users.by_name("alice")
    assert bob_user is not None and alice_user is not None
    parts(a).blocks.block(alice_user, bob_user)
    open_room = await scheduled(alice)
    assert (await bob.call("POST", f"/api/rooms/{open_room['id']}/rsvp"))[0] == 404
    assert rsvp_rows(a) == 0


async def test_rsvp_flood_is_capped_per_user_even_when_concurrent(
    node_factory: NodeFactory,
) -> None:
    a = await node_factory("a", rsvps_per_user=3, rsvp_changes_per_minute=1000)
    alice, bob = await a.user("alice"), await a.user("bob")
    rooms = [await scheduled(alice, title=f"Room {i}") for i in range(8)]
    results = await asyncio.gather(
        *(bob.call("POST", f"/api/rooms/{room['id']}/rsvp") for room in rooms)
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 3 + [409] * 5, results
    refused = next(body for status, body in results if status == 409)
    assert refused == {"error": "you already asked to be notified about 3 rooms; cancel one first"}
    assert rsvp_rows(a) == 3


async def test_rsvp_changes_are_rate_limited(node_factory: NodeFactory) -> None:
    a = await node_factory("a", rsvp_changes_per_minute=4)
    alice, bob = await a.user("alice"), await a.user("bob")
    room = await scheduled(alice)
    path = f"/api/rooms/{room['id']}/rsvp"
    for method in ("POST", "DELETE", "POST", "DELETE"):
        assert (await bob.call(method, path))[0] == 200
    status, body = await bob.call("POST", path)
    assert status == 429 and body == {"error": "too many Notify me changes; slow down"}
    assert rsvp_rows(a) == 0


async def test_hostile_remote_follows_of_rooms(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a = await node_factory("a", **FAST)
    alice = await a.user("alice")
    room = await scheduled(alice)
    mallory, eve = remote.actor("mallory"), remote.actor("eve")
    key = f"{mallory}#main-key"
    inbox = f"{a.url}/inbox"

    # a Follow whose object is a room on another host is not ours to count
    status, text = await remote.post(
        inbox, follow(remote, mallory, f"{remote.url}/rooms/{room['id']}"), key_id=key
    )
    assert status == 400, text
    # no such room, and a room that is not scheduled or live
    status, text = await remote.post(
        inbox, follow(remote, mallory, f"{a.url}/rooms/nope"), key_id=key
    )
    assert status == 403 and "no such room" in text
    ended = await scheduled(alice, title="Over")
    assert (await alice.call("POST", f"/api/rooms/{ended['id']}/end"))[0] == 200
    status, text = await remote.post(inbox, follow(remote, mallory, ended["url"]), key_id=key)
    assert status == 403 and "the room is ended" in text
    closed = await scheduled(alice, title="Closed", join_mode="closed")
    status, text = await remote.post(inbox, follow(remote, mallory, closed["url"]), key_id=key)
    assert status == 403 and "no such room" in text
    assert rsvp_rows(a) == 0

    # a real RSVP, then eve tries to undo it (by embedded Follow and by id)
    real = follow(remote, mallory, room["url"])
    status, text = await remote.post(inbox, real, key_id=key)
    assert status == 202, text
    assert parts(a).rsvps.count(room["id"]) == 1
    forged = undo(remote, eve, real)
    status, _ = await remote.post(inbox, forged, key_id=f"{eve}#main-key")
    assert status == 400
    by_id = undo(remote, eve, real)
    by_id["object"] = real["id"]
    status, _ = await remote.post(inbox, by_id, key_id=f"{eve}#main-key")
    assert status == 400
    assert parts(a).rsvps.count(room["id"]) == 1
    status, _ = await remote.post(inbox, undo(remote, mallory, real), key_id=key)
    assert status == 202 and parts(a).rsvps.count(room["id"]) == 0

    # alice blocks mallory: the room is not there for mallory any more
    users = parts(a).accounts.users
    alice_user, mallory_user = users.by_name("alice"), users.by_actor_uri(mallory)
    assert alice_user is not None and mallory_user is not None
    parts(a).blocks.block(alice_user, mallory_user)
    status, text = await remote.post(inbox, follow(remote, mallory, room["url"]), key_id=key)
    assert status == 403 and rsvp_rows(a) == 0
    # eve's whole domain is suspended
    parts(a).federation.policies.set_policy(host_of(remote.url), "suspend", 0.0)
    status, text = await remote.post(
        inbox, follow(remote, eve, room["url"]), key_id=f"{eve}#main-key"
    )
    assert status == 403 and "does not federate" in text
    assert rsvp_rows(a) == 0


HOSTILE = "Tea, cake; and \\ more ‮gnp.exe\u200d 👩‍👩‍👧 é\u0301 \U0001f600" * 2


async def test_ics_injection_through_title_and_description(node_factory: NodeFactory) -> None:
    a = await node_factory("a")
    alice = await a.user("alice")
    status, _ = await alice.call(
        "POST",
        "/api/rooms",
        {"title": "Evil\r\nEND:VEVENT", "start_time": time.time() + 3600},
    )
    assert status == 400  # titles are one line: refused before anything is written
    description = "line\nEND:VEVENT\nBEGIN:VEVENT\nSUMMARY:injected\nATTACH:x"
    room = await scheduled(alice, title=HOSTILE[:200], description=description)
    status, ics = await get(f"{a.url}/rooms/{room['id']}.ics")
    assert status == 200
    (event,) = events(ics)  # exactly one event, nothing injected
    assert str(event["SUMMARY"]) == HOSTILE[:200]
    assert "SUMMARY:injected" in str(event["DESCRIPTION"])
    lines = ics.split("\r\n")
    assert sum(1 for line in lines if line == "BEGIN:VEVENT") == 1
    assert not any(line.startswith(("SUMMARY:injected", "ATTACH")) for line in lines)
    assert all(len(line.encode()) <= 75 for line in lines)
    # a remote host's document may hold anything: control characters never reach a line
    hostile = CalendarRoom(
        url="http://b.example/rooms/x\r\nATTACH:evil",
        title="a\rb\nc\x00d\u2028e,f;g",
        description="",
        host="mallory@b.example",
        status="scheduled",
        start=1_800_000_000.0,
        end=None,
        took_place=False,
    )
    raw = calendar([hostile], 1_800_000_000.0, "x\r\nX-EVIL:1").decode()
    (parsed,) = events(raw)
    assert str(parsed["SUMMARY"]) == "a\nb\ncde,f;g"
    assert "X-EVIL" not in [line.split(":")[0] for line in raw.split("\r\n")]
    assert not any(line.startswith("ATTACH") for line in raw.split("\r\n"))


async def test_feed_tokens_cannot_be_guessed(node_factory: NodeFactory) -> None:
    a = await node_factory("a")
    bob = await a.user("bob")
    _, feed = await bob.call("POST", "/api/me/calendar")
    token = feed["url"].rsplit("/", 1)[1].removesuffix(".ics")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    guesses = [
        secrets.token_urlsafe(32),
        flipped,
        token + "A",
        token[:-1],
        "",
        "x" * 5000,
        "%2e%2e%2f" * 5,
        "é" * 43,
    ]
    for guess in guesses:
        status, _ = await get(f"{a.url}/calendar/{guess}.ics")
        assert status == 404, (guess, status)
    assert (await get(feed["url"]))[0] == 200
    row = parts(a).db.one("SELECT token_hash FROM calendar_tokens")
    assert row is not None and token not in row[0]  # only a hash is stored


async def test_no_rsvp_to_a_room_on_a_suspended_domain(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice, bob = await a.user("alice"), await b.user("bob")
    room = await scheduled(alice)
    parts(b).federation.policies.set_policy(host_of(a.url), "suspend", 0.0)
    status, body = await bob.call("POST", "/api/rsvps", {"room": room["url"]})
    assert status == 403 and body == {"error": "this node does not federate with that room's node"}
    assert rsvp_rows(a) == 0 and rsvp_rows(b) == 0
    # URLs that are no room at all (here, and on a node that answers): nothing is stored
    parts(b).federation.policies.remove_policy(host_of(a.url))
    for url in (f"{b.url}/users/bob", f"{a.url}/users/alice", f"{a.url}/rooms/nope"):
        status, body = await bob.call("POST", "/api/rsvps", {"room": url})
        assert status == 404 and body == {"error": "no such room"}, (url, body)
    assert rsvp_rows(a) == 0 and rsvp_rows(b) == 0


async def test_another_node_cannot_reject_or_start_someone_elses_room(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice, bob = await a.user("alice"), await b.user("bob")
    room = await scheduled(alice, title="Real")
    assert (await bob.call("POST", "/api/rsvps", {"room": room["url"]}))[0] == 200
    mallory = remote.actor("mallory")
    key = f"{mallory}#main-key"
    bob_uri = f"{b.url}/users/bob"
    for kind in ("Reject", "Accept"):
        answer = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{remote.url}/activities/{kind.lower()}-{next(_ids)}",
            "type": kind,
            "actor": mallory,
            "object": {
                "id": f"{b.url}/activities/whatever",
                "type": "Follow",
                "actor": bob_uri,
                "object": room["url"],
            },
        }
        status, text = await remote.post(f"{b.url}/inbox", answer, key_id=key)
        assert status == 400 and "another node" in text, text
    # mallory announces alice's room as live: not hers, nobody is reminded
    update = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.url}/activities/update-{next(_ids)}",
        "type": "Update",
        "actor": mallory,
        "object": {
            "id": room["url"],
            "type": "Event",
            "name": "Fake",
            "attributedTo": mallory,
            "status": "live",
        },
    }
    status, _ = await remote.post(f"{b.url}/inbox", update, key_id=key)
    assert status == 400
    _, mine = await bob.call("GET", "/api/me/rsvps")
    assert mine == {"rooms": [room["url"]]}
    _, page = await bob.call("GET", "/api/notifications")
    assert page["items"] == []
