"""What the node needs from federation, named here so that node never imports it.

``federation`` implements these protocols and the composition root (``cli/app.py``) hands
the implementations to the web layer. A node built without federation (unit tests of the
room service) simply has none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from node.errors import DomainError
from node.rooms.hallway import HallwayCard
from node.rooms.protocol import ChatRequest
from node.rooms.subscription import Subscription
from node.store.users import User


class LookupFailed(DomainError):
    """A remote user could not be found or reached."""


class RemotePeople(Protocol):
    """People and rooms on other nodes, as this node's users see them."""

    async def lookup(self, acct: str) -> User:
        """``@user@host`` to a users row (WebFinger for unknown remotes); LookupFailed."""

    def remote_cards(self, viewer: User) -> list[HallwayCard]:
        """Hallway cards of live and upcoming remote rooms the viewer may see."""


class RemoteRoom(Protocol):
    """A room on another node that some of our users are in (served through us)."""

    alias: str
    uri: str  # the room's id on its own node
    title: str  # as its node last told us
    join_mode: str  # open, social or closed, as its node last told us

    def is_member(self, user: User) -> bool: ...

    async def state(self, user: User) -> dict[str, Any]: ...

    async def command(self, user: User, action: str, target: str | None) -> None: ...

    async def leave(self, user: User) -> None: ...

    async def signal(self, user: User, message: dict[str, Any]) -> None: ...

    async def chat(self, user: User, request: ChatRequest) -> None: ...

    async def listeners(self, user: User, after: int, limit: int) -> dict[str, Any]:
        """A page of the room's audience (``GET /api/rooms/{id}/listeners`` there)."""

    def subscribe(self, user: User) -> Subscription: ...

    def unsubscribe(self, sub: Subscription) -> None:
        """The socket of SUB closed; the seat waits for a reconnect, then is given up."""


class RemoteRooms(Protocol):
    async def join(self, user: User, url: object, token: object) -> RemoteRoom: ...

    def get(self, alias: str) -> RemoteRoom: ...


@dataclass(frozen=True)
class ReportedRoom:
    """A room on another node as a report attaches it: its host and current speakers."""

    uri: str
    host: User
    title: str
    speakers: tuple[str, ...]


class ReportRelay(Protocol):
    """What the moderation desk (node/moderation.py) needs from federation."""

    def remote_room(self, uri: str) -> ReportedRoom | None:
        """A remote room this node knows from its host's announcements; None otherwise."""

    def forward(self, target: User, room: ReportedRoom | None, comment: str) -> str | None:
        """Send a ``Flag`` from the node actor to TARGET's node, naming TARGET, ROOM and
        ROOM's speakers on that node; the Flag's id (None when TARGET has no known inbox)."""

    def account_suspended(self, user: User) -> int:
        """A local account was suspended: ``Delete`` of its actor goes to its followers'
        nodes (call before follows are severed); the number of inboxes queued."""


class DomainControls(Protocol):
    """Operator domain policies (federation/store/policies.py)."""

    def policies(self) -> list[tuple[str, str, float]]: ...

    def set_policy(self, domain: str, policy: str, now: float) -> None: ...

    def remove_policy(self, domain: str) -> bool: ...

    def affected_follows(self, domain: str) -> int: ...
