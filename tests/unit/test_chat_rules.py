"""The chat's pure rules (node/rooms/chat.py) and its wire types (node/rooms/protocol.py)."""

from __future__ import annotations

from typing import Any

import pytest

from node.errors import DomainError
from node.rooms import protocol
from node.rooms.chat import (
    CHAT_HIDDEN,
    CHAT_OFF,
    CHAT_SPEAKERS,
    NO_MESSAGE,
    NOT_IN_ROOM,
    REACTIONS,
    Chat,
    ChatMessage,
    ChatMode,
    check_chat_text,
    check_reaction,
)
from node.rooms.model import JoinMode, Participant, Role, Room, RoomRuleError, RoomStatus
from node.rooms.protocol import ProtocolError

HOST, MOD, SPEAKER, LISTENER, OUTSIDER = 1, 2, 3, 4, 5


def room() -> Room:
    r = Room("r", HOST, "T", "", JoinMode.OPEN, RoomStatus.LIVE, "tok", 0.0, started_at=0.0)
    for uid, role in ((HOST, Role.HOST), (MOD, Role.MODERATOR), (SPEAKER, Role.SPEAKER)):
        r.participants[uid] = Participant(uid, role, 0.0, stage_since=0.0)
    r.participants[LISTENER] = Participant(LISTENER, Role.LISTENER, 0.0)
    r.moderators.add(MOD)
    return r


def msg(mid: str, user: int, text: str = "hi") -> ChatMessage:
    return ChatMessage(mid, user, text, 1.0)


def refused(code: str, message: str, fn: Any, *args: Any) -> None:
    with pytest.raises(RoomRuleError) as err:
        fn(*args)
    assert (err.value.code, err.value.message) == (code, message)


def test_text_is_normalized_trimmed_and_bounded() -> None:
    assert check_chat_text("  cafe\u0301 \n", 500) == "caf\u00e9"  # NFC, then trimmed
    assert check_chat_text("two\nlines\tok", 500) == "two\nlines\tok"
    assert check_chat_text("x" * 500, 500) == "x" * 500
    cases = [
        ("x" * 501, "chat messages are at most 500 characters"),
        ("   \n ", "chat messages cannot be empty"),
        ("", "chat messages cannot be empty"),
        ("a\x00b", "chat text must not contain control characters"),
        ("a\x1bb", "chat text must not contain control characters"),
        ("\ud800", "chat text is not valid Unicode"),
        ("abc\u202edcba", "chat text must not contain bidirectional controls"),
        ("\u2066x\u2069", "chat text must not contain bidirectional controls"),
        (42, "chat text must be a string"),
    ]
    for raw, message in cases:
        with pytest.raises(DomainError) as err:
            check_chat_text(raw, 500)
        assert (err.value.code, err.value.message) == ("invalid", message), raw
    # trimming and NFC come before the length check: 500 letters in spaces are fine
    assert check_chat_text("  " + "e\u0301" * 500 + "  ", 500) == "\u00e9" * 500
    # joiners inside emoji stay (they are format characters, not controls)
    assert check_chat_text("\U0001f469\u200d\U0001f4bb", 500) == "\U0001f469\u200d\U0001f4bb"


def test_reaction_set_is_fixed() -> None:
    assert set(REACTIONS) == {"clap", "laugh", "heart", "plus_one", "fire", "hundred"}
    assert [REACTIONS[k] for k in ("clap", "laugh", "heart", "plus_one")] == [
        "Clap",
        "Laugh",
        "Heart",
        "Plus one",
    ]
    assert check_reaction("clap") == "clap"
    for bad in ("Clap", "boom", "", None, 1):
        with pytest.raises(DomainError) as err:
            check_reaction(bad)
        assert err.value.message == "reaction must be one of " + ", ".join(REACTIONS)


def test_who_may_post_in_each_mode() -> None:
    r, chat = room(), Chat(history=100)
    for uid in (HOST, MOD, SPEAKER, LISTENER):
        chat.check_post(r, uid)
    refused("forbidden", NOT_IN_ROOM, chat.check_post, r, OUTSIDER)
    refused("forbidden", "only moderators can do that", chat.set_mode, r, SPEAKER, ChatMode.OFF)
    refused("forbidden", NOT_IN_ROOM, chat.set_mode, r, OUTSIDER, ChatMode.OFF)
    assert chat.set_mode(r, MOD, ChatMode.SPEAKERS) is True
    assert chat.set_mode(r, HOST, ChatMode.SPEAKERS) is False  # no change, no event
    for uid in (HOST, MOD, SPEAKER):
        chat.check_post(r, uid)
    refused("forbidden", CHAT_SPEAKERS, chat.check_post, r, LISTENER)
    chat.set_mode(r, HOST, ChatMode.OFF)
    for uid in (HOST, MOD, SPEAKER, LISTENER):  # off is off for everyone
        refused("forbidden", CHAT_OFF, chat.check_post, r, uid)
    chat.check_react(r, LISTENER)  # reactions do not follow the chat mode
    refused("forbidden", NOT_IN_ROOM, chat.check_react, r, OUTSIDER)
    r.status = RoomStatus.ENDED
    refused("conflict", "the room is ended", chat.check_post, r, HOST)


