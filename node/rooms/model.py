"""The room: Clubhouse's roles and rules as a pure state machine (no I/O, no clock).

Every action is a function of the room state, the acting user and the time passed in; it
either changes the state and returns the events that describe the change, or raises
``RoomRuleError`` and leaves the state untouched. The service persists the state and sends
the events. The same functions decide for remote users (a remote participant is a user
row with a domain), so every path into a room meets the same rules.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from node.errors import DomainError


class Role(StrEnum):
    HOST = "host"
    MODERATOR = "moderator"
    SPEAKER = "speaker"
    LISTENER = "listener"


class JoinMode(StrEnum):
    OPEN = "open"
    SOCIAL = "social"
    CLOSED = "closed"


class RoomStatus(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


STAGE_ROLES = frozenset({Role.HOST, Role.MODERATOR, Role.SPEAKER})
MODERATOR_ROLES = frozenset({Role.HOST, Role.MODERATOR})
STAGE_ROLE_NAMES = frozenset(role.value for role in STAGE_ROLES)


def speaks(role: str, muted: bool) -> bool:
    """The one rule of who may be heard: on stage and not muted. A relay node applies it
    to the roles the room's node reports, so both ends decide alike."""
    return role in STAGE_ROLE_NAMES and not muted


class RoomRuleError(DomainError):
    """An action the room's rules do not allow."""


@dataclass
class Participant:
    user_id: int
    role: Role
    joined_at: float
    stage_since: float | None = None
    hand_raised_at: float | None = None
    invited_to_speak: bool = False
    muted: bool = False
    mute_locked: bool = False
    connected: bool = True

    @property
    def on_stage(self) -> bool:
        return self.role in STAGE_ROLES

    @property
    def is_moderator(self) -> bool:
        return self.role in MODERATOR_ROLES

    @property
    def can_speak(self) -> bool:
        """What the media engine enforces (``speaks``)."""
        return speaks(self.role.value, self.muted)


@dataclass(frozen=True)
class RoomEvent:
    """One ordered change in a room, as sent to clients (``seq`` is added by the service)."""

    kind: str
    data: dict[str, Any]


@dataclass
class Room:
    id: str
    host_id: int
    title: str
    description: str
    join_mode: JoinMode
    status: RoomStatus
    invite_token: str
    created_at: float
    start_time: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    seq: int = 0
    record: bool = False  # the host asked for a recording (issue #14, media/recorder.py)
    participants: dict[int, Participant] = field(default_factory=dict)
    moderators: set[int] = field(default_factory=set)  # appointed; the host is implied
    bans: set[int] = field(default_factory=set)
    invites: set[int] = field(default_factory=set)

    # ---- queries -------------------------------------------------------------------
    def speakers(self) -> list[Participant]:
        stage = [p for p in self.participants.values() if p.on_stage]
        return sorted(stage, key=lambda p: (p.stage_since or p.joined_at, p.user_id))

    def listeners(self) -> list[Participant]:
        audience = [p for p in self.participants.values() if not p.on_stage]
        return sorted(audience, key=lambda p: (p.joined_at, p.user_id))

    def hands(self) -> list[Participant]:
        """The hands queue, in order of raising."""
        raised = [p for p in self.participants.values() if p.hand_raised_at is not None]
        return sorted(raised, key=lambda p: (p.hand_raised_at or 0.0, p.user_id))

    def moderator_ids(self) -> set[int]:
        return {self.host_id, *self.moderators}

    def present_moderators(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.is_moderator]

    def needs_grace(self) -> bool:
        """A live room with nobody on stage ends after the grace period (docs/api.md)."""
        return self.status is RoomStatus.LIVE and not any(
            p.on_stage for p in self.participants.values()
        )


# ---- helpers ------------------------------------------------------------------------


def _require_live(room: Room) -> None:
    if room.status is RoomStatus.ENDED:
        raise RoomRuleError("conflict", "the room has ended")
    if room.status is RoomStatus.SCHEDULED:
        raise RoomRuleError("conflict", "the room has not started yet")


def _member(room: Room, user_id: int) -> Participant:
    participant = room.participants.get(user_id)
    if participant is None:
        raise RoomRuleError("forbidden", "you are not in this room")
    return participant


def _target(room: Room, user_id: int) -> Participant:
    participant = room.participants.get(user_id)
    if participant is None:
        raise RoomRuleError("not_found", "that user is not in this room")
    return participant


def _moderator(room: Room, actor_id: int) -> Participant:
    actor = _member(room, actor_id)
    if not actor.is_moderator:
        raise RoomRuleError("forbidden", "only the host and moderators can do that")
    return actor


