"""AS2 wire types: exact round-trips, what real servers send, exact error messages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from federation import keys
from federation.activities import (
    ACTIVITY_CLASSES,
    Accept,
    Actor,
    ActorPublicKey,
    Create,
    Delete,
    Follow,
    Join,
    Leave,
    Multikey,
    Reject,
    Undo,
    UnsupportedActivity,
    Update,
    parse_activity,
)
from federation.as2 import (
    ACTIVITY_TYPES,
    ACTOR_CONTEXT,
    AS_CONTEXT,
    EVENT_CONTEXT,
    PUBLIC,
    ActivityError,
    Reference,
    host_of,
    same_host,
)
from federation.events import Event

A = "https://a.example"
ALICE = f"{A}/users/alice"
BOB = "https://b.example:8443/users/bob"
PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n"
    "-----END PUBLIC KEY-----\n"
)
MULTIBASE = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"

ALICE_DOCUMENT: dict[str, Any] = {
    "@context": ACTOR_CONTEXT,
    "id": ALICE,
    "type": "Person",
    "preferredUsername": "alice",
    "name": "Alice",
    "summary": "Talks about radio.",
    "url": f"{A}/@alice",
    "inbox": f"{ALICE}/inbox",
    "outbox": f"{ALICE}/outbox",
    "followers": f"{ALICE}/followers",
    "following": f"{ALICE}/following",
    "endpoints": {"sharedInbox": f"{A}/inbox"},
    "manuallyApprovesFollowers": False,
    "publicKey": {"id": f"{ALICE}#main-key", "owner": ALICE, "publicKeyPem": PEM},
    "assertionMethod": [
        {
            "id": f"{ALICE}#ed25519-key",
            "type": "Multikey",
            "controller": ALICE,
            "publicKeyMultibase": MULTIBASE,
        }
    ],
}

ROOM = f"{A}/rooms/42"
ROOM_DOCUMENT: dict[str, Any] = {
    "id": ROOM,
    "type": "Event",
    "name": "Friday radio hour",
    "attributedTo": ALICE,
    "summary": "Open mic.",
    "url": ROOM,
    "startTime": "2024-05-03T18:00:00Z",
    "endTime": "2024-05-03T19:00:00Z",
    "updated": "2024-05-03T18:05:00Z",
    "to": [PUBLIC],
    "cc": [f"{ALICE}/followers"],
    "status": "live",
    "joinMode": "social",
    "speakers": [ALICE, BOB],
    "listenerCount": 17,
    "relay": f"{ROOM}/relay",
}


def error(message: str) -> Any:
    return pytest.raises(ActivityError, match=f"^{re.escape(message)}$")


def test_actor_exact_round_trip() -> None:
    actor = Actor.parse(ALICE_DOCUMENT)
    assert actor == Actor(
        id=ALICE,
        inbox=f"{ALICE}/inbox",
        outbox=f"{ALICE}/outbox",
        followers=f"{ALICE}/followers",
        following=f"{ALICE}/following",
        shared_inbox=f"{A}/inbox",
        preferred_username="alice",
        name="Alice",
        summary="Talks about radio.",
        url=f"{A}/@alice",
        public_keys=(ActorPublicKey(f"{ALICE}#main-key", ALICE, PEM),),
        assertion_methods=(Multikey(f"{ALICE}#ed25519-key", ALICE, MULTIBASE),),
    )
    assert actor.serialize() == ALICE_DOCUMENT
    assert actor.delivery_inbox == f"{A}/inbox"


def test_application_actor_and_keys_from_actor_keys() -> None:
    material = keys.ActorKeys.generate()
    node = Actor(
        id=f"{A}/actor",
        type="Application",
        inbox=f"{A}/actor/inbox",
        preferred_username="a.example",
        public_keys=(ActorPublicKey(f"{A}/actor#main-key", f"{A}/actor", material.rsa_public_pem),),
        assertion_methods=(
            Multikey(f"{A}/actor#ed25519-key", f"{A}/actor", material.ed25519_public_multibase),
        ),
    )
    assert Actor.parse(node.serialize()) == node
    assert node.delivery_inbox == f"{A}/actor/inbox"
    assert node.verification_key(f"{A}/actor#main-key") == material.rsa_private_key.public_key()
    assert node.verification_key(f"{A}/actor#ed25519-key") == (
        material.ed25519_private_key.public_key()
    )


def test_verification_key_requires_listing_and_ownership() -> None:
    actor = Actor.parse(ALICE_DOCUMENT)
    assert actor.verification_key(f"{ALICE}#main-key") is not None
    assert actor.verification_key(f"{ALICE}#other") is None
    stolen = {**ALICE_DOCUMENT, "publicKey": {**ALICE_DOCUMENT["publicKey"], "owner": BOB}}
    assert Actor.parse(stolen).verification_key(f"{ALICE}#main-key") is None
    broken = {**ALICE_DOCUMENT, "publicKey": {**ALICE_DOCUMENT["publicKey"], "publicKeyPem": "x"}}
    with pytest.raises(
        ActivityError,
        match=r"^Person key https://a\.example/users/alice#main-key: invalid public key PEM",
    ):
        Actor.parse(broken).verification_key(f"{ALICE}#main-key")


def test_mastodon_shaped_actor_parses() -> None:
    mastodon = {
        "@context": [
            AS_CONTEXT,
            "https://w3id.org/security/v1",
            {"toot": "http://joinmastodon.org/ns#", "featured": {"@id": "toot:featured"}},
        ],
        "id": "https://mastodon.example/users/carol",
        "type": "Person",
        "following": "https://mastodon.example/users/carol/following",
        "followers": "https://mastodon.example/users/carol/followers",
        "inbox": "https://mastodon.example/users/carol/inbox",
        "outbox": "https://mastodon.example/users/carol/outbox",
        "featured": "https://mastodon.example/users/carol/collections/featured",
        "preferredUsername": "carol",
        "name": "",
        "summary": "<p>hi</p>",
        "url": "https://mastodon.example/@carol",
        "manuallyApprovesFollowers": True,
        "discoverable": True,
        "published": "2023-01-01T00:00:00Z",
        "publicKey": {
            "id": "https://mastodon.example/users/carol#main-key",
            "owner": "https://mastodon.example/users/carol",
            "publicKeyPem": PEM,
        },
        "tag": [],
        "attachment": [],
        "endpoints": {"sharedInbox": "https://mastodon.example/inbox"},
        "icon": {"type": "Image", "mediaType": "image/png", "url": "https://files.example/a.png"},
    }
    actor = Actor.parse(mastodon)
    assert actor.manually_approves_followers is True
    assert actor.assertion_methods == ()
    assert actor.delivery_inbox == "https://mastodon.example/inbox"
    assert actor.verification_key("https://mastodon.example/users/carol#main-key") is not None


def test_actor_optional_shapes() -> None:
    minimal = Actor.parse(
        {
            "id": BOB,
            "type": ["Service"],
            "inbox": f"{BOB}/inbox",
            "url": [{"type": "Link", "href": f"{BOB}/profile"}],
            "publicKey": [
                {"id": f"{BOB}#a", "owner": BOB, "publicKeyPem": PEM},
                {"id": f"{BOB}#b", "owner": {"id": BOB}, "publicKeyPem": PEM},
            ],
            "assertionMethod": [f"{BOB}#ref-only"],
        }
    )
    assert minimal.type == "Service"
    assert minimal.url == f"{BOB}/profile"
    assert [key.id for key in minimal.public_keys] == [f"{BOB}#a", f"{BOB}#b"]
    assert isinstance(minimal.serialize()["publicKey"], list)
    assert minimal.delivery_inbox == f"{BOB}/inbox"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"type": "Note"},
            "Actor.type must be Application or Group or Organization or Person or Service,"
            " got 'Note'",
        ),
        ({"type": None}, "Actor.type is required"),
        ({"id": None}, "Person.id is required"),
        ({"inbox": "/inbox"}, "Person.inbox must be an absolute http(s) URI, got '/inbox'"),
        ({"outbox": 7}, "Person.outbox must be a string"),
        ({"name": ["x"]}, "Person.name must be a string"),
        ({"manuallyApprovesFollowers": "no"}, "Person.manuallyApprovesFollowers must be a boolean"),
        (
            {"endpoints": {"sharedInbox": "ftp://x"}},
            "Person.endpoints.sharedInbox must be an absolute http(s) URI, got 'ftp://x'",
        ),
        ({"publicKey": {"id": f"{ALICE}#k", "owner": ALICE}}, "publicKey.publicKeyPem is required"),
        ({"publicKey": "x"}, "publicKey must be a JSON object"),
        (
            {"assertionMethod": [{"type": "Multikey", "id": f"{ALICE}#k", "controller": ALICE}]},
            "Multikey.publicKeyMultibase is required",
        ),
    ],
)
def test_actor_errors(change: dict[str, Any], message: str) -> None:
    with error(message):
        Actor.parse({**ALICE_DOCUMENT, **change})


def test_event_exact_round_trip_and_context() -> None:
    event = Event.parse(ROOM_DOCUMENT)
    assert event == Event(
        id=ROOM,
        name="Friday radio hour",
        attributed_to=ALICE,
        summary="Open mic.",
        url=ROOM,
        start_time=datetime(2024, 5, 3, 18, tzinfo=UTC),
        end_time=datetime(2024, 5, 3, 19, tzinfo=UTC),
        updated=datetime(2024, 5, 3, 18, 5, tzinfo=UTC),
        status="live",
        join_mode="social",
        speakers=(ALICE, BOB),
        listener_count=17,
        relay=f"{ROOM}/relay",
        to=(PUBLIC,),
        cc=(f"{ALICE}/followers",),
    )
    assert event.is_salon_room
    assert event.serialize() == {"@context": EVENT_CONTEXT, **ROOM_DOCUMENT}
    assert event.serialize(context=False) == ROOM_DOCUMENT


def test_event_time_zones_are_normalised_to_utc() -> None:
    event = Event.parse({**ROOM_DOCUMENT, "startTime": "2024-05-03T20:00:00+02:00"})
    assert event.serialize(context=False)["startTime"] == "2024-05-03T18:00:00Z"


def test_non_salon_event_ignores_colliding_terms() -> None:
    mobilizon = {
        "id": "https://mobilizon.example/events/1",
        "type": "Event",
        "name": "Meetup",
        "attributedTo": ["https://mobilizon.example/@group", "https://mobilizon.example/@me"],
        "joinMode": "free",
        "startTime": "2024-05-03T18:00:00Z",
    }
    event = Event.parse(mobilizon)
    assert not event.is_salon_room
    assert (event.join_mode, event.attributed_to) == (None, "https://mobilizon.example/@group")
    assert "joinMode" not in event.serialize(context=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "Note"}, "Event.type must be Event, got 'Note'"),
        ({"name": None}, "Event.name is required"),
        ({"attributedTo": None}, "Event.attributedTo is required"),
        ({"attributedTo": []}, "Event.attributedTo is required"),
        ({"attributedTo": {"type": "Person"}}, "Event.attributedTo.id is required"),
        ({"status": "paused"}, "Event.status must be one of scheduled, live, ended"),
        ({"joinMode": "free"}, "Event.joinMode must be one of open, social, closed"),
        ({"listenerCount": -1}, "Event.listenerCount must be a non-negative integer"),
        ({"listenerCount": True}, "Event.listenerCount must be a non-negative integer"),
        ({"speakers": [7]}, "Event.speakers must be a string"),
        (
            {"relay": "wss://a.example/relay"},
            "Event.relay must be an absolute http(s) URI, got 'wss://a.example/relay'",
        ),
        ({"startTime": "tomorrow"}, "Event.startTime is not an RFC 3339 date-time: 'tomorrow'"),
        (
            {"startTime": "2024-05-03T18:00:00"},
            "Event.startTime is not an RFC 3339 date-time: '2024-05-03T18:00:00'",
        ),
        ({"startTime": 1714759200}, "Event.startTime must be a string"),
    ],
)
def test_event_errors(change: dict[str, Any], message: str) -> None:
    with error(message):
        Event.parse({**ROOM_DOCUMENT, **change})


FOLLOW = Follow(id="https://b.example:8443/follows/1", actor=BOB, object=ALICE)
FOLLOW_DOCUMENT = {
    "@context": AS_CONTEXT,
    "id": "https://b.example:8443/follows/1",
    "type": "Follow",
    "actor": BOB,
    "object": ALICE,
}


def test_follow_accept_reject_undo_exact_documents() -> None:
    assert FOLLOW.serialize() == FOLLOW_DOCUMENT
    accept = Accept(id=f"{A}/accepts/1", actor=ALICE, object=FOLLOW, to=(BOB,))
    embedded = {key: value for key, value in FOLLOW_DOCUMENT.items() if key != "@context"}
    assert accept.serialize() == {
        "@context": AS_CONTEXT,
        "id": f"{A}/accepts/1",
        "type": "Accept",
        "actor": ALICE,
        "object": embedded,
        "to": [BOB],
    }
    reject = Reject(id=f"{A}/rejects/1", actor=ALICE, object=Reference(FOLLOW.id))
    assert reject.serialize()["object"] == FOLLOW.id
    undo = Undo(id=f"{FOLLOW.id}/undo", actor=BOB, object=FOLLOW)
    for activity in (FOLLOW, accept, reject, undo):
        assert parse_activity(activity.serialize()) == activity
        assert type(activity).parse(activity.serialize()) == activity


def test_mastodon_accept_with_embedded_follow_and_object_as_dict() -> None:
    accept = parse_activity(
        {
            "@context": AS_CONTEXT,
            "id": "https://mastodon.example/users/carol#accepts/follows/9",
            "type": "Accept",
            "actor": "https://mastodon.example/users/carol",
            "object": {
                "id": f"{A}/follows/9",
                "type": "Follow",
                "actor": {"id": ALICE, "type": "Person"},
                "object": "https://mastodon.example/users/carol",
            },
        }
    )
    assert isinstance(accept, Accept)
    assert isinstance(accept.object, Follow)
    assert accept.object.actor == ALICE


def test_addressing_as_string_list_and_public_aliases() -> None:
    data = {**FOLLOW_DOCUMENT, "to": "as:Public", "cc": ["Public", f"{ALICE}/followers"]}
    follow = Follow.parse(data)
    assert follow.to == (PUBLIC,)
    assert follow.cc == (PUBLIC, f"{ALICE}/followers")
    assert follow.serialize()["to"] == [PUBLIC]


def test_room_announcements_and_join_leave() -> None:
    event = Event.parse(ROOM_DOCUMENT)
    create = Create(id=f"{ROOM}/activities/1", actor=ALICE, object=event, to=(PUBLIC,))
    document = create.serialize()
    assert document["@context"] == EVENT_CONTEXT
    assert document["object"] == ROOM_DOCUMENT
    assert parse_activity(document) == create
    update = Update(id=f"{ROOM}/activities/2", actor=ALICE, object=event)
    assert parse_activity(update.serialize()) == update
    profile = Update(id=f"{ALICE}#updates/1", actor=ALICE, object=Actor.parse(ALICE_DOCUMENT))
    assert profile.serialize()["@context"] == ACTOR_CONTEXT
    assert parse_activity(profile.serialize()) == profile
    join = Join(id=f"{BOB}/joins/1", actor=BOB, object=ROOM, to=(ALICE,))
    leave = Leave(id=f"{BOB}/leaves/1", actor=BOB, object=ROOM)
    assert join.serialize() == {
        "@context": AS_CONTEXT,
        "id": f"{BOB}/joins/1",
        "type": "Join",
        "actor": BOB,
        "object": ROOM,
        "to": [ALICE],
    }
    assert Join.parse({**join.serialize(), "object": ROOM_DOCUMENT}) == join
    assert parse_activity(leave.serialize()) == leave


def test_unmodelled_objects_become_references() -> None:
    note = {"id": f"{A}/notes/1", "type": "Note", "content": "hi"}
    create = parse_activity({**FOLLOW_DOCUMENT, "type": "Create", "object": note})
    assert isinstance(create, Create)
    assert create.object == Reference(f"{A}/notes/1", "Note")
    undo_like = parse_activity(
        {**FOLLOW_DOCUMENT, "type": "Undo", "object": {"id": f"{A}/likes/1", "type": "Like"}}
    )
    assert undo_like.object == Reference(f"{A}/likes/1", "Like")
    tombstone = {"id": ROOM, "type": "Tombstone"}
    delete = parse_activity({**FOLLOW_DOCUMENT, "type": "Delete", "object": tombstone})
    assert delete == Delete(id=FOLLOW.id, actor=BOB, object=Reference(ROOM, "Tombstone"))
    assert delete.serialize()["object"] == tombstone
    account = parse_activity({**FOLLOW_DOCUMENT, "type": "Delete", "actor": BOB, "object": BOB})
    assert account.object == Reference(BOB)


def test_unsupported_activity_type_is_distinguishable() -> None:
    with pytest.raises(UnsupportedActivity) as info:
        parse_activity({**FOLLOW_DOCUMENT, "type": "Like"})
    assert info.value.activity_type == "Like"
    assert str(info.value) == "unsupported activity type: 'Like'"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "activity must be a JSON object"),
        ({"id": FOLLOW.id}, "activity.type is required"),
        ({**FOLLOW_DOCUMENT, "id": None}, "Follow.id is required"),
        (
            {**FOLLOW_DOCUMENT, "id": "urn:uuid:1"},
            "Follow.id must be an absolute http(s) URI, got 'urn:uuid:1'",
        ),
        ({**FOLLOW_DOCUMENT, "actor": None}, "Follow.actor is required"),
        ({**FOLLOW_DOCUMENT, "actor": {"type": "Person"}}, "Follow.actor.id is required"),
        ({**FOLLOW_DOCUMENT, "object": None}, "Follow.object is required"),
        ({**FOLLOW_DOCUMENT, "object": 5}, "Follow.object must be a string"),
        ({**FOLLOW_DOCUMENT, "to": [5]}, "Follow.to must be a string"),
        (
            {**FOLLOW_DOCUMENT, "type": "Accept", "object": {"type": "Follow", "id": FOLLOW.id}},
            "Follow.actor is required",
        ),
        (
            {**FOLLOW_DOCUMENT, "type": "Create", "object": {"type": "Event", "id": ROOM}},
            "Event.name is required",
        ),
    ],
)
def test_activity_errors(data: Any, message: str) -> None:
    with error(message):
        parse_activity(data)


def test_typed_parse_rejects_another_type() -> None:
    with error("Follow.type must be Follow, got 'Join'"):
        Follow.parse({**FOLLOW_DOCUMENT, "type": "Join"})


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("https://a.example/users/alice", "a.example"),
        ("HTTPS://A.Example:443/x", "a.example"),
        ("http://a.example:80/", "a.example"),
        ("http://127.0.0.1:8101/users/a", "127.0.0.1:8101"),
        ("https://a.example:80/", "a.example:80"),
        ("http://[::1]:8101/x", "[::1]:8101"),
        ("https://user@a.example/x", "a.example"),
    ],
)
def test_host_of(uri: str, host: str) -> None:
    assert host_of(uri) == host


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("acct:alice@a.example", "not an absolute http(s) URI: 'acct:alice@a.example'"),
        ("/users/alice", "not an absolute http(s) URI: '/users/alice'"),
        ("https://a.example:99999/", "invalid port in URI: 'https://a.example:99999/'"),
    ],
)
def test_host_of_errors(uri: str, message: str) -> None:
    with error(message):
        host_of(uri)


def test_same_host() -> None:
    assert same_host("https://a.example/users/alice", "https://A.EXAMPLE:443/rooms/1")
    assert not same_host("https://a.example/x", "https://a.example:8443/x")
    assert not same_host("https://a.example/x", "https://evil.example/a.example/x")
    assert not same_host("https://a.example/x", "not a uri")


def test_known_types_name_every_modelled_activity() -> None:
    # federation/as2.py reads an array ``type`` by this list; it must match the classes.
    assert set(ACTIVITY_CLASSES) == ACTIVITY_TYPES
