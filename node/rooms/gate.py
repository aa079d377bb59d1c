"""The one gate into every room.

Every way into a room asks this object: the local room socket and the JSON API
(``RoomService.join``), the remote-room proxy on a user's own node (before it asks the
room's node), an inbox ``Join`` (through ``RoomService.join``), the opening of a relay
trunk, the trunk's seat changes, and every frame a trunk carries (uplink packets only for
who may speak, the mix only while the trunk's node has an admitted, seated user). The
rules themselves are the room model's (``node/rooms/model.py``: join mode, invitations,
removals, roles); the gate adds who asks — the actor's domain policy — and answers the
four questions each path needs: may enter, may stay, may hear, may speak.
"""

from __future__ import annotations

from typing import Protocol

from node.rooms import model
from node.rooms.model import Room, RoomRuleError, RoomStatus
from node.store.follows import FollowStore
from node.store.users import User, UserStore


class DomainPolicy(Protocol):
    """The operator's word on another domain (federation/store/policies.py)."""

    def refused(self, host: str) -> bool: ...


class OpenDomains:
    """No domain policy (a node built without federation, as in unit tests)."""

    def refused(self, host: str) -> bool:
        return False


class Blocks(Protocol):
    """Who blocked whom (node/store/blocks.py), in both directions and across nodes."""

    def between(self, a: int, b: int) -> bool: ...

    def blocked_among(self, blocker_ids: set[int], user_ids: set[int]) -> set[int]: ...

    def blocker_ids(self, blocked_id: int) -> list[int]: ...


class NoBlocks:
    """Nobody blocks anybody (a room service built without the blocks table)."""

    def between(self, a: int, b: int) -> bool:
        return False

    def blocked_among(self, blocker_ids: set[int], user_ids: set[int]) -> set[int]:
        return set()

    def blocker_ids(self, blocked_id: int) -> list[int]:
        return []


BLOCKED_JOIN = "you cannot join: a host or moderator of this room has blocked you"
BLOCKED_STAGE = "you cannot invite this person to speak: one of you has blocked the other"
BLOCKED_ACCEPT = "you cannot join the stage: a host or moderator of this room has blocked you"
#: Actions that put someone else on stage.
STAGE_ACTIONS = frozenset({"invite_to_speak", "make_moderator"})


class Gate:
    def __init__(
        self, follows: FollowStore, users: UserStore, domains: DomainPolicy, blocks: Blocks
    ) -> None:
        self.follows = follows
        self.users = users
        self.domains = domains
        self.blocks = blocks

    def admit(self, room: Room, user: User, invite_token: str | None) -> bool:
        """Raise RoomRuleError unless USER may enter ROOM now; whether a moderator follows
        USER (``model.join`` needs it to decide a social room)."""
        if user.domain is not None and self.domains.refused(user.domain):
            raise RoomRuleError("forbidden", "this node does not federate with your domain")
        if self.blocks.blocked_among(room.moderator_ids(), {user.id}):
            raise RoomRuleError("forbidden", BLOCKED_JOIN)
        followed = self.follows.followed_by_any(user.id, room.moderator_ids())
        model.check_admission(
            room, user.id, followed_by_moderator=followed, invite_token=invite_token
        )
        return followed

    def check_action(self, room: Room, action: str, actor_id: int, target_id: int) -> None:
        """Blocks on the stage: nobody puts on stage someone they blocked or who blocked
        them, and an invitation cannot be accepted once a moderator has blocked you."""
        if action in STAGE_ACTIONS and self.blocks.between(actor_id, target_id):
            raise RoomRuleError("forbidden", BLOCKED_STAGE)
        if action == "accept_invite" and self.blocks.blocked_among(
            room.moderator_ids(), {actor_id}
        ):
            raise RoomRuleError("forbidden", BLOCKED_ACCEPT)

    def blocked_by_moderators(self, room: Room, user_ids: set[int]) -> set[int]:
        """Those of USER_IDS some moderator of ROOM has blocked (the moderators' shield)."""
        return self.blocks.blocked_among(room.moderator_ids(), user_ids)

    def blocked_by(self, viewer_id: int, user_ids: set[int]) -> set[int]:
        """Those of USER_IDS the viewer has blocked."""
        return self.blocks.blocked_among({viewer_id}, user_ids)

    def blockers_of(self, user_id: int) -> set[int]:
        """Everyone who blocked USER_ID (chat messages are not sent to them)."""
        return set(self.blocks.blocker_ids(user_id))

    def may_stay(self, room: Room, user_id: int) -> bool:
        return room.status is not RoomStatus.ENDED and user_id in room.participants

    def may_hear(self, room: Room, user_id: int) -> bool:
        """Audio goes only to people seated in a live room."""
        return room.status is RoomStatus.LIVE and user_id in room.participants

    def may_speak(self, room: Room, user_id: int) -> bool:
        participant = room.participants.get(user_id)
        return self.may_hear(room, user_id) and participant is not None and participant.can_speak

    def seated_from(self, room: Room, domain: str) -> list[int]:
        """Participants of ROOM whose accounts live on DOMAIN and may hear: a relay trunk
        to that node is open only while this is not empty."""
        if room.status is not RoomStatus.LIVE or self.domains.refused(domain):
            return []
        users = self.users.many(list(room.participants))
        return [
            uid
            for uid, user in users.items()
            if user.domain is not None and user.domain.lower() == domain.lower()
        ]