def _role_event(p: Participant) -> RoomEvent:
    return RoomEvent("role_changed", {"user": p.user_id, "role": p.role.value})


def _entry_role(room: Room, user_id: int) -> Role:
    if user_id == room.host_id:
        return Role.HOST
    if user_id in room.moderators:
        return Role.MODERATOR
    return Role.LISTENER


# ---- lifecycle ----------------------------------------------------------------------


def start(room: Room, actor_id: int, now: float) -> list[RoomEvent]:
    if room.status is not RoomStatus.SCHEDULED:
        raise RoomRuleError("conflict", f"the room is {room.status.value}, not scheduled")
    if actor_id not in room.moderator_ids():
        raise RoomRuleError("forbidden", "only the host and moderators can start the room")
    room.status = RoomStatus.LIVE
    room.started_at = now
    return [RoomEvent("room_started", {"started_at": now})]


def end(room: Room, actor_id: int | None, now: float) -> list[RoomEvent]:
    """End the room; ``actor_id`` None means the node ends it (grace period, shutdown rule)."""
    if room.status is RoomStatus.ENDED:
        raise RoomRuleError("conflict", "the room has already ended")
    if actor_id is not None:
        present = room.participants.get(actor_id)
        # the host and appointed moderators may end it from anywhere (e.g. the hallway);
        # moderators who inherited the role in the room are present ones
        if actor_id not in room.moderator_ids() and not (present and present.is_moderator):
            raise RoomRuleError("forbidden", "only the host and moderators can end the room")
    room.status = RoomStatus.ENDED
    room.ended_at = now
    room.participants.clear()
    return [RoomEvent("room_ended", {"ended_at": now, "by": actor_id})]


def check_admission(
    room: Room, user_id: int, *, followed_by_moderator: bool, invite_token: str | None
) -> None:
    """Raise unless USER may enter: bans first, then the join mode."""
    _require_live(room)
    if user_id in room.bans:
        raise RoomRuleError("forbidden", "you were removed from this room")
    if user_id in room.moderator_ids() or user_id in room.participants:
        return
    if room.join_mode is JoinMode.SOCIAL and not followed_by_moderator:
        raise RoomRuleError(
            "forbidden", "this is a social room: only people the hosts follow can join"
        )
    if (
        room.join_mode is JoinMode.CLOSED
        and user_id not in room.invites
        and not (
            invite_token is not None
            and hmac.compare_digest(invite_token.encode(), room.invite_token.encode())
        )
    ):
        raise RoomRuleError("forbidden", "this is a closed room: you need an invitation")


def join(
    room: Room,
    user_id: int,
    now: float,
    *,
    followed_by_moderator: bool = False,
    invite_token: str | None = None,
    connected: bool = True,
) -> list[RoomEvent]:
    """CONNECTED False: a seat taken without a live connection yet (REST join)."""
    check_admission(
        room, user_id, followed_by_moderator=followed_by_moderator, invite_token=invite_token
    )
    existing = room.participants.get(user_id)
    if existing is not None:
        if existing.connected or not connected:
            return []
        existing.connected = True
        return [RoomEvent("reconnected", {"user": user_id})]
    role = _entry_role(room, user_id)
    participant = Participant(user_id=user_id, role=role, joined_at=now, connected=connected)
    if participant.on_stage:
        participant.stage_since = now
    if room.join_mode is JoinMode.CLOSED:
        room.invites.add(user_id)  # a token holder stays admitted after the first join
    room.participants[user_id] = participant
    return [RoomEvent("joined", {"user": user_id, "role": role.value})]


def disconnect(room: Room, user_id: int) -> list[RoomEvent]:
    """The client's connection dropped: keep the seat for the reconnect grace period."""
    participant = room.participants.get(user_id)
    if participant is None or not participant.connected:
        return []
    participant.connected = False
    return [RoomEvent("disconnected", {"user": user_id})]


def leave(room: Room, user_id: int, now: float) -> list[RoomEvent]:
    """Leave quietly: the seat is freed; appointed moderators keep their appointment."""
    role = _member(room, user_id).role
    del room.participants[user_id]
    # the role lets sockets fold a listener's leaving into counts (node/rooms/broadcast.py)
    return [RoomEvent("left", {"user": user_id, "role": role.value}), *_pass_moderation(room, now)]


