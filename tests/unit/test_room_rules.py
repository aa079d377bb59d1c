"""Every room action against every role: what is allowed, and the exact refusal otherwise."""

from __future__ import annotations

import copy

import pytest

from node.rooms import model
from node.rooms.model import JoinMode, Role, Room, RoomRuleError, RoomStatus

HOST, MOD, SPEAKER, LISTENER, HANDUP, OUTSIDER, SPEAKER2 = 1, 2, 3, 4, 5, 6, 7
NAMES = {
    "host": HOST,
    "mod": MOD,
    "speaker": SPEAKER,
    "listener": LISTENER,
    "handup": HANDUP,
    "outsider": OUTSIDER,
    "speaker2": SPEAKER2,
}


def make_room(mode: JoinMode = JoinMode.OPEN) -> Room:
    room = Room(
        id="r1",
        host_id=HOST,
        title="t",
        description="",
        join_mode=mode,
        status=RoomStatus.LIVE,
        invite_token="secret-token",
        created_at=0.0,
        started_at=0.0,
    )
    room.moderators.add(MOD)
    for t, uid in enumerate((HOST, MOD, SPEAKER, SPEAKER2, LISTENER, HANDUP), start=1):
        model.join(room, uid, float(t), followed_by_moderator=True, invite_token="secret-token")
    for uid in (SPEAKER, SPEAKER2):
        model.invite_to_speak(room, HOST, uid)
        model.accept_invite(room, uid, 10.0 + uid)
    model.raise_hand(room, HANDUP, 20.0)
    return room


# (action, actor, target, expected): "ok" or the RoomRuleError code
MATRIX = [
    ("raise_hand", "listener", "listener", "ok"),
    ("raise_hand", "handup", "handup", "conflict"),
    ("raise_hand", "speaker", "speaker", "conflict"),
    ("raise_hand", "host", "host", "conflict"),
    ("raise_hand", "outsider", "outsider", "forbidden"),
    ("lower_hand", "handup", "handup", "ok"),
    ("lower_hand", "listener", "listener", "conflict"),
    ("lower_hand", "outsider", "outsider", "forbidden"),
    ("invite_to_speak", "host", "handup", "ok"),
    ("invite_to_speak", "mod", "listener", "ok"),
    ("invite_to_speak", "speaker", "handup", "forbidden"),
    ("invite_to_speak", "listener", "handup", "forbidden"),
    ("invite_to_speak", "outsider", "handup", "forbidden"),
    ("invite_to_speak", "host", "speaker", "conflict"),
    ("invite_to_speak", "host", "outsider", "not_found"),
    ("accept_invite", "listener", "listener", "conflict"),
    ("decline_invite", "listener", "listener", "conflict"),
    ("move_to_audience", "host", "speaker", "ok"),
    ("move_to_audience", "mod", "speaker", "ok"),
    ("move_to_audience", "speaker", "speaker", "ok"),
    ("move_to_audience", "speaker2", "speaker", "forbidden"),
    ("move_to_audience", "listener", "speaker", "forbidden"),
    ("move_to_audience", "outsider", "speaker", "forbidden"),
    ("move_to_audience", "mod", "host", "forbidden"),
    ("move_to_audience", "host", "mod", "forbidden"),
    ("move_to_audience", "host", "listener", "conflict"),
    ("mute", "host", "speaker", "ok"),
    ("mute", "mod", "speaker", "ok"),
    ("mute", "speaker", "speaker", "ok"),
    ("mute", "speaker2", "speaker", "forbidden"),
    ("mute", "listener", "speaker", "forbidden"),
    ("mute", "outsider", "speaker", "forbidden"),
    ("mute", "mod", "host", "forbidden"),
    ("mute", "host", "listener", "conflict"),
    ("unmute", "speaker", "speaker", "conflict"),
    ("unmute", "listener", "speaker", "forbidden"),
    ("remove", "host", "listener", "ok"),
    ("remove", "mod", "speaker", "ok"),
    ("remove", "host", "mod", "ok"),
    ("remove", "mod", "host", "forbidden"),
    ("remove", "speaker", "listener", "forbidden"),
    ("remove", "listener", "handup", "forbidden"),
    ("remove", "outsider", "listener", "forbidden"),
    ("remove", "host", "host", "invalid"),
    ("remove", "host", "outsider", "not_found"),
    ("make_moderator", "host", "speaker", "ok"),
    ("make_moderator", "mod", "listener", "ok"),
    ("make_moderator", "speaker", "speaker2", "forbidden"),
    ("make_moderator", "listener", "listener", "forbidden"),
    ("make_moderator", "host", "mod", "conflict"),
    ("unmake_moderator", "host", "mod", "ok"),
    ("unmake_moderator", "mod", "host", "forbidden"),
    ("unmake_moderator", "speaker", "mod", "forbidden"),
    ("unmake_moderator", "host", "speaker", "conflict"),
    ("unmake_moderator", "mod", "mod", "ok"),
    ("invite", "host", "outsider", "ok"),
    ("invite", "mod", "outsider", "ok"),
    ("invite", "speaker", "outsider", "forbidden"),
    ("invite", "listener", "outsider", "forbidden"),
    ("end", "host", "host", "ok"),
    ("end", "mod", "mod", "ok"),
    ("end", "speaker", "speaker", "forbidden"),
    ("end", "listener", "listener", "forbidden"),
    ("end", "outsider", "outsider", "forbidden"),
    ("leave", "listener", "listener", "ok"),
    ("leave", "outsider", "outsider", "forbidden"),
]