def test_history_is_bounded_and_refused_posts_change_nothing() -> None:
    r, chat = room(), Chat(history=3)
    for i in range(5):
        chat.post(r, msg(f"m{i}", LISTENER))
    assert [m.id for m in chat.messages] == ["m2", "m3", "m4"]
    chat.set_mode(r, HOST, ChatMode.OFF)
    refused("forbidden", CHAT_OFF, chat.post, r, msg("m5", LISTENER))
    assert [m.id for m in chat.messages] == ["m2", "m3", "m4"]


def test_delete_by_author_or_moderator_only() -> None:
    r, chat = room(), Chat(history=10)
    chat.post(r, msg("a", LISTENER))
    chat.post(r, msg("b", SPEAKER))
    refused(
        "forbidden", "only its author or a moderator can delete it", chat.delete, r, LISTENER, "b"
    )
    assert chat.delete(r, LISTENER, "a") == ["a"]
    refused("not_found", NO_MESSAGE, chat.delete, r, LISTENER, "a")  # a replayed delete
    refused("forbidden", NOT_IN_ROOM, chat.delete, r, OUTSIDER, "b")
    assert chat.delete(r, MOD, "b") == ["b"]
    assert not chat.messages


def test_hide_user_removes_their_messages_and_silences_them() -> None:
    r, chat = room(), Chat(history=10)
    chat.post(r, msg("a", LISTENER))
    chat.post(r, msg("b", SPEAKER))
    chat.post(r, msg("c", LISTENER))
    refused("forbidden", "only moderators can do that", chat.hide_user, r, SPEAKER, LISTENER)
    refused("forbidden", "moderators' messages cannot be hidden", chat.hide_user, r, MOD, HOST)
    refused("invalid", "you cannot hide your own messages", chat.hide_user, r, MOD, MOD)
    del r.participants[LISTENER]  # removed first: hiding still works
    assert chat.hide_user(r, MOD, LISTENER) == ["a", "c"]
    assert [m.id for m in chat.messages] == ["b"]
    r.participants[LISTENER] = Participant(LISTENER, Role.LISTENER, 2.0)
    refused("forbidden", CHAT_HIDDEN, chat.check_post, r, LISTENER)
    assert chat.hide_user(r, MOD, LISTENER) == []


def test_client_chat_messages_round_trip() -> None:
    for message in (
        protocol.Chat(1, "hello"),
        protocol.React("x", "clap"),
        protocol.DeleteMessage(None, "abc"),
    ):
        assert protocol.parse_client(message.serialize()) == message
    trunk = protocol.TrunkChat("https://b/users/bob", protocol.Chat(7, "hi"))
    wire = trunk.serialize()
    assert wire == {"type": "chat", "id": 7, "text": "hi", "actor": "https://b/users/bob"}
    assert protocol.parse_trunk_request(wire) == trunk and trunk.id == 7
    react = protocol.TrunkChat("https://b/users/bob", protocol.React(8, "heart"))
    assert protocol.parse_trunk_request(react.serialize()) == react
    gone = protocol.TrunkChat("https://b/users/bob", protocol.DeleteMessage(9, "m"))
    assert protocol.parse_trunk_request(gone.serialize()) == gone


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "chat", "id": 1}, "chat needs a 'text' string"),
        ({"type": "chat", "text": ["x"]}, "chat needs a 'text' string"),
        ({"type": "chat", "text": "x" * 4097}, "chat text is at most 4096 characters"),
        ({"type": "react"}, "react needs a 'reaction' name"),
        ({"type": "react", "reaction": "x" * 65}, "react needs a 'reaction' name"),
        ({"type": "delete_message"}, "delete_message needs a 'message' id string"),
        ({"type": "delete_message", "message": ""}, "delete_message needs a 'message' id string"),
        ({"type": "delete_message", "message": 3}, "delete_message needs a 'message' id string"),
        ({"type": "chat", "text": "x", "id": True}, "id must be an integer or a string"),
    ],
)
def test_client_chat_errors_are_exact(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError) as err:
        protocol.parse_client(data)
    assert err.value.message == message


def test_trunk_chat_needs_an_actor() -> None:
    with pytest.raises(ProtocolError) as err:
        protocol.parse_trunk_request({"type": "chat", "id": 1, "text": "hi"})
    assert err.value.message == "actor must be a string"
    with pytest.raises(ProtocolError) as err:
        protocol.parse_trunk_request({"type": "react", "actor": "https://b/users/x"})
    assert err.value.message == "react needs a 'reaction' name"
