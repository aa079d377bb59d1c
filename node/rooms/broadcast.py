"""Large audiences: one room's events to its subscriptions, listener churn coalesced.

Every room event goes to every subscription in order, except in a room with more than
``audience_coalesce_above`` participants (a *coalesced* room). There, the events of
listener churn — a listener ``joined``, ``left``, ``disconnected``, ``reconnected``, and
``hand_raised`` / ``hand_lowered`` — are *folded* for most sockets: instead of one message
per event, each socket receives at most ``audience_flushes_per_second`` ``audience``
messages carrying the counts (participants, listeners, hands) and the ``seq`` they cover —
fewer in a room so big that a flush to every socket would exceed
``audience_room_messages_per_second`` (the node's cost for counts stays bounded per room).

Who still gets a folded event at once, as an ``event``:
- the person it is about (your own hand, your own connection);
- the room's moderators and host (they keep the exact hands queue and see every arrival);
- watchers that are not a person (another node's relay trunk: it mirrors the room and its
  node folds again for its own sockets, with this same class).

Reactions (the chat part's coalesced batches, node/rooms/chat_service.py) ride on the same
flushes in a coalesced room, under the same per-room budget: one frame per flush for
everything coalesced — an ``audience`` message with a ``reactions`` field when counts are
due, else a ``reactions`` message — instead of a second stream of messages on a timer of
their own (a message costs the node about the same per socket whatever it carries).

Everything else — stage changes, roles, mutes, invitations, removals, the room's end — is
never folded and goes out at once, in order. ``seq`` stays gap-free per socket: before a
socket that has folded events pending gets its next event, it gets an ``audience`` message
whose ``seq`` covers them (docs/api.md "Large audiences"). Replies, signalling, ``speaking``
levels and chat do not pass through here and are never folded.

The policy is pure apart from two injected seams, the clock and a ``schedule(delay, fn)``
timer, so tests run it on a fake clock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from node.accounts import handle
from node.rooms.model import Room
from node.settings import Settings
from node.store.users import User

CHURN = frozenset({"joined", "left", "disconnected", "reconnected"})
HANDS = frozenset({"hand_raised", "hand_lowered"})
LISTENER = "listener"


class Outbox(Protocol):
    """One socket's ordered queue (node.rooms.subscription.Subscription)."""

    user: User | None
    closed: bool

    def offer(self, message: dict[str, Any], droppable: bool = False) -> None: ...


class Timer(Protocol):
    def cancel(self) -> object: ...


Schedule = Callable[[float, Callable[[], None]], Timer]


@dataclass(frozen=True)
class AudienceCounts:
    participant_count: int
    listener_count: int
    hand_count: int


@dataclass(frozen=True)
class AudiencePolicy:
    coalesce_above: int  # 0: never coalesce (per-event broadcast)
    flush_interval: float  # seconds between two flushes, at least
    room_budget: float = 0.0  # audience messages per second for a whole room; 0 = no cap
    reactions_cap: int = 0  # people one flush's reactions name at most; 0 = no cap

    @classmethod
    def from_settings(cls, settings: Settings) -> AudiencePolicy:
        return cls(
            settings.audience_coalesce_above,
            1.0 / settings.audience_flushes_per_second,
            settings.audience_room_messages_per_second,
            settings.reactions_batch_users,
        )

    def interval(self, sockets: int) -> float:
        """Seconds between two flushes to SOCKETS sockets: the per-socket rate, slowed
        down in a room so big that the room's budget would be exceeded (a count update
        costs the node one message per socket, so its cost per room stays bounded)."""
        if self.room_budget <= 0:
            return self.flush_interval
        return max(self.flush_interval, sockets / self.room_budget)

    def coalesces(self, participants: int) -> bool:
        return self.coalesce_above > 0 and participants > self.coalesce_above


