"""The inbox: verify a signed POST, then hand the activity to its handler.

Order matters (docs/federation.md §3): the body is capped and parsed, the signature is checked
against a key that the activity's own actor lists, the activity is parsed, its id is
recorded for replay protection, and only then may a handler store anything. A handler
that rejects the activity (``ActivityError``) un-records the id, so nothing stays behind.
Statuses: 202 accepted (also for ignored types and replays), 400 malformed (also an
activity whose id is not on its actor's host), 401 bad or missing signature (also one
made for another host), 403 refused domain, 413 body over the cap.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from federation.activities import Actor, UnsupportedActivity
from federation.actors import ActorDirectory
from federation.as2 import ActivityError, host_of, same_host
from federation.fetch import FetchError
from federation.flags import ActivityDropped, Inbound, parse_inbound
from federation.handlers import Handlers
from federation.identity import utc_now
from federation.joins import JoinRefused
from federation.signatures import (
    HttpRequest,
    SignatureError,
    signature_key_id,
    verify_request,
)
from federation.store.inbox import SeenActivities
from federation.store.policies import DomainPolicies
from node.clock import Clock
from node.jsonbody import JsonError, loads_object

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboxResult:
    status: int
    message: str
    # why it was refused, when the status alone does not say (``InboxOutcomes``)
    refusal: str | None = None


#: The refusal reason of each status (metrics: ``salon_inbox_refused_total{reason}``).
REFUSALS = {400: "malformed", 401: "bad_signature", 403: "refused", 413: "too_large"}
#: Every reason the inbox gives (counted from 0, so a rate starts at the first refusal).
REASONS = (*REFUSALS.values(), "blocked_domain", "join_refused")


class InboxOutcomes:
    """How many inbox requests were accepted and refused, by reason (read by the node's
    metrics at scrape time; plain counters, bumped on the event loop only)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.refused: Counter[str] = Counter(dict.fromkeys(REASONS, 0))

    def record(self, result: InboxResult) -> None:
        if result.refusal is not None:
            self.refused[result.refusal] += 1
        elif result.status == 202:
            self.accepted += 1
        else:
            self.refused[REFUSALS.get(result.status, "other")] += 1

    def refuse(self, reason: str) -> None:
        self.refused[reason] += 1


class SignatureRejected(Exception):
    """401: the request is not signed by a key its actor lists."""


