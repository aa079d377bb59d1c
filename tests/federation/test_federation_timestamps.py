"""Timestamps are RFC 3339 and compared as instants (issue 18): room versions in order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from itertools import count

import pytest

from federation.as2 import ActivityError
from federation.events import Event
from federation.rfc3339 import TimestampError, parse_rfc3339
from federation.service import FEDERATION
from tests.support.nodes import Node, NodeFactory
from tests.support.remote import FakeRemote, follow, post


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-01T10:00:00Z", datetime(2026, 5, 1, 10, tzinfo=UTC)),
        ("2026-05-01t10:00:00z", datetime(2026, 5, 1, 10, tzinfo=UTC)),
        ("2026-05-01T10:00:00.5Z", datetime(2026, 5, 1, 10, 0, 0, 500_000, tzinfo=UTC)),
        ("2026-05-01T10:00:00.123456789Z", datetime(2026, 5, 1, 10, 0, 0, 123_456, tzinfo=UTC)),
        ("2026-05-01T12:00:00+02:00", datetime(2026, 5, 1, 10, tzinfo=UTC)),
        ("2026-05-01T05:30:00-04:30", datetime(2026, 5, 1, 10, tzinfo=UTC)),
        ("2026-05-01T10:00:00-00:00", datetime(2026, 5, 1, 10, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
    ],
)
def test_rfc3339_forms(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-01T10:00:00",  # no offset: which instant?
        "2026-05-01",
        "2026-05-01 10:00:00Z",  # ISO 8601 allows more than RFC 3339's ABNF
        "20260501T100000Z",
        "2026-W18-5T10:00:00Z",
        "2026-05-01T10:00Z",
        "2026-05-01T10:00:00.Z",
        "2026-05-01T10:00:00+0200",
        "2026-05-01T10:00:00+24:00",
        "2026-02-30T10:00:00Z",
        "2026-05-01T25:00:00Z",
        "２０２６-05-01T10:00:00Z",  # non-ASCII digits
        "2026-05-01T10:00:00Z ",
        "tomorrow",
    ],
)
def test_not_rfc3339_is_refused_with_a_clear_error(text: str) -> None:
    with pytest.raises(TimestampError, match="not an RFC 3339 date-time"):
        parse_rfc3339(text)


def test_event_fields_are_rfc3339() -> None:
    base = {
        "id": "https://b.example/rooms/1",
        "type": "Event",
        "name": "r",
        "attributedTo": "https://b.example/users/bob",
    }
    event = Event.parse({**base, "updated": "2026-05-01T12:00:00.25+02:00"})
    assert event.updated == datetime(2026, 5, 1, 10, 0, 0, 250_000, tzinfo=UTC)
    assert event.serialize()["updated"] == "2026-05-01T10:00:00.250000Z"
    with pytest.raises(ActivityError, match=r"Event.updated is not an RFC 3339 date-time"):
        Event.parse({**base, "updated": "2026-05-01 10:00:00"})


# ---- the inbox keeps the newest version of a remote room ------------------------------------


class Announcer:
    """mallory's node announcing one room in versions with chosen ``updated`` stamps."""

    def __init__(self, node: Node, remote: FakeRemote) -> None:
        self.node, self.remote = node, remote
        self.room = f"{remote.base}/rooms/r1"
        self._ids = count(1)

    async def send(self, name: str, updated: str) -> int:
        event = {
            "id": self.room,
            "type": "Event",
            "name": name,
            "attributedTo": self.remote.actor_id("mallory"),
            "updated": updated,
            "status": "live",
            "joinMode": "open",
            "speakers": [],
        }
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{self.remote.base}/activities/u{next(self._ids)}",
            "type": "Update",
            "actor": self.remote.actor_id("mallory"),
            "object": event,
        }
        body = json.dumps(activity).encode()
        headers = self.remote.sign(self.node.url + "/inbox", body)
        status, answer = await post(self.node, body, headers)
        assert status == 202, answer
        return status

    def stored_name(self) -> str | None:
        assert self.node.app is not None
        room = self.node.app[FEDERATION].remote_rooms.room(self.room)
        return None if room is None else str(room.document["name"])


async def announcer(node_factory: NodeFactory, remote: FakeRemote) -> Announcer:
    node = await node_factory("a", testnet=True, delivery_poll_seconds=0.05)
    await (await node.user()).signup("alice")
    body = follow(remote, node)  # mallory follows alice: the node stores mallory's actor
    status, _ = await post(node, body, remote.sign(f"{node.url}/inbox", body))
    assert status == 202
    assert node.app is not None
    fed = node.app[FEDERATION]
    mallory = fed.actors.actor_by_uri(remote.actor_id("mallory"))
    alice = fed.users.by_name("alice")
    assert mallory is not None and alice is not None
    fed.follows.put(alice.id, mallory.user_id, "accepted", 0.0)  # alice reads mallory
    return Announcer(node, remote)


async def test_fractional_second_after_whole_second_is_newer(
    node_factory: NodeFactory, remote: FakeRemote
) -> None:
    a = await announcer(node_factory, remote)
    await a.send("whole second", "2026-05-01T10:00:00Z")
    await a.send("half a second later", "2026-05-01T10:00:00.500Z")
    assert a.stored_name() == "half a second later"  # as text "…00.500Z" < "…00Z"


async def test_older_whole_second_does_not_overwrite_newer_fraction(
    node_factory: NodeFactory, remote: FakeRemote
) -> None:
    a = await announcer(node_factory, remote)
    await a.send("newer", "2026-05-01T10:00:00.500Z")
    await a.send("older, late", "2026-05-01T10:00:00Z")  # as text "…00Z" > "…00.500Z"
    assert a.stored_name() == "newer"


async def test_time_zones_are_compared_as_instants(
    node_factory: NodeFactory, remote: FakeRemote
) -> None:
    a = await announcer(node_factory, remote)
    await a.send("at 10:00 UTC", "2026-05-01T10:00:00Z")
    # 11:30+02:00 is 09:30 UTC: older, although its text sorts after
    await a.send("at 09:30 UTC", "2026-05-01T11:30:00+02:00")
    assert a.stored_name() == "at 10:00 UTC"
    # 06:00-05:00 is 11:00 UTC: newer, although its text sorts before
    await a.send("at 11:00 UTC", "2026-05-01T06:00:00-05:00")
    assert a.stored_name() == "at 11:00 UTC"
    # the same instant written another way replaces it (equal is not stale)
    await a.send("same instant", "2026-05-01t11:00:00.000z")
    assert a.stored_name() == "same instant"


async def test_a_version_with_a_bad_timestamp_is_refused(
    node_factory: NodeFactory, remote: FakeRemote
) -> None:
    a = await announcer(node_factory, remote)
    await a.send("good", "2026-05-01T10:00:00Z")
    event_time = datetime(2026, 5, 1, 10, tzinfo=timezone(timedelta(hours=1)))
    body = json.dumps(
        {
            "id": f"{remote.base}/activities/bad",
            "type": "Update",
            "actor": remote.actor_id("mallory"),
            "object": {
                "id": a.room,
                "type": "Event",
                "name": "bad",
                "attributedTo": remote.actor_id("mallory"),
                "updated": event_time.replace(tzinfo=None).isoformat(),  # no offset
                "status": "live",
            },
        }
    ).encode()
    status, answer = await post(a.node, body, remote.sign(a.node.url + "/inbox", body))
    assert status == 400, answer
    assert "Event.updated is not an RFC 3339 date-time" in json.dumps(answer)
    assert a.stored_name() == "good"