class Shared(dict[str, Any]):
    """A message offered to many sockets, serialized once: socket writers send ``text()``
    (node/web/websocket.py) instead of encoding the same dict for every socket. Never
    changed after it is offered."""

    __slots__ = ("_text",)

    def text(self) -> str:
        try:
            return self._text
        except AttributeError:
            self._text: str = json.dumps(self)
            return self._text


def room_counts(room: Room) -> AudienceCounts:
    people = room.participants.values()
    return AudienceCounts(
        len(room.participants),
        sum(1 for p in people if not p.on_stage),
        sum(1 for p in people if p.hand_raised_at is not None),
    )


class _Now:
    def cancel(self) -> None:
        return None


def loop_schedule(delay: float, flush: Callable[[], None]) -> Timer:
    """Run FLUSH after DELAY on the running event loop (at once when none runs: a
    synchronous caller such as a command-line tool)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        flush()
        return _Now()
    return loop.call_later(delay, flush)


def audience_message(
    seq: int,
    counts: AudienceCounts,
    coalesced: bool,
    reactions: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    message = Shared(
        {
            "type": "audience",
            "seq": seq,
            "coalesced": coalesced,
            "participant_count": counts.participant_count,
            "listener_count": counts.listener_count,
            "hand_count": counts.hand_count,
        }
    )
    if reactions:
        message["reactions"] = reactions
    return message


REACTION_KINDS_EACH = 16  # reactions kept per person in one flush (a relay's batch is untrusted)


def merge_reactions(
    pending: dict[str, list[str]], reactions: object, cap: int = 0
) -> dict[str, list[str]]:
    """Add a ``reactions`` batch ({handle: [reaction, ...]}) to PENDING: each reaction once
    per person, at most CAP people (0: no cap); malformed entries are left out."""
    if not isinstance(reactions, dict):
        return pending
    for who, kinds in reactions.items():
        if not isinstance(who, str) or not isinstance(kinds, list):
            continue
        mine = pending.get(who)
        if mine is None:
            if cap and len(pending) >= cap:
                continue  # a full batch: dropped, as the chat service drops them
            mine = pending[who] = []
        for kind in kinds:
            if isinstance(kind, str) and kind not in mine and len(mine) < REACTION_KINDS_EACH:
                mine.append(kind)
        if not mine:
            del pending[who]
    return pending


def counts_after(counts: AudienceCounts, event: dict[str, Any]) -> AudienceCounts:
    """COUNTS moved by one relayed EVENT (a relay node between the origin's ``audience``
    messages: roughly current, corrected by the next one)."""
    kind, role = event.get("event"), event.get("role")
    if kind == "joined" and isinstance(event.get("participant"), dict):
        role = event["participant"].get("role")
    step = {"joined": 1, "left": -1, "removed": -1}.get(str(kind), 0)
    hands = {"hand_raised": 1, "hand_lowered": -1}.get(str(kind), 0)
    listeners = step if role == LISTENER else 0
    return AudienceCounts(
        max(0, counts.participant_count + step),
        max(0, counts.listener_count + listeners),
        max(0, counts.hand_count + hands),
    )


def counts_of_view(room: dict[str, Any]) -> AudienceCounts:
    """The counts a room view (from another node) states; its lists when it has none."""

    def count(key: str, fallback: object) -> int:
        value = room.get(key)
        if type(value) is int and value >= 0:
            return value
        return len(fallback) if isinstance(fallback, list) else 0

    return AudienceCounts(
        count("participant_count", None),
        count("listener_count", room.get("listeners")),
        count("hand_count", room.get("hands")),
    )


def parse_audience(data: dict[str, Any]) -> tuple[int, AudienceCounts, bool] | None:
    """An ``audience`` message from another node (the trunk); None if malformed."""
    fields = ("seq", "participant_count", "listener_count", "hand_count")
    values = [data.get(name) for name in fields]
    if not all(type(v) is int and 0 <= v < 2**53 for v in values):
        return None
    seq, participants, listeners, hands = (int(v) for v in values)  # type: ignore[arg-type]
    return seq, AudienceCounts(participants, listeners, hands), bool(data.get("coalesced"))


class RoomBroadcast:
    """One room's fan-out. SUBS is the room's subscription set (shared with the caller,
    which adds and removes sockets); COUNTS and SIZE read the room; MODERATORS gives the
    ids of the users (of this node) who get every event."""

    def __init__(
        self,
        policy: AudiencePolicy,
        subs: set[Any],
        *,
        counts: Callable[[], AudienceCounts],
        size: Callable[[], int],
        moderators: Callable[[], Iterable[int]],
        monotonic: Callable[[], float],
        schedule: Schedule,
    ) -> None:
        self.policy = policy
        self.subs: set[Any] = subs
        self._counts = counts
        self._size = size
        self._moderators = moderators
        self._monotonic = monotonic
        self._schedule = schedule
        self.last_seq = 0
        self._dirty = False
        self._behind: set[Any] = set()
        self._timer: Timer | None = None
        self._last_flush = float("-inf")
        self._was_large = False
        self._names: dict[int, str] = {}
        # an index of the sockets that may get folded events (rebuilt from new sockets)
        self._seen: set[Any] = set()
        self._relays: set[Any] = set()
        self._by_user: dict[int, set[Any]] = {}
        self._ids: dict[str, int] = {}
        self._reactions: dict[str, list[str]] = {}
        self.flushes = 0  # audience flushes so far (tests, bench)
        self.reaction_flushes = 0  # flushes that sent only reactions (tests, bench)

    # ---- what a socket gets --------------------------------------------------------
    def foldable(self, message: dict[str, Any]) -> bool:
        """Whether MESSAGE is listener churn that a coalesced room folds into counts."""
        kind = message.get("event")
        if kind in HANDS:
            return True
        if kind not in CHURN:
            return False
        role = message.get("role")
        if role is None and isinstance(message.get("participant"), dict):
            role = message["participant"].get("role")
        return role == LISTENER

    def _name(self, sub: Outbox) -> str | None:
        user = sub.user
        if user is None:
            return None
        name = self._names.get(user.id)
        if name is None:
            name = self._names[user.id] = handle(user)
        return name

    # ---- publishing ------------------------------------------------------------------
    def publish(self, message: dict[str, Any]) -> None:
        """An ``event`` message (with its ``seq``) for the room's sockets."""
        if not isinstance(message, Shared):
            message = Shared(message)
        seq = message.get("seq")
        if isinstance(seq, int) and seq > self.last_seq:
            self.last_seq = seq
        large = self.policy.coalesces(self._size())
        if self._was_large and not large:
            # the room shrank below the threshold: every socket resyncs to the full list
            self._was_large = False
            self._dirty = True
            self._flush_now(seq - 1 if isinstance(seq, int) else self.last_seq, False)
        self._was_large = self._was_large or large
        if large and self.foldable(message):
            self._fold(message)
            return
        catch_up = _CatchUp(self, message)
        for sub in list(self.subs):
            if sub in self._behind:
                catch_up.send(sub)
            sub.offer(message)

    def _fold(self, message: dict[str, Any]) -> None:
        """Offer MESSAGE to the sockets that get every event; mark the others behind.
        Set operations, not a Python loop over the room: a join in a room of thousands
        touches only the few sockets that must see it."""
        self._dirty = True
        targets = self._targets(message.get("user"))
        catch_up = _CatchUp(self, message)
        for sub in targets:
            if sub in self._behind:
                catch_up.send(sub)
            sub.offer(message)
        self._behind |= self.subs
        self._behind -= targets
        self._arm()

    def _targets(self, subject: object) -> set[Any]:
        """The room's sockets that get folded events too: relays, moderators, SUBJECT's."""
        subs = self._index()
        targets = self._relays & subs
        for uid in self._moderators():
            targets |= self._by_user.get(uid, set()) & subs
        own = self._ids.get(subject) if isinstance(subject, str) else None
        if own is not None:
            targets |= self._by_user.get(own, set()) & subs
        return targets

    def react(self, reactions: object) -> bool:
        """A batch of reactions for the room's sockets. In a coalesced room (or while
        earlier ones wait) it waits for the next flush and this returns True; otherwise
        False, and the caller sends its ``reactions`` message at once."""
        if not self._reactions and not self.policy.coalesces(self._size()):
            return False
        merge_reactions(self._reactions, reactions, self.policy.reactions_cap)
        if self._reactions:
            self._arm()
        return True

    def _index(self) -> set[Any]:
        """Bring the index up to date with the room's sockets (set operations: only new
        sockets are looked at); the room's sockets."""
        subs = self.subs
        fresh = subs - self._seen
        if fresh or len(self._seen) != len(subs):
            for sub in fresh:
                user = sub.user
                if user is None:
                    self._relays.add(sub)
                else:
                    self._by_user.setdefault(user.id, set()).add(sub)
                    self._ids[self._name(sub) or ""] = user.id
            self._seen = set(subs)
        return subs

    def sockets_of(self, user_id: int) -> set[Any]:
        """The room's sockets of USER_ID (a copy), without a pass over the room."""
        subs = self._index()
        return self._by_user.get(user_id, set()) & subs

    def refresh(self, seq: int | None = None) -> None:
        """The counts changed without an event here (another node's ``audience``): send
        them to every socket at the next flush."""
        if seq is not None and seq > self.last_seq:
            self.last_seq = seq
        self._dirty = True
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            return
        interval = self.policy.interval(len(self.subs))
        delay = max(0.0, self._last_flush + interval - self._monotonic())
        self._timer = _ARMING
        timer = self._schedule(delay, self.flush)
        if self._timer is _ARMING:  # not flushed already (a schedule that runs at once)
            self._timer = timer

    def flush(self) -> None:
        """Send the counts (with the reactions since the last flush) to every socket, or
        the reactions alone when no counts are due: one message per socket per flush."""
        self._timer = None
        if self._dirty:
            self._flush_now(self.last_seq, self.policy.coalesces(self._size()))
        elif self._reactions:
            self._last_flush = self._monotonic()
            self.reaction_flushes += 1
            message = Shared({"type": "reactions", "reactions": self._take_reactions()})
            for sub in list(self.subs):
                sub.offer(message, droppable=True)

    def _take_reactions(self) -> dict[str, list[str]] | None:
        reactions, self._reactions = self._reactions, {}
        return reactions or None

    def _flush_now(self, seq: int, coalesced: bool) -> None:
        self._last_flush = self._monotonic()
        self._dirty = False
        self._behind.clear()
        self.flushes += 1
        message = audience_message(seq, self._counts(), coalesced, self._take_reactions())
        for sub in list(self.subs):
            sub.offer(message)

    def forget(self, sub: Outbox) -> None:
        """SUB closed: drop it from the index."""
        self._behind.discard(sub)
        self._seen.discard(sub)
        self._relays.discard(sub)
        user = sub.user
        if user is not None:
            mine = self._by_user.get(user.id)
            if mine is not None:
                mine.discard(sub)
                if not mine:
                    del self._by_user[user.id]
                    self._ids.pop(self._names.pop(user.id, ""), None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._behind.clear()
        self._dirty = False
        self._reactions = {}


class _Arming:
    def cancel(self) -> None:
        return None


_ARMING = _Arming()


class _CatchUp:
    """The ``audience`` message a socket with folded events gets before its next event
    (built once per event, for every such socket)."""

    def __init__(self, broadcast: RoomBroadcast, message: dict[str, Any]) -> None:
        self.broadcast = broadcast
        seq = message.get("seq")
        self.seq = seq - 1 if isinstance(seq, int) else broadcast.last_seq
        self.message: dict[str, Any] | None = None

    def send(self, sub: Outbox) -> None:
        b = self.broadcast
        b._behind.discard(sub)
        if self.message is None:
            self.message = audience_message(self.seq, b._counts(), True)
        sub.offer(self.message)
