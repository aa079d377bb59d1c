"""What every federation component shares: settings, clock, stores, URLs, keys, HTTP client.

Built once by ``federation.wiring.install_federation``; the outgoing HTTP client is
attached at start-up because an aiohttp session belongs to the running loop.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from federation import keys
from federation.activities import host_of
from federation.fetch import SafeClient, SigningKey
from node.clock import Clock
from node.datadir import KEY_DIR, NODE_ED25519_KEY, NODE_RSA_KEY
from node.settings import Settings
from node.store.db import Database
from node.store.deliveries import DeliveryStore
from node.store.federation import FederationStore
from node.store.follows import FollowStore
from node.store.users import User, UserStore


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


def load_node_keys(data_dir: Path) -> keys.ActorKeys:
    """The node actor's keys, created with the data directory (node/datadir.py)."""
    key_dir = data_dir / KEY_DIR
    return keys.ActorKeys(
        rsa_private_pem=(key_dir / NODE_RSA_KEY).read_text("ascii"),
        ed25519_private_pem=(key_dir / NODE_ED25519_KEY).read_text("ascii"),
    )


@dataclass
class Context:
    settings: Settings
    clock: Clock
    db: Database
    node_keys: keys.ActorKeys
    urls: Urls = field(init=False)
    store: FederationStore = field(init=False)
    deliveries: DeliveryStore = field(init=False)
    users: UserStore = field(init=False)
    follows: FollowStore = field(init=False)
    client: SafeClient | None = None
    #: Set whenever rows are queued, so the worker sends them without waiting for a poll.
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    _signers: dict[int, tuple[str, SigningKey]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.urls = Urls(self.settings.base_url)
        self.store = FederationStore(self.db)
        self.deliveries = DeliveryStore(self.db)
        self.users = UserStore(self.db)
        self.follows = FollowStore(self.db)

    def http(self) -> SafeClient:
        if self.client is None:
            raise RuntimeError("federation HTTP client used before the node started")
        return self.client

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    @property
    def node_signer(self) -> SigningKey:
        return SigningKey(keys.rsa_key_id(self.urls.node_actor), self.node_keys.rsa_private_key)

    def user_signer(self, user: User) -> SigningKey:
        # Parsing an RSA PEM costs ~35 ms (cryptography validates the key): keep the parsed
        # key per user, re-parsed only when the stored PEM changes (rotation).
        user_keys = self.store.ensure_keys(user.id, self.clock.now())
        key_id = keys.rsa_key_id(self.urls.actor(user.username))
        cached = self._signers.get(user.id)
        if cached is not None and (cached[0], cached[1].key_id) == (
            user_keys.rsa_private_pem,
            key_id,
        ):
            return cached[1]
        signer = SigningKey(key_id, user_keys.rsa_private_key)
        self._signers[user.id] = (user_keys.rsa_private_pem, signer)
        return signer

    def signer_for(self, user_id: int | None) -> SigningKey:
        if user_id is None:
            return self.node_signer
        user = self.users.get(user_id)
        if user is None or not user.is_local:
            return self.node_signer
        return self.user_signer(user)

    def actor_uri(self, user: User) -> str:
        """Our URI for a local user, the stored ``id`` for a remote one."""
        if user.is_local:
            return self.urls.actor(user.username)
        row = self.store.actor_by_user(user.id)
        return row.actor_uri if row else ""

    def refused(self, host: str) -> bool:
        """Suspended, or not allowed while the node runs in allowlist mode."""
        policy = self.store.policy_for(host)
        if policy == "suspend":
            return True
        return self.settings.allowlist_mode and policy != "allow"

    def limited(self, host: str) -> bool:
        return self.store.policy_for(host) == "limit"
