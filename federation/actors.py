"""Actors: our own documents (users and the node ``Application``) and remote ones.

Remote actor documents are fetched with a GET signed by the node actor (so peers running
authorized fetch answer), at most ``actor_document_bytes`` each, cached in memory for
``actor_cache_seconds`` in a cache bounded by entries and bytes (federation/actor_cache.py)
and written to the store only when a relationship needs them (a follow, an announcement,
a join). When a fetch fails the last stored document is used, so a ``Delete`` from a gone
actor still verifies. Stored handles are canonical (docs/federation.md §2a).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from federation import keys
from federation.activities import Actor, ActorPublicKey, Multikey
from federation.actor_cache import ActorCache, CachedActor
from federation.as2 import ActivityError, canonical_authority, host_of
from federation.fetch import FetchError, SafeClient
from federation.identity import Signers, Urls
from federation.store.actors import RemoteActorStore
from federation.store.policies import DomainPolicies
from node.clock import Clock
from node.store.users import User, UserStore

log = logging.getLogger(__name__)

MAX_BIO = 2000
MAX_DISPLAY_NAME = 100
_ACCT = re.compile(r"^@?(?P<user>[^@\s/]+)@(?P<host>[^@\s/?#]+)$")
SAFE_USERNAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# control, format (bidi overrides, zero-width), line/paragraph separators, unassigned
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"})


def remote_username(preferred: str | None, actor_uri: str) -> str:
    """The name part of a remote actor's handle here: always ``[A-Za-z0-9_.-]{1,64}``.

    ``preferredUsername`` when it fits; otherwise the last path segment of the actor URI
    when that fits (``https://h/users/Ann`` → ``Ann``); otherwise ``u`` and the first 16 hex
    digits of the SHA-256 of the actor URI. Handles compare case-insensitively.
    """
    if preferred is not None and SAFE_USERNAME.fullmatch(preferred):
        return preferred
    segment = urlsplit(actor_uri).path.rstrip("/").rsplit("/", 1)[-1]
    if SAFE_USERNAME.fullmatch(segment) and segment not in (".", ".."):
        return segment
    return "u" + hashlib.sha256(actor_uri.encode()).hexdigest()[:16]


def plain_text(text: str, limit: int, *, one_line: bool = False) -> str:
    """TEXT without control/format characters (bidi overrides, zero-width), cut to LIMIT
    characters; ONE_LINE turns line breaks and tabs into spaces (display names)."""
    kept = "".join(
        ch
        for ch in text[: limit * 4]
        if ch in "\t\n" or unicodedata.category(ch) not in _HIDDEN_CATEGORIES
    )
    if one_line:
        kept = kept.replace("\t", " ").replace("\n", " ").strip()
    return kept[:limit]


def _json_size(document: dict[str, Any]) -> int:
    return len(json.dumps(document, separators=(",", ":")).encode())


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
    """``@bob@host:port`` / ``acct:bob@host`` / ``bob@host`` → (user, canonical host)."""
    match = _ACCT.match(text.strip().removeprefix("acct:"))
    if match is None:
        raise ActivityError(f"not a user@host address: {text!r}")
    return match["user"], canonical_authority(match["host"])


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
        cache_entries: int,
        cache_bytes: int,
        document_bytes: int,
        testnet: bool,
    ) -> None:
        self.urls = urls
        self.client = client
        self.signers = signers
        self.actors = actors
        self.users = users
        self.policies = policies
        self.clock = clock
        self.document_bytes = document_bytes
        self.testnet = testnet
        self._cache = ActorCache(
            max_entries=cache_entries, max_bytes=cache_bytes, ttl=cache_seconds
        )

    def actor_uri(self, user: User) -> str:
        """Our URI for a local user, the stored ``id`` for a remote one."""
        if user.is_local:
            return self.urls.actor(user.username)
        row = self.actors.actor_by_user(user.id)
        return row.actor_uri if row else ""

    def cache_usage(self) -> tuple[int, int]:
        """Entries and bytes of actor documents held in memory (bounded by settings)."""
        return len(self._cache), self._cache.bytes

    def forget(self, actor_uri: str) -> None:
        self._cache.pop(actor_uri)

    async def fetch(self, actor_uri: str, *, refresh: bool = False) -> Actor:
        """The actor document at ACTOR_URI (a key id's document leads to its owner), kept."""
        fetched = await self.load(actor_uri, refresh=refresh)
        self.keep(actor_uri, fetched)
        return fetched.actor

    async def load(self, actor_uri: str, *, refresh: bool = False) -> CachedActor:
        """Like ``fetch`` but keeps nothing new: the inbox keeps a document only after the
        signature it was fetched for has verified (``keep``)."""
        actor_uri = actor_uri.split("#", 1)[0]
        now = self.clock.monotonic()
        cached = None if refresh else self._cache.get(actor_uri, now)
        if cached is not None:
            return cached
        cap = self.document_bytes
        try:
            document = await self.client.get_json(actor_uri, self.signers.node, max_body=cap)
            if "inbox" not in document and isinstance(document.get("owner"), str):
                owner = document["owner"]  # a standalone key document (GoToSocial style)
                if host_of(owner) != host_of(actor_uri):
                    raise ActivityError(f"key {actor_uri} names an owner on another host")
                document = await self.client.get_json(owner, self.signers.node, max_body=cap)
        except FetchError as exc:
            stored = self.actors.actor_by_uri(actor_uri)
            if stored is None:
                raise
            log.info("actors: %s unreachable (%s), using the stored document", actor_uri, exc)
            document = stored.document
        actor = Actor.parse(document)
        if host_of(actor.id) != host_of(actor_uri):
            raise ActivityError(f"actor document at {actor_uri} has an id on another host")
        return CachedActor(actor, document, _json_size(document), now)

    def keep(self, actor_uri: str, fetched: CachedActor) -> None:
        """Remember FETCHED under its actor id (and ACTOR_URI when that differs)."""
        actor_uri = actor_uri.split("#", 1)[0]
        self._cache.put(fetched.actor.id, fetched)
        if fetched.actor.id != actor_uri:
            self._cache.put(actor_uri, fetched)

    def remember(self, actor: Actor, document: dict[str, Any]) -> int:
        """Store (or refresh) a remote actor as a users row; its user id.

        The row's handle is ``remote_username(...)@host``; display name and bio are cut to
        MAX_DISPLAY_NAME and MAX_BIO characters with control characters removed.
        """
        now = self.clock.monotonic()
        self._cache.put(actor.id, CachedActor(actor, document, _json_size(document), now))
        return self.actors.upsert_actor(
            actor_uri=actor.id,
            username=remote_username(actor.preferred_username, actor.id),
            domain=host_of(actor.id),
            display_name=plain_text(actor.name or "", MAX_DISPLAY_NAME, one_line=True),
            bio=plain_text(actor.summary or "", MAX_BIO),
            locked=actor.manually_approves_followers,
            inbox=actor.inbox,
            shared_inbox=actor.shared_inbox,
            document=document,
            now=self.clock.now(),
        )

    def document(self, actor_uri: str) -> dict[str, Any] | None:
        cached = self._cache.peek(actor_uri)
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
