"""Actors: our own documents (users and the node ``Application``) and remote ones.

Remote actor documents are fetched with a GET signed by the node actor (so peers running
authorized fetch answer), cached in memory for ``actor_cache_seconds`` and written to the
store only when a relationship needs them (a follow, an announcement). When a fetch fails
the last stored document is used, so a ``Delete`` from a gone actor still verifies.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from federation import keys
from federation.activities import ActivityError, Actor, ActorPublicKey, Multikey, host_of
from federation.fetch import FetchError, SafeClient
from federation.identity import Signers, Urls
from federation.store.actors import RemoteActorStore
from federation.store.policies import DomainPolicies
from node.clock import Clock
from node.store.users import User, UserStore

log = logging.getLogger(__name__)

MAX_BIO = 2000
_ACCT = re.compile(r"^@?(?P<user>[^@\s/]+)@(?P<host>[A-Za-z0-9.\-\[\]:]+)$")


@dataclass(frozen=True)
class _Cached:
    actor: Actor
    document: dict[str, Any]
    fetched_at: float


class ActorDocuments:
    """Our own actors as AS2 documents: each local user's ``Person`` and the node's
    ``Application``."""

    def __init__(self, urls: Urls, signers: Signers, node_name: str) -> None:
        self.urls = urls
        self.signers = signers
        self.node_name = node_name

    def local(self, user: User) -> Actor:
        actor_id = self.urls.actor(user.username)
        user_keys = self.signers.user_keys(user)
        return self._actor(actor_id, "Person", user.username, user_keys, user.display_name, user)

    def node(self) -> Actor:
        urls = self.urls
        return self._actor(
            urls.node_actor, "Application", urls.host, self.signers.node_keys, "", None
        )

    def _actor(
        self,
        actor_id: str,
        kind: str,
        username: str,
        actor_keys: keys.ActorKeys,
        display_name: str,
        user: User | None,
    ) -> Actor:
        shared_inbox = self.urls.shared_inbox
        return Actor(
            id=actor_id,
            type=kind,
            inbox=f"{actor_id}/inbox" if user else shared_inbox,
            outbox=f"{actor_id}/outbox" if user else None,
            followers=f"{actor_id}/followers" if user else None,
            following=f"{actor_id}/following" if user else None,
            shared_inbox=shared_inbox,
            preferred_username=username,
            name=(display_name or username) if user else self.node_name,
            summary=user.bio if user else None,
            url=actor_id,
            public_keys=(
                ActorPublicKey(keys.rsa_key_id(actor_id), actor_id, actor_keys.rsa_public_pem),
            ),
            assertion_methods=(
                Multikey(
                    keys.ed25519_key_id(actor_id), actor_id, actor_keys.ed25519_public_multibase
                ),
            ),
            manually_approves_followers=user.locked if user else False,
        )


def parse_acct(text: str) -> tuple[str, str]:
    """``@bob@host:port`` / ``acct:bob@host`` / ``bob@host`` → (user, host)."""
    match = _ACCT.match(text.strip().removeprefix("acct:"))
    if match is None:
        raise ActivityError(f"not a user@host address: {text!r}")
    return match["user"], match["host"].lower()


class ActorDirectory:
    """Remote actors: fetched (signed by the node), cached, and stored as users rows."""

    def __init__(
        self,
        urls: Urls,
        client: SafeClient,
        signers: Signers,
        actors: RemoteActorStore,
        users: UserStore,
        policies: DomainPolicies,
        clock: Clock,
        *,
        cache_seconds: float,
        testnet: bool,
    ) -> None:
        self.urls = urls
        self.client = client
        self.signers = signers
        self.actors = actors
        self.users = users
        self.policies = policies
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.testnet = testnet
        self._cache: dict[str, _Cached] = {}

    def actor_uri(self, user: User) -> str:
        """Our URI for a local user, the stored ``id`` for a remote one."""
        if user.is_local:
            return self.urls.actor(user.username)
        row = self.actors.actor_by_user(user.id)
        return row.actor_uri if row else ""

    def forget(self, actor_uri: str) -> None:
        self._cache.pop(actor_uri, None)

    async def fetch(self, actor_uri: str, *, refresh: bool = False) -> Actor:
        """The actor document at ACTOR_URI (a key id's document leads to its owner)."""
        actor_uri = actor_uri.split("#", 1)[0]
        cached = self._cache.get(actor_uri)
        ttl = self.cache_seconds
        if cached and not refresh and self.clock.monotonic() - cached.fetched_at < ttl:
            return cached.actor
        try:
            document = await self.client.get_json(actor_uri, self.signers.node)
            if "inbox" not in document and isinstance(document.get("owner"), str):
                owner = document["owner"]  # a standalone key document (GoToSocial style)
                if host_of(owner) != host_of(actor_uri):
                    raise ActivityError(f"key {actor_uri} names an owner on another host")
                document = await self.client.get_json(owner, self.signers.node)
        except FetchError as exc:
            stored = self.actors.actor_by_uri(actor_uri)
            if stored is None:
                raise
            log.info("actors: %s unreachable (%s), using the stored document", actor_uri, exc)
            document = stored.document
        actor = Actor.parse(document)
        if host_of(actor.id) != host_of(actor_uri):
            raise ActivityError(f"actor document at {actor_uri} has an id on another host")
        self._cache[actor.id] = _Cached(actor, document, self.clock.monotonic())
        if actor.id != actor_uri:
            self._cache[actor_uri] = self._cache[actor.id]
        return actor

    def remember(self, actor: Actor, document: dict[str, Any]) -> int:
        """Store (or refresh) a remote actor as a users row; its user id."""
        username = actor.preferred_username or actor.id.rstrip("/").rsplit("/", 1)[-1]
        self._cache[actor.id] = _Cached(actor, document, self.clock.monotonic())
        return self.actors.upsert_actor(
            actor_uri=actor.id,
            username=username,
            domain=host_of(actor.id),
            display_name=(actor.name or "")[:100],
            bio=(actor.summary or "")[:MAX_BIO],
            locked=actor.manually_approves_followers,
            inbox=actor.inbox,
            shared_inbox=actor.shared_inbox,
            document=document,
            now=self.clock.now(),
        )

    def document(self, actor_uri: str) -> dict[str, Any] | None:
        cached = self._cache.get(actor_uri)
        return cached.document if cached else None

    async def user_for(self, actor_uri: str) -> User:
        """The users row of a remote actor, fetched and stored on first sight."""
        stored = self.actors.actor_by_uri(actor_uri)
        if stored is None:
            actor = await self.fetch(actor_uri)
            document = self.document(actor.id) or actor.serialize()
            user_id = self.remember(actor, document)
        else:
            user_id = stored.user_id
        user = self.users.get(user_id)
        if user is None:
            raise ActivityError(f"remote actor {actor_uri} vanished")
        return user

    async def lookup(self, acct: str) -> User:
        """Resolve ``@user@host`` through WebFinger (RFC 7033) to a stored users row."""
        username, host = parse_acct(acct)
        if host == self.urls.host.lower():
            found = self.users.by_name(username)
            if found is None:
                raise ActivityError(f"no user named {username!r} on this node")
            return found
        known = self.actors.user_by_handle(username, host)
        if known is not None:
            user = self.users.get(known)
            if user is not None:
                return user
        if self.policies.refused(host):
            raise ActivityError(f"{host} is blocked on this node")
        scheme = "http" if self.testnet else "https"
        url = f"{scheme}://{host}/.well-known/webfinger?resource=acct:{username}@{host}"
        jrd = await self.client.get_json(url, None, accept="application/jrd+json")
        links = jrd.get("links")
        href = None
        if isinstance(links, list):
            for link in links:
                if (
                    isinstance(link, dict)
                    and link.get("rel") == "self"
                    and "json" in str(link.get("type", ""))
                    and isinstance(link.get("href"), str)
                ):
                    href = link["href"]
                    break
        if href is None:
            raise ActivityError(f"WebFinger for {username}@{host} has no ActivityPub actor")
        return await self.user_for(href)
