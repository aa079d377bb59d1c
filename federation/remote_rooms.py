"""The relay side: our users in rooms hosted on other nodes, through one trunk per room.

``RemoteRooms`` and ``RemoteRoom`` (federation/remote_room.py) implement node's protocols
of the same names (node/remote.py); ``node/web/remote_rooms.py`` serves them to clients.

Our user bob asks us to join ``https://A/rooms/R``: we send A a signed ``Join`` (joins.py),
then open (or reuse) our trunk to A: a WebSocket signed by our node actor plus an
encrypted UDP flow. bob's client talks only to us — the same room WebSocket protocol as a
local room, at ``/api/remote-rooms/{alias}/ws`` — and his audio goes through our
``RelayRoom`` (media/relay.py), so A never sees his address. A is the only authority: we
forward bob's commands, apply A's decisions to our users, and reconnect the trunk
(re-joining our users if needed) when A restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from nacl.public import PrivateKey, PublicKey

from federation.fetch import SafeClient
from federation.identity import Signers, Urls
from federation.joins import JoinFailed, JoinRefused, RemoteJoins
from federation.remote_room import Relay, RemoteRoom, alias_of
from federation.store.policies import DomainPolicies
from media.engine import MediaConfig
from media.participants import SendToParticipant
from media.port import MediaPort
from media.relay import RelayRoom
from node.notifications import Notifications
from node.rooms.model import RoomRuleError
from node.rooms.service import RoomService
from node.settings import Settings
from node.store.users import User


class RelayFactory(Protocol):
    def __call__(
        self,
        alias: str,
        send: SendToParticipant,
        trunk_id: int,
        own: PrivateKey,
        origin_key: PublicKey,
        origin: tuple[str, int],
        on_lost: Callable[[], object],
    ) -> Relay: ...


class RemoteRooms:
    """Every remote room our users are in, one trunk each (``node.remote.RemoteRooms``)."""

    def __init__(
        self,
        urls: Urls,
        settings: Settings,
        config: MediaConfig,
        port: MediaPort,
        policies: DomainPolicies,
        joins: RemoteJoins,
        client: SafeClient,
        signers: Signers,
        *,
        rooms: RoomService | None = None,
        notifications: Notifications | None = None,
        relays: RelayFactory | None = None,
    ) -> None:
        """ROOMS: this node's users and blocks (chat from people a user blocked is not
        passed to them); None in a node built without it. NOTIFICATIONS hears our users'
        stage invitations and moderator appointments. RELAYS makes each room's relay
        (default: a ``RelayRoom`` on this node's media port; media workers: on a worker)."""
        self._relays = relays
        self.rooms = rooms
        self.notifications = notifications
        self.urls = urls
        self.settings = settings
        self.config = config
        self.port = port
        self.policies = policies
        self.joins = joins
        self.client = client
        self.signers = signers
        self._rooms: dict[str, RemoteRoom] = {}
        self.closing = False

    def new_relay(
        self,
        alias: str,
        send: SendToParticipant,
        trunk_id: int,
        own: PrivateKey,
        origin_key: PublicKey,
        origin: tuple[str, int],
        on_lost: Callable[[], object] = lambda: None,
    ) -> Relay:
        """ON_LOST: the relay's media worker is gone and the relay moved (trunk anew)."""
        if self._relays is not None:
            return self._relays(alias, send, trunk_id, own, origin_key, origin, on_lost)
        return RelayRoom(alias, self.config, send, trunk_id, own, origin_key, self.port, origin)

    async def join(self, user: User, url: object, token: object) -> RemoteRoom:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise RoomRuleError("invalid", "url must be the room's http(s) URL")
        if token is not None and not isinstance(token, str):
            raise RoomRuleError("invalid", "invite_token must be a string")
        parts = urlsplit(url)
        path = parts.path.rstrip("/")
        if "/rooms/" not in path:
            raise RoomRuleError("invalid", f"{url} is not a room URL (…/rooms/ID)")
        uri = f"{parts.scheme}://{parts.netloc}{path}"
        if parts.netloc == self.urls.host:
            raise RoomRuleError("invalid", "that room is on this node: join it at /api/rooms")
        if self.policies.refused(parts.netloc):
            raise RoomRuleError("forbidden", "this node does not federate with that domain")
        room = self._rooms.get(alias_of(uri))
        if room is None or room.ended:
            room = self._rooms[alias_of(uri)] = RemoteRoom(self, uri)
        was_member = room.is_member(user)
        room.joining += 1
        try:
            await room.admit(user, token)
        except JoinRefused as exc:
            raise RoomRuleError("forbidden", f"the room refused: {exc}") from None
        except (JoinFailed, TimeoutError) as exc:
            if not was_member:  # admitted by the origin but no trunk: do not stay half in
                await room.leave(user)
            raise RoomRuleError("conflict", f"cannot reach the room: {exc}") from None
        finally:
            room.joining -= 1
            if not room.members and not room.joining:  # a failed join leaves nothing behind
                await room.close()
                if self._rooms.get(room.alias) is room:
                    del self._rooms[room.alias]
        return room

    def get(self, alias: str) -> RemoteRoom:
        room = self._rooms.get(alias)
        if room is None or room.ended:
            raise RoomRuleError("not_found", "no such remote room")
        return room

    def open_rooms(self) -> list[RemoteRoom]:
        """Rooms whose trunk is still wanted (benchmarks count trunks with this)."""
        return [room for room in self._rooms.values() if not room.ended]

    async def close(self) -> None:
        self.closing = True
        for room in list(self._rooms.values()):
            for sub in list(room.subs):
                sub.close(1001, "server shutting down")
            await room.close()
        self._rooms.clear()
