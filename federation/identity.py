"""Who this node is on the wire: the URIs it mints and the keys it signs with."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from federation import keys
from federation.as2 import host_of
from federation.fetch import SigningKey
from federation.store.actors import KeyStore
from node.clock import Clock
from node.datadir import KEY_DIR, NODE_ED25519_KEY, NODE_RSA_KEY
from node.store.users import User, UserStore


def utc_now(clock: Clock) -> datetime:
    """The clock's wall time as an aware datetime (signature dates, retry schedules)."""
    return datetime.fromtimestamp(clock.now(), UTC)


@dataclass(frozen=True)
class Urls:
    """Every URI this node mints, and the reverse lookups the inbox needs."""

    base: str

    @property
    def host(self) -> str:
        return host_of(self.base)

    @property
    def node_actor(self) -> str:
        return f"{self.base}/actor"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base}/inbox"

    def actor(self, username: str) -> str:
        return f"{self.base}/users/{username}"

    def room(self, room_id: str) -> str:
        return f"{self.base}/rooms/{room_id}"

    def new_activity_id(self) -> str:
        return f"{self.base}/activities/{secrets.token_urlsafe(16)}"

    def _local_path(self, uri: str, prefix: str) -> str | None:
        parts = urlsplit(uri)
        root = urlsplit(self.base)
        if (parts.scheme, parts.netloc) != (root.scheme, root.netloc) or parts.query:
            return None
        path = parts.path
        if not path.startswith(prefix):
            return None
        rest = unquote(path[len(prefix) :])
        return rest if rest and "/" not in rest else None

    def username_of(self, actor_uri: str) -> str | None:
        """``alice`` for ``{base}/users/alice``; None for anything else."""
        return self._local_path(actor_uri, f"{urlsplit(self.base).path}/users/")

    def room_id_of(self, uri: str) -> str | None:
        return self._local_path(uri, f"{urlsplit(self.base).path}/rooms/")


async def make_user_keys(store: KeyStore, user_id: int, now: float) -> keys.ActorKeys:
    """A new account's keys, generated in a worker thread and stored once.

    RSA-2048 generation takes tens of milliseconds of CPU; on the event loop, a burst of
    sign-ups stalled every room's audio and socket. Concurrent first uses (this and
    ``KeyStore.ensure_keys``) end up with the one pair stored first.
    """
    found = store.keys_for(user_id)
    if found is not None:
        return found
    fresh = await asyncio.to_thread(keys.ActorKeys.generate)
    return store.store_once(user_id, fresh, now)


def load_node_keys(data_dir: Path) -> keys.ActorKeys:
    """The node actor's keys, created with the data directory (node/datadir.py)."""
    key_dir = data_dir / KEY_DIR
    return keys.ActorKeys(
        rsa_private_pem=(key_dir / NODE_RSA_KEY).read_text("ascii"),
        ed25519_private_pem=(key_dir / NODE_ED25519_KEY).read_text("ascii"),
    )


class Signers:
    """The key that signs each outgoing request: the node actor's or a local user's."""

    def __init__(
        self,
        urls: Urls,
        node_keys: keys.ActorKeys,
        keys_store: KeyStore,
        users: UserStore,
        clock: Clock,
    ) -> None:
        self.urls = urls
        self.node_keys = node_keys
        self.keys = keys_store
        self.users = users
        self.clock = clock
        self._users: dict[int, tuple[str, SigningKey]] = {}
        self.node = SigningKey(keys.rsa_key_id(urls.node_actor), node_keys.rsa_private_key)

    def user_keys(self, user: User) -> keys.ActorKeys:
        """A local user's keys, generated on first use."""
        return self.keys.ensure_keys(user.id, self.clock.now())

    async def user_created(self, user: User) -> None:
        """``AccountService``'s created hook: a new account gets its keys off the loop."""
        await make_user_keys(self.keys, user.id, self.clock.now())

    def user(self, user: User) -> SigningKey:
        # Parsing an RSA PEM costs ~35 ms (cryptography validates the key): keep the parsed
        # key per user, re-parsed only when the stored PEM changes (rotation).
        user_keys = self.user_keys(user)
        key_id = keys.rsa_key_id(self.urls.actor(user.username))
        cached = self._users.get(user.id)
        if cached is not None and (cached[0], cached[1].key_id) == (
            user_keys.rsa_private_pem,
            key_id,
        ):
            return cached[1]
        signer = SigningKey(key_id, user_keys.rsa_private_key)
        self._users[user.id] = (user_keys.rsa_private_pem, signer)
        return signer

    def for_user_id(self, user_id: int | None) -> SigningKey:
        """A delivery row's signer: its local user, else the node actor."""
        if user_id is None:
            return self.node
        user = self.users.get(user_id)
        if user is None or not user.is_local:
            return self.node
        return self.user(user)
