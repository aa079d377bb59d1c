"""Pure pieces of notifications and pings: the ``Invite`` wire type (exact round trip and
exact errors), cleaning of titles from elsewhere, and the client links of room URLs."""

from __future__ import annotations

from typing import Any

import pytest

from federation.as2 import ActivityError
from federation.flags import parse_inbound
from federation.invites import Invite
from node.notifications import clean, link_for

ALICE = "https://a.example/users/alice"
BOB = "https://b.example/users/bob"
ROOM = "https://a.example/rooms/R1"


def wire(**fields: Any) -> dict[str, Any]:
    data = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://a.example/activities/1",
        "type": "Invite",
        "actor": ALICE,
        "object": ROOM,
        "target": BOB,
        "to": [BOB],
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_invite_round_trip_and_inbound_dispatch() -> None:
    data = wire()
    invite = Invite.parse(data)
    assert invite == Invite(
        id="https://a.example/activities/1", actor=ALICE, object=ROOM, target=BOB, to=(BOB,)
    )
    assert invite.serialize() == data
    assert parse_inbound(data) == invite


def test_invite_with_an_embedded_event_and_no_target() -> None:
    event = {"id": ROOM, "type": "Event", "name": "Talk", "attributedTo": ALICE, "status": "live"}
    invite = Invite.parse(wire(object=event, target=None))
    assert invite.object == ROOM and invite.target == BOB
    assert invite.event is not None and invite.event.name == "Talk"
    again = Invite.parse(invite.serialize())
    assert again == invite


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "Follow"}, "Invite.type must be 'Invite'"),
        ({"object": None}, "Invite.object must be one id"),
        ({"object": [ROOM, ROOM]}, "Invite.object must be one id"),
        ({"object": "ftp://a.example/x"}, "Invite.object must be an absolute http(s) URI"),
        ({"target": None, "to": [BOB, ALICE]}, "Invite.target must be one id"),
        ({"actor": 5}, "Invite.actor must be one id"),
        ({"id": "not a uri"}, "Invite.id must be an absolute http(s) URI"),
    ],
)
def test_invite_errors(fields: dict[str, Any], message: str) -> None:
    data = wire()
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ActivityError) as exc:
        Invite.parse(data)
    assert str(exc.value).startswith(message)


def test_clean_titles() -> None:
    assert clean("  a\u0000b\nc\u202ed  ", 200) == "a b c\u202ed"
    assert clean("x" * 500, 200) == "x" * 200
    assert clean("\ud800ok", 10) == "?ok"
    assert clean("e\u0301", 10) == "e\u0301"


def test_links() -> None:
    assert link_for("http://127.0.0.1:8101/rooms/abc", "127.0.0.1:8101") == "/rooms/abc"
    assert (
        link_for("https://a.example/rooms/abc", "b.example")
        == "/remote?url=https%3A%2F%2Fa.example%2Frooms%2Fabc"
    )
    assert link_for("https://b.example/users/x", "b.example").startswith("/remote?url=")