class SignedRequests:
    """Who signed an incoming request (inbox POSTs, signed GETs, trunk openings)."""

    def __init__(
        self,
        base_url: str,
        directory: ActorDirectory,
        clock: Clock,
        heard_from: Callable[[str], None] = lambda host: None,
    ) -> None:
        """``heard_from(host)`` is called with the signing key's host after every verified
        request (the delivery worker clears that host's backoff)."""
        self.base_url = base_url
        self.own_host = host_of(base_url)
        self.scheme = urlsplit(base_url).scheme
        self.directory = directory
        self.clock = clock
        self.heard_from = heard_from

    def request(
        self, method: str, raw_path: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> HttpRequest:
        """The request as the sender signed it: our public base URL + the raw target."""
        return HttpRequest(method, self.base_url + raw_path, list(headers), body)

    async def actor(self, request: HttpRequest, claimed_actor: str | None) -> Actor:
        """The actor whose listed key signed REQUEST; it must be CLAIMED_ACTOR when given.

        On a failed check the actor is fetched again once: it may have rotated its key.
        A fetched document is kept (cached) only once the signature has verified, so
        failing requests naming ever new key ids cannot fill the node's memory.
        """
        try:
            key_id = signature_key_id(request)
            key_host = host_of(key_id)
        except (SignatureError, ActivityError) as exc:
            raise SignatureRejected(str(exc)) from None
        if claimed_actor is not None and host_of(claimed_actor) != key_host:
            raise SignatureRejected("the signing key is not on the actor's host")
        last_error = "signature verification failed"
        for refresh in (False, True):
            try:
                fetched = await self.directory.load(key_id, refresh=refresh)
            except (FetchError, ActivityError) as exc:
                raise SignatureRejected(f"cannot fetch the key {key_id}: {exc}") from None
            actor = fetched.actor
            if claimed_actor is not None and actor.id != claimed_actor:
                raise SignatureRejected(f"key {key_id} belongs to {actor.id}, not {claimed_actor}")
            try:
                key = actor.verification_key(key_id)
            except ActivityError as exc:
                raise SignatureRejected(str(exc)) from None
            if key is None:
                last_error = f"actor {actor.id} does not list the key {key_id}"
                continue
            try:
                verified = verify_request(request, key, now=utc_now(self.clock))
            except SignatureError as exc:
                last_error = str(exc)
                continue
            self._check_host(request, verified.covered)
            self.directory.keep(key_id, fetched)
            if same_host(actor.id, key_id):  # the signer's own host, and only it, is up
                self.heard_from(key_host)
            return actor
        raise SignatureRejected(last_error)

    def _check_host(self, request: HttpRequest, covered: tuple[str, ...]) -> None:
        """A signature made for another node must not work here: a signed ``Host`` header
        must name us. (``@authority`` and ``@target-uri`` are built from our own base URL,
        so a signature covering them verifies only when it was made for us.)"""
        if "host" not in covered:
            return
        value = request.header("host") or ""
        try:
            signed_for = host_of(f"{self.scheme}://{value}/")
        except ActivityError:
            signed_for = None
        if signed_for != self.own_host:
            raise SignatureRejected(f"the signature was made for {value!r}, not {self.own_host}")


#: Activities from a refused domain answered 202 and dropped, as Mastodon does: telling a
#: blocked domain that its Block or report was refused tells it nothing useful.
DROPPED_QUIETLY = frozenset({"Block", "Flag"})


class Inbox:
    def __init__(
        self,
        signed: SignedRequests,
        policies: DomainPolicies,
        seen: SeenActivities,
        handlers: Handlers,
        clock: Clock,
    ) -> None:
        self.signed = signed
        self.policies = policies
        self.seen = seen
        self.handlers = handlers
        self.clock = clock
        self.outcomes = InboxOutcomes()

    async def receive(self, request: HttpRequest) -> InboxResult:
        result = await self._receive(request)
        self.outcomes.record(result)
        return result

    async def _receive(self, request: HttpRequest) -> InboxResult:
        try:
            data = loads_object(request.body)
        except JsonError as exc:
            return InboxResult(400, str(exc))
        claimed = _actor_id(data)
        if claimed is None:
            return InboxResult(400, "activity.actor is required")
        try:
            actor_host = host_of(claimed)
        except ActivityError as exc:
            return InboxResult(400, str(exc))
        if self.policies.refused(actor_host):
            if data.get("type") in DROPPED_QUIETLY:  # reports and blocks: no word back
                return InboxResult(
                    202, "ignored: this node does not federate with your domain", "blocked_domain"
                )
            return InboxResult(
                403, "this node does not federate with your domain", "blocked_domain"
            )
        try:
            actor = await self.signed.actor(request, claimed)
        except SignatureRejected as exc:
            log.info("inbox: rejected signature from %s: %s", claimed, exc)
            return InboxResult(401, str(exc))
        try:
            activity = parse_inbound(data)
        except UnsupportedActivity as exc:
            return InboxResult(202, f"ignored: {exc}")
        except ActivityError as exc:
            return InboxResult(400, str(exc))
        if activity.actor != actor.id:
            return InboxResult(401, "the activity's actor did not sign it")
        if not same_host(activity.id, actor.id):
            return InboxResult(400, "the activity's id is not on its actor's host")
        return await self._dispatch(activity, actor, data)

    async def _dispatch(self, activity: Inbound, actor: Actor, data: dict[str, Any]) -> InboxResult:
        if not self.seen.mark_seen(activity.id, self.clock.now()):
            return InboxResult(202, "duplicate activity ignored")
        try:
            message = await self.handlers.handle(activity, actor, data)
        except JoinRefused as exc:
            self.seen.unmark_seen(activity.id)
            return InboxResult(403, str(exc), "join_refused")
        except ActivityDropped as exc:
            self.seen.unmark_seen(activity.id)
            return InboxResult(202, str(exc))
        except (ActivityError, FetchError) as exc:
            self.seen.unmark_seen(activity.id)
            log.info("inbox: %s %s rejected: %s", type(activity).__name__, activity.id, exc)
            return InboxResult(400, str(exc))
        log.info(
            "inbox: %s %s from %s: %s", type(activity).__name__, activity.id, actor.id, message
        )
        return InboxResult(202, message)


def _actor_id(data: dict[str, Any]) -> str | None:
    value = data.get("actor")
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None