def run(room: Room, action: str, actor: int, target: int) -> list[model.RoomEvent]:
    now = 100.0
    calls = {
        "raise_hand": lambda: model.raise_hand(room, actor, now),
        "lower_hand": lambda: model.lower_hand(room, actor),
        "invite_to_speak": lambda: model.invite_to_speak(room, actor, target),
        "accept_invite": lambda: model.accept_invite(room, actor, now),
        "decline_invite": lambda: model.decline_invite(room, actor),
        "move_to_audience": lambda: model.move_to_audience(room, actor, target, now),
        "mute": lambda: model.mute(room, actor, target),
        "unmute": lambda: model.unmute(room, actor, target),
        "remove": lambda: model.remove(room, actor, target, now),
        "make_moderator": lambda: model.make_moderator(room, actor, target, now),
        "unmake_moderator": lambda: model.unmake_moderator(room, actor, target, now),
        "invite": lambda: model.invite_user(room, actor, target),
        "end": lambda: model.end(room, actor, now),
        "leave": lambda: model.leave(room, actor, now),
    }
    return calls[action]()


@pytest.mark.parametrize(("action", "actor", "target", "expected"), MATRIX)
def test_role_action_matrix(action: str, actor: str, target: str, expected: str) -> None:
    room = make_room()
    before = copy.deepcopy(room)
    if expected == "ok":
        events = run(room, action, NAMES[actor], NAMES[target])
        assert events, "an allowed action must produce at least one event"
    else:
        with pytest.raises(RoomRuleError) as err:
            run(room, action, NAMES[actor], NAMES[target])
        assert err.value.code == expected, err.value.message
        assert room == before, "a refused action must not change the room"


def test_invite_accept_puts_listener_on_stage_and_clears_hand() -> None:
    room = make_room()
    model.invite_to_speak(room, MOD, HANDUP)
    events = model.accept_invite(room, HANDUP, 50.0)
    p = room.participants[HANDUP]
    assert (p.role, p.hand_raised_at, p.invited_to_speak, p.can_speak) == (
        Role.SPEAKER,
        None,
        False,
        True,
    )
    assert events == [model.RoomEvent("role_changed", {"user": HANDUP, "role": "speaker"})]


def test_decline_keeps_listener_in_audience() -> None:
    room = make_room()
    model.invite_to_speak(room, HOST, LISTENER)
    assert model.decline_invite(room, LISTENER)[0].kind == "invite_declined"
    assert room.participants[LISTENER].role is Role.LISTENER
    assert not room.participants[LISTENER].invited_to_speak


def test_moderator_mute_is_locked_until_a_moderator_unlocks() -> None:
    room = make_room()
    model.mute(room, MOD, SPEAKER)
    with pytest.raises(RoomRuleError, match="a moderator muted you"):
        model.unmute(room, SPEAKER, SPEAKER)
    events = model.unmute(room, HOST, SPEAKER)
    assert events[0].data == {"user": SPEAKER, "muted": True, "locked": False}
    model.unmute(room, SPEAKER, SPEAKER)
    assert room.participants[SPEAKER].can_speak


def test_self_mute_and_unmute() -> None:
    room = make_room()
    model.mute(room, SPEAKER, SPEAKER)
    assert not room.participants[SPEAKER].can_speak
    assert not room.participants[SPEAKER].mute_locked
    model.unmute(room, SPEAKER, SPEAKER)
    assert room.participants[SPEAKER].can_speak


def test_removed_user_cannot_rejoin() -> None:
    room = make_room()
    model.remove(room, HOST, LISTENER, 50.0)
    with pytest.raises(RoomRuleError, match="removed from this room"):
        model.join(room, LISTENER, 60.0)


def test_hands_queue_in_raising_order() -> None:
    room = make_room()
    model.raise_hand(room, LISTENER, 30.0)
    assert [p.user_id for p in room.hands()] == [HANDUP, LISTENER]
    model.lower_hand(room, HANDUP)
    assert [p.user_id for p in room.hands()] == [LISTENER]