def _pass_moderation(room: Room, now: float, exclude: int | None = None) -> list[RoomEvent]:
    """No host or moderator left: the longest-present speaker becomes a moderator.

    EXCLUDE is someone who just stepped down: moderation does not bounce back to them.
    """
    if room.status is not RoomStatus.LIVE or room.present_moderators():
        return []
    speakers = [p for p in room.speakers() if p.role is Role.SPEAKER and p.user_id != exclude]
    if not speakers:
        return []
    heir = speakers[0]
    heir.role = Role.MODERATOR
    room.moderators.add(heir.user_id)
    return [_role_event(heir)]


# ---- audience and stage -------------------------------------------------------------


def raise_hand(room: Room, user_id: int, now: float) -> list[RoomEvent]:
    _require_live(room)
    participant = _member(room, user_id)
    if participant.on_stage:
        raise RoomRuleError("conflict", "you are already on stage")
    if participant.hand_raised_at is not None:
        raise RoomRuleError("conflict", "your hand is already raised")
    participant.hand_raised_at = now
    return [RoomEvent("hand_raised", {"user": user_id, "at": now})]


def lower_hand(room: Room, user_id: int) -> list[RoomEvent]:
    _require_live(room)
    participant = _member(room, user_id)
    if participant.hand_raised_at is None:
        raise RoomRuleError("conflict", "your hand is not raised")
    participant.hand_raised_at = None
    return [RoomEvent("hand_lowered", {"user": user_id})]


def invite_to_speak(room: Room, actor_id: int, target_id: int) -> list[RoomEvent]:
    _require_live(room)
    _moderator(room, actor_id)
    target = _target(room, target_id)
    if target.on_stage:
        raise RoomRuleError("conflict", "that user is already on stage")
    if target.invited_to_speak:
        raise RoomRuleError("conflict", "that user has already been invited to speak")
    target.invited_to_speak = True
    return [RoomEvent("invited_to_speak", {"user": target_id, "by": actor_id})]


def accept_invite(room: Room, user_id: int, now: float) -> list[RoomEvent]:
    _require_live(room)
    participant = _member(room, user_id)
    if not participant.invited_to_speak:
        raise RoomRuleError("conflict", "you have not been invited to speak")
    participant.invited_to_speak = False
    participant.hand_raised_at = None
    participant.role = Role.SPEAKER
    participant.stage_since = now
    participant.muted = False
    participant.mute_locked = False
    return [_role_event(participant)]


def decline_invite(room: Room, user_id: int) -> list[RoomEvent]:
    _require_live(room)
    participant = _member(room, user_id)
    if not participant.invited_to_speak:
        raise RoomRuleError("conflict", "you have not been invited to speak")
    participant.invited_to_speak = False
    return [RoomEvent("invite_declined", {"user": user_id})]


def move_to_audience(room: Room, actor_id: int, target_id: int, now: float) -> list[RoomEvent]:
    """Moderators move speakers down; anyone but the host may step down themselves."""
    _require_live(room)
    if actor_id != target_id:
        _moderator(room, actor_id)
    target = _target(room, target_id) if actor_id != target_id else _member(room, actor_id)
    if target.role is Role.HOST:
        raise RoomRuleError("forbidden", "the host cannot be moved to the audience")
    if target.role is Role.LISTENER:
        raise RoomRuleError("conflict", "that user is already in the audience")
    if target.role is Role.MODERATOR and actor_id != target_id:
        raise RoomRuleError("forbidden", "remove moderator rights before moving a moderator")
    target.role = Role.LISTENER
    target.stage_since = None
    target.muted = False
    target.mute_locked = False
    room.moderators.discard(target_id)
    return [_role_event(target), *_pass_moderation(room, now)]


def mute(room: Room, actor_id: int, target_id: int) -> list[RoomEvent]:
    """Self-mute, or a moderator mute that the speaker cannot undo (``mute_locked``)."""
    _require_live(room)
    actor = _member(room, actor_id)
    target = actor if actor_id == target_id else _target(room, target_id)
    if not target.on_stage:
        raise RoomRuleError("conflict", "only people on stage can be muted")
    if actor_id != target_id:
        if not actor.is_moderator:
            raise RoomRuleError("forbidden", "only the host and moderators can mute others")
        if target.role is Role.HOST:
            raise RoomRuleError("forbidden", "the host cannot be muted by others")
        target.mute_locked = True
    elif target.muted:
        raise RoomRuleError("conflict", "you are already muted")
    target.muted = True
    return [_mute_event(target)]