def test_moderation_passes_to_longest_present_speaker() -> None:
    room = make_room()
    model.leave(room, MOD, 40.0)
    events = model.leave(room, HOST, 41.0)
    assert events[-1] == model.RoomEvent("role_changed", {"user": SPEAKER, "role": "moderator"})
    assert room.participants[SPEAKER].role is Role.MODERATOR
    assert SPEAKER in room.moderators


def test_appointed_moderator_keeps_role_on_rejoin_but_speaker_does_not() -> None:
    room = make_room()
    model.leave(room, MOD, 40.0)
    model.leave(room, SPEAKER, 41.0)
    model.join(room, MOD, 42.0)
    model.join(room, SPEAKER, 43.0)
    assert room.participants[MOD].role is Role.MODERATOR
    assert room.participants[SPEAKER].role is Role.LISTENER


def test_empty_stage_needs_grace() -> None:
    room = make_room()
    assert not room.needs_grace()
    for uid in (HOST, MOD, SPEAKER, SPEAKER2):
        if uid in room.participants:
            model.leave(room, uid, 50.0)
    # the last speaker inherited moderation, then left: only listeners remain
    assert room.needs_grace()


@pytest.mark.parametrize(
    ("mode", "followed", "token", "invited", "ok"),
    [
        (JoinMode.OPEN, False, None, False, True),
        (JoinMode.SOCIAL, True, None, False, True),
        (JoinMode.SOCIAL, False, None, False, False),
        (JoinMode.CLOSED, False, None, False, False),
        (JoinMode.CLOSED, False, "wrong", False, False),
        (JoinMode.CLOSED, False, "secret-token", False, True),
        (JoinMode.CLOSED, False, None, True, True),
    ],
)
def test_join_modes(
    mode: JoinMode, followed: bool, token: str | None, invited: bool, ok: bool
) -> None:
    room = make_room(mode)
    if invited:
        model.invite_user(room, HOST, OUTSIDER)
    if ok:
        assert (
            model.join(room, OUTSIDER, 60.0, followed_by_moderator=followed, invite_token=token)[
                0
            ].kind
            == "joined"
        )
    else:
        with pytest.raises(RoomRuleError) as err:
            model.join(room, OUTSIDER, 60.0, followed_by_moderator=followed, invite_token=token)
        assert err.value.code == "forbidden"
        assert OUTSIDER not in room.participants


def test_scheduled_room_refuses_join_until_started() -> None:
    room = make_room()
    room.status = RoomStatus.SCHEDULED
    room.participants.clear()
    with pytest.raises(RoomRuleError, match="not started"):
        model.join(room, OUTSIDER, 1.0)
    with pytest.raises(RoomRuleError, match="only the host and moderators"):
        model.start(room, OUTSIDER, 2.0)
    model.start(room, HOST, 3.0)
    assert room.status is RoomStatus.LIVE
    assert model.join(room, OUTSIDER, 4.0)


def test_ended_room_refuses_everything() -> None:
    room = make_room()
    model.end(room, HOST, 5.0)
    assert room.participants == {}
    with pytest.raises(RoomRuleError, match="ended"):
        model.join(room, OUTSIDER, 6.0)
    with pytest.raises(RoomRuleError, match="already ended"):
        model.end(room, HOST, 7.0)


def test_only_the_host_demotes_another_moderator() -> None:
    room = make_room()
    model.make_moderator(room, HOST, SPEAKER, 30.0)
    with pytest.raises(RoomRuleError, match="only the host can remove moderator rights"):
        model.unmake_moderator(room, MOD, SPEAKER, 31.0)
    model.unmake_moderator(room, HOST, SPEAKER, 32.0)
    assert room.participants[SPEAKER].role is Role.SPEAKER


def test_stepping_down_as_last_moderator_hands_over() -> None:
    room = make_room()
    model.leave(room, HOST, 30.0)
    events = model.unmake_moderator(room, MOD, MOD, 31.0)
    assert [e.kind for e in events] == ["role_changed", "role_changed"]
    assert room.participants[SPEAKER].role is Role.MODERATOR


def test_non_ascii_invite_token_is_refused_not_crashing() -> None:
    room = make_room(JoinMode.CLOSED)
    with pytest.raises(RoomRuleError, match="closed room"):
        model.join(room, OUTSIDER, 1.0, invite_token="ünïcode")


def test_host_may_end_the_room_without_being_in_it() -> None:
    room = make_room()
    model.leave(room, HOST, 40.0)
    assert model.end(room, HOST, 41.0)[0].kind == "room_ended"