def unmute(room: Room, actor_id: int, target_id: int) -> list[RoomEvent]:
    """Self-unmute (refused while locked); a moderator's unmute only lifts the lock."""
    _require_live(room)
    actor = _member(room, actor_id)
    target = actor if actor_id == target_id else _target(room, target_id)
    if not target.on_stage:
        raise RoomRuleError("conflict", "only people on stage can be unmuted")
    if actor_id != target_id:
        if not actor.is_moderator:
            raise RoomRuleError("forbidden", "only the host and moderators can unlock others")
        if not target.mute_locked:
            raise RoomRuleError("conflict", "that user is not muted by a moderator")
        target.mute_locked = False
        return [_mute_event(target)]
    if target.mute_locked:
        raise RoomRuleError("forbidden", "a moderator muted you; ask a moderator to unlock")
    if not target.muted:
        raise RoomRuleError("conflict", "you are not muted")
    target.muted = False
    return [_mute_event(target)]


def _mute_event(p: Participant) -> RoomEvent:
    return RoomEvent("muted", {"user": p.user_id, "muted": p.muted, "locked": p.mute_locked})


def remove(room: Room, actor_id: int, target_id: int, now: float) -> list[RoomEvent]:
    """Remove a participant and ban them from this room."""
    _require_live(room)
    actor = _moderator(room, actor_id)
    if actor_id == target_id:
        raise RoomRuleError("invalid", "you cannot remove yourself; leave instead")
    target = _target(room, target_id)
    if target.role is Role.HOST:
        raise RoomRuleError("forbidden", "the host cannot be removed")
    if target.role is Role.MODERATOR and actor.role is not Role.HOST:
        raise RoomRuleError("forbidden", "only the host can remove a moderator")
    del room.participants[target_id]
    room.moderators.discard(target_id)
    room.invites.discard(target_id)
    room.bans.add(target_id)
    return [RoomEvent("removed", {"user": target_id, "by": actor_id}), *_pass_moderation(room, now)]


def make_moderator(room: Room, actor_id: int, target_id: int, now: float) -> list[RoomEvent]:
    _require_live(room)
    _moderator(room, actor_id)
    target = _target(room, target_id)
    if target.is_moderator:
        raise RoomRuleError("conflict", "that user is already a moderator")
    if not target.on_stage:
        target.stage_since = now
        target.hand_raised_at = None
        target.invited_to_speak = False
    target.role = Role.MODERATOR
    room.moderators.add(target_id)
    return [_role_event(target)]


def unmake_moderator(room: Room, actor_id: int, target_id: int, now: float) -> list[RoomEvent]:
    """The host removes moderator rights; a moderator may also step down themselves."""
    _require_live(room)
    actor = _moderator(room, actor_id)
    target = _target(room, target_id)
    if target.role is Role.HOST:
        raise RoomRuleError("forbidden", "the host is always a moderator")
    if target.role is not Role.MODERATOR:
        raise RoomRuleError("conflict", "that user is not a moderator")
    if actor_id != target_id and actor.role is not Role.HOST:
        raise RoomRuleError("forbidden", "only the host can remove moderator rights")
    target.role = Role.SPEAKER
    room.moderators.discard(target_id)
    return [_role_event(target), *_pass_moderation(room, now, exclude=target_id)]


def invite_user(room: Room, actor_id: int, target_id: int) -> list[RoomEvent]:
    """Add a user to the room's invitation list (what admits them to a closed room)."""
    if room.status is RoomStatus.ENDED:
        raise RoomRuleError("conflict", "the room has ended")
    if actor_id not in room.moderator_ids():
        raise RoomRuleError("forbidden", "only the host and moderators can invite people")
    if target_id in room.bans:
        raise RoomRuleError("conflict", "that user was removed from this room")
    room.invites.add(target_id)
    return [RoomEvent("user_invited", {"user": target_id})]


def update_details(
    room: Room, actor_id: int, title: str | None, description: str | None
) -> list[RoomEvent]:
    if room.status is RoomStatus.ENDED:
        raise RoomRuleError("conflict", "the room has ended")
    if actor_id not in room.moderator_ids():
        raise RoomRuleError("forbidden", "only the host and moderators can edit the room")
    if title is not None:
        room.title = title
    if description is not None:
        room.description = description
    return [RoomEvent("room_updated", {"title": room.title, "description": room.description})]


def set_record(room: Room, actor_id: int, on: bool, reason: str | None = None) -> list[RoomEvent]:
    """The host turns recording on or off (issue #14); everyone gets ``recording``."""
    if room.status is RoomStatus.ENDED:
        raise RoomRuleError("conflict", "the room has ended")
    if actor_id != room.host_id:
        raise RoomRuleError("forbidden", "only the host can turn recording on or off")
    if room.record == on:
        return []
    room.record = on
    data: dict[str, object] = {"recording": on}
    if reason is not None:
        data["reason"] = reason
    return [RoomEvent("recording", data)]
