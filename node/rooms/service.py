"""Rooms as a running service: rules from ``model``, state in the store, events to clients.

Live and scheduled rooms are held in memory and written through to SQLite after every
change, so a restarted node has every room, role, hand and ban. After a restart every seat
waits ``reconnect_grace_seconds`` for its client; seats nobody reclaims are freed and a room
left with nobody on stage ends after ``room_empty_grace_seconds`` (docs/api.md).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from node.accounts import handle
from node.clock import Clock
from node.handles import split_handle
from node.rooms import model
from node.rooms.broadcast import (
    AudienceCounts,
    AudiencePolicy,
    RoomBroadcast,
    Shared,
    loop_schedule,
    room_counts,
)
from node.rooms.chat import CHAT_ACTIONS
from node.rooms.chat_service import ChatService
from node.rooms.drafts import RoomDraft, only_fields, parse_description, parse_draft, parse_title
from node.rooms.gate import Gate, NoBlocks, OpenDomains
from node.rooms.hallway import HallwayCard, Viewer, rank
from node.rooms.limits import ActionLimiter
from node.rooms.model import Room, RoomEvent, RoomRuleError, RoomStatus
from node.rooms.subscription import Subscription
from node.rooms.views import RoomViews
from node.settings import Settings
from node.store.db import Database
from node.store.follows import FollowStore
from node.store.rooms import RoomStore
from node.store.rsvps import RsvpStore
from node.store.users import User, UserStore

log = logging.getLogger(__name__)

SCHEDULED_EXPIRY = 3600.0  # a scheduled room not started an hour after its time is dropped

ActionFn = Callable[[Room, int, int, float], list[RoomEvent]]

# How an action uses the request's "user": "self" actions take none, "optional" ones
# default to the actor (mute yourself), "required" ones act on someone.
SELF, OPTIONAL, REQUIRED = "self", "optional", "required"

ACTIONS: dict[str, tuple[ActionFn, str]] = {
    "raise_hand": (lambda r, a, t, now: model.raise_hand(r, a, now), SELF),
    "lower_hand": (lambda r, a, t, now: model.lower_hand(r, a), SELF),
    "invite_to_speak": (lambda r, a, t, now: model.invite_to_speak(r, a, t), REQUIRED),
    "accept_invite": (lambda r, a, t, now: model.accept_invite(r, a, now), SELF),
    "decline_invite": (lambda r, a, t, now: model.decline_invite(r, a), SELF),
    "move_to_audience": (lambda r, a, t, now: model.move_to_audience(r, a, t, now), OPTIONAL),
    "mute": (lambda r, a, t, now: model.mute(r, a, t), OPTIONAL),
    "unmute": (lambda r, a, t, now: model.unmute(r, a, t), OPTIONAL),
    "remove": (lambda r, a, t, now: model.remove(r, a, t, now), REQUIRED),
    "make_moderator": (lambda r, a, t, now: model.make_moderator(r, a, t, now), REQUIRED),
    "unmake_moderator": (lambda r, a, t, now: model.unmake_moderator(r, a, t, now), REQUIRED),
    "invite": (lambda r, a, t, now: model.invite_user(r, a, t), REQUIRED),
    "leave": (lambda r, a, t, now: model.leave(r, a, now), SELF),
    "end": (lambda r, a, t, now: model.end(r, a, now), SELF),
    "start": (lambda r, a, t, now: model.start(r, a, now), SELF),
}


class RoomObserver(Protocol):
    """Media and federation react to room changes through this seam."""

    def room_event(self, room: Room, event: RoomEvent) -> None: ...


class RoomService:
    def __init__(
        self, db: Database, settings: Settings, clock: Clock, gate: Gate | None = None
    ) -> None:
        """GATE decides who may enter (a node without federation has no domain policy)."""
        self.store = RoomStore(db)
        self.users = UserStore(db)
        self.follows = FollowStore(db)
        self.settings = settings
        self.clock = clock
        self.gate = gate or Gate(self.follows, self.users, OpenDomains(), NoBlocks())
        self.audience = AudiencePolicy.from_settings(settings)
        self.views = RoomViews(
            self.users,
            self.follows,
            self.gate,
            settings.base_url,
            RsvpStore(db),
            audience=self.audience,
            monotonic=clock.monotonic,
            names_seconds=settings.audience_names_seconds,
        )
        self._actions = ActionLimiter(
            clock, settings.room_actions_per_second, settings.room_actions_burst
        )
        self._rooms: dict[str, Room] = {}
        self._observers: list[RoomObserver] = []
        self._subs: dict[str, set[Subscription]] = {}
        self._sockets: dict[tuple[str, int], int] = {}
        self._seat_deadlines: dict[tuple[str, int], float] = {}
        # the media engine's latest speaking levels per room (sent only when they change), so
        # a client that joins mid-speech gets them in its first state
        self._levels: dict[str, dict[int, float]] = {}
        self._empty_deadlines: dict[str, float] = {}
        self._held: list[tuple[Subscription, int, str]] | None = None
        self._broadcasts: dict[str, RoomBroadcast] = {}
        # recording (node/recording.py): may HOST record now? raises RoomRuleError when not;
        # and who hears the mixer's speaking levels besides the room's sockets
        self.record_check: Callable[[int], None] | None = None
        self.level_listeners: list[Callable[[str, dict[int, float]], None]] = []
        self.chat = ChatService(
            settings, clock, self.users, self.gate, self._broadcast, self.find_user
        )

    def observe(self, observer: RoomObserver) -> None:
        """OBSERVER hears every event of every room, right after it is saved (media and
        federation; registered by the composition root, since media also talks back)."""
        self._observers.append(observer)

    @contextmanager
    def holding_closes(self) -> Iterator[None]:
        """Closes caused inside happen at exit, so a command's reply can go out first."""
        outer, self._held = self._held, []
        try:
            yield
        finally:
            held, self._held = self._held, outer
            for sub, code, reason in held or []:
                self._close_sub(sub, code, reason)

    def _close_sub(self, sub: Subscription, code: int, reason: str) -> None:
        if self._held is not None:
            self._held.append((sub, code, reason))
        else:
            sub.close(code, reason)

    # ---- start-up and sweeping ----------------------------------------------------
    def load(self) -> None:
        """Bring scheduled and live rooms back after a (re)start; every seat must reconnect."""
        deadline = self.clock.monotonic() + self.settings.reconnect_grace_seconds
        for room in self.store.active():
            self._rooms[room.id] = room
            for user_id in room.participants:
                self._seat_deadlines[(room.id, user_id)] = deadline
            self._check_empty(room)
        log.info("rooms: loaded %d active rooms", len(self._rooms))

    def sweep(self) -> None:
        """Free unclaimed seats and end rooms whose grace period ran out (run_once)."""
        now = self.clock.monotonic()
        for key, due in list(self._seat_deadlines.items()):
            if due > now:
                continue
            del self._seat_deadlines[key]
            room = self._rooms.get(key[0])
            if room and key[1] in room.participants and not self._sockets.get(key):
                self._free_seat(room, key[1])
        wall = self.clock.now()
        for room in list(self._rooms.values()):
            if (
                room.status is RoomStatus.SCHEDULED
                and room.start_time is not None
                and wall > room.start_time + SCHEDULED_EXPIRY
            ):
                log.info("rooms: %s was never started; it expired", room.id)
                self._apply(room, lambda r: model.end(r, None, wall))
        for room_id, due in list(self._empty_deadlines.items()):
            if due > now:
                continue
            del self._empty_deadlines[room_id]
            room = self._rooms.get(room_id)
            if room and room.needs_grace():
                log.info("rooms: %s ended after the empty grace period", room_id)
                self._apply(room, lambda r: model.end(r, None, self.clock.now()))

    def _free_seat(self, room: Room, user_id: int) -> None:
        now = self.clock.now()
        self._apply(room, lambda r: model.leave(r, user_id, now))

    def _check_empty(self, room: Room) -> None:
        if room.needs_grace():
            self._empty_deadlines.setdefault(
                room.id, self.clock.monotonic() + self.settings.room_empty_grace_seconds
            )
        else:
            self._empty_deadlines.pop(room.id, None)

    # ---- creating and reading -----------------------------------------------------
    def parse_draft(self, body: dict[str, Any]) -> RoomDraft:
        return parse_draft(body, self.clock)

    def create(self, host: User, draft: RoomDraft) -> Room:
        hosting = sum(1 for room in self._rooms.values() if room.host_id == host.id)
        if hosting >= self.settings.rooms_per_user:
            raise RoomRuleError(
                "conflict",
                f"you already host {hosting} scheduled or live rooms; end one first",
            )
        if draft.record:
            self._check_record(host.id)
        now = self.clock.now()
        room = Room(
            id=secrets.token_urlsafe(9),
            host_id=host.id,
            title=draft.title,
            description=draft.description,
            join_mode=draft.join_mode,
            status=RoomStatus.SCHEDULED if draft.start_time else RoomStatus.LIVE,
            invite_token=secrets.token_urlsafe(24),
            created_at=now,
            start_time=draft.start_time,
            started_at=None if draft.start_time else now,
            record=draft.record,
        )
        self.store.insert(room)
        self._rooms[room.id] = room
        self._check_empty(room)
        log.info("rooms: %s created by %s (%s)", room.id, host.username, room.status.value)
        self._notify(room, RoomEvent("room_created", {}))
        return room

    def get(self, room_id: str) -> Room:
        room = self.find(room_id)
        if room is None:
            raise RoomRuleError("not_found", "no such room")
        return room

    def find(self, room_id: str) -> Room | None:
        """Any room of this node, ended ones from the store; None if there is no such room."""
        return self._rooms.get(room_id) or self.store.get(room_id)

    def active(self, room_id: str) -> Room | None:
        """A scheduled or live room (held in memory); None for ended or unknown rooms."""
        return self._rooms.get(room_id)

    def live(self, room_id: str) -> Room | None:
        """The room if it is live now (media and trunks only exist for live rooms)."""
        room = self._rooms.get(room_id)
        return room if room is not None and room.status is RoomStatus.LIVE else None

    def active_rooms(self) -> list[Room]:
        """Every scheduled and live room (the node's metrics count them at scrape time)."""
        return list(self._rooms.values())

    def hosted_by(self, user_id: int) -> list[Room]:
        """The scheduled and live rooms USER_ID hosts (at most ``rooms_per_user``)."""
        return [room for room in self._rooms.values() if room.host_id == user_id]

    def hallway(self, viewer: User) -> list[Room]:
        me = Viewer(
            user_id=viewer.id,
            following=frozenset(self.follows.following_ids(viewer.id)),
            followed_by=frozenset(
                uid for uid, _ in self.follows.page(viewer.id, "followers", "accepted", 10**6, 0)
            ),
        )
        return rank(self._rooms.values(), me)

    # ---- acting -------------------------------------------------------------------
    def join(self, room_id: str, user: User, invite_token: str | None = None) -> Room:
        room = self.get(room_id)
        followed = self.gate.admit(room, user, invite_token)
        now = self.clock.now()
        live = bool(self._sockets.get((room.id, user.id)))
        self._apply(
            room,
            lambda r: model.join(
                r,
                user.id,
                now,
                followed_by_moderator=followed,
                invite_token=invite_token,
                connected=live,
            ),
        )
        if not live:
            # held for reconnect_grace_seconds until a socket (or a trunk) claims it
            self._seat_deadlines.setdefault(
                (room.id, user.id), self.clock.monotonic() + self.settings.reconnect_grace_seconds
            )
        return room

    def act(self, room_id: str, actor: User, action: str, target: str | None = None) -> Room:
        if action in CHAT_ACTIONS:  # chat moderation (node/rooms/chat_service.py)
            room = self.get(room_id)
            self.chat.command(room, actor, action, target)
            return room
        if action not in ACTIONS:
            raise RoomRuleError("not_found", f"unknown room action {action!r}")
        rule, target_mode = ACTIONS[action]
        room = self.get(room_id)
        if action != "leave" and not self._actions.allow((room.id, actor.id)):
            raise RoomRuleError("rate_limited", "too many room actions; slow down")
        if target is not None and target_mode == SELF:
            raise RoomRuleError("invalid", f"{action} takes no 'user'")
        if target is None:
            if target_mode == REQUIRED:
                raise RoomRuleError("invalid", f"{action} needs a 'user'")
            target_id = actor.id
        else:
            target_user = self.find_user(target) if isinstance(target, str) else None
            if target_user is None:
                raise RoomRuleError("not_found", f"no user named {target!r}")
            target_id = target_user.id
        self.gate.check_action(room, action, actor.id, target_id)
        now = self.clock.now()
        self._apply(room, lambda r: rule(r, actor.id, target_id, now))
        return room

    def update_details(self, room_id: str, actor: User, body: dict[str, Any]) -> Room:
        only_fields(body, {"title", "description", "record"})
        room = self.get(room_id)
        if not self._actions.allow((room.id, actor.id)):
            raise RoomRuleError("rate_limited", "too many room actions; slow down")
        raw_title, raw_description = body.get("title"), body.get("description")
        title = None if raw_title is None else parse_title(raw_title)
        description = None if raw_description is None else parse_description(raw_description)
        record = body.get("record")
        if record is not None:  # every field is checked before anything changes
            if not isinstance(record, bool):
                raise RoomRuleError("invalid", "record must be true or false")
            if record and not room.record and actor.id == room.host_id:
                self._check_record(room.host_id)
            self._apply(room, lambda r: model.set_record(r, actor.id, record))
            if set(body) == {"record"}:
                return room
        self._apply(room, lambda r: model.update_details(r, actor.id, title, description))
        return room

    def _check_record(self, host_id: int) -> None:
        if not self.settings.recording_allowed:
            raise RoomRuleError("forbidden", "recording is turned off on this node")
        if self.record_check is not None:
            self.record_check(host_id)

    def set_recording(self, room_id: str, on: bool, reason: str) -> None:
        """The node's own change (quota reached, disk full): an event everyone sees."""
        room = self._rooms.get(room_id)
        if room is not None and room.record != on:
            self._apply(room, lambda r: model.set_record(r, r.host_id, on, reason))

    def _apply(self, room: Room, change: Callable[[Room], list[RoomEvent]]) -> list[RoomEvent]:
        if room.id not in self._rooms:
            raise RoomRuleError("conflict", f"the room is {room.status.value}")
        events = change(room)
        if not events:
            return events
        ended = room.status is RoomStatus.ENDED
        touched: set[int] | None = None if ended else _touched(events)
        room.seq += len(events)
        try:
            self.store.save(room, touched)
        except Exception:
            # the transaction rolled back: memory goes back to what the store holds, so the
            # room is never half-changed (a rule ran, the write did not)
            self._reload(room.id)
            raise
        first = room.seq - len(events) + 1
        for offset, event in enumerate(events):
            self._publish(room, first + offset, event)
            self._notify(room, event)
        if ended:
            self._close_room(room)
        else:
            self._check_empty(room)
        return events

    def _reload(self, room_id: str) -> None:
        stored = self.store.get(room_id)
        if stored is not None and stored.status is not RoomStatus.ENDED:
            self._rooms[room_id] = stored
        else:
            self._rooms.pop(room_id, None)
        log.error("rooms: %s: a write failed; the room was reloaded from the store", room_id)

    def _close_room(self, room: Room) -> None:
        self._rooms.pop(room.id, None)
        self.chat.forget(room.id)
        self._levels.pop(room.id, None)
        self._actions.forget(lambda key: isinstance(key, tuple) and key[0] == room.id)
        self._empty_deadlines.pop(room.id, None)
        for key in [k for k in self._seat_deadlines if k[0] == room.id]:
            del self._seat_deadlines[key]
        broadcast = self._broadcasts.pop(room.id, None)
        if broadcast is not None:
            broadcast.close()
        for sub in self._subs.pop(room.id, set()):
            self._close_sub(sub, 1000, "room ended")

    def _notify(self, room: Room, event: RoomEvent) -> None:
        for observer in self._observers:
            observer.room_event(room, event)

    # ---- live connections ---------------------------------------------------------
    def connect(self, room_id: str, user: User, invite_token: str | None = None) -> Subscription:
        """A client opened the room's WebSocket: join (or reclaim the seat) and subscribe."""
        key = (room_id, user.id)
        self._sockets[key] = self._sockets.get(key, 0) + 1
        try:
            room = self.join(room_id, user, invite_token)
        except RoomRuleError:
            self._release_socket(key)
            raise
        self._seat_deadlines.pop(key, None)
        sub = Subscription(room.id, user, self.settings.ws_queue_size)
        self._subs.setdefault(room.id, set()).add(sub)
        return sub

    def _release_socket(self, key: tuple[str, int]) -> int:
        count = self._sockets.get(key, 0) - 1
        if count > 0:
            self._sockets[key] = count
        else:
            self._sockets.pop(key, None)
        return max(count, 0)

    def watch(self, room_id: str) -> Subscription:
        """Follow a live room's events without taking a seat (a relay trunk does this)."""
        room = self._rooms.get(room_id)
        if room is None or room.status is not RoomStatus.LIVE:
            raise RoomRuleError("conflict", "the room is not live")
        sub = Subscription(room.id, None, max(self.settings.ws_queue_size, 1024))
        self._subs.setdefault(room.id, set()).add(sub)
        return sub

    def unwatch(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.room_id)
        if subs is not None:
            subs.discard(sub)
        broadcast = self._broadcasts.get(sub.room_id)
        if broadcast is not None:
            broadcast.forget(sub)

    def hold_seat(self, room_id: str, user: User) -> None:
        """A remote participant's node is connected: their seat counts as connected."""
        key = (room_id, user.id)
        self._sockets[key] = self._sockets.get(key, 0) + 1
        self._seat_deadlines.pop(key, None)
        room = self._rooms.get(room_id)
        if room is not None and user.id in room.participants:
            self._apply(room, lambda r: model.join(r, user.id, self.clock.now()))

    def release_seat(self, room_id: str, user: User) -> None:
        """The remote participant's node went away: the seat waits, then is freed."""
        key = (room_id, user.id)
        if self._release_socket(key):
            return
        room = self._rooms.get(room_id)
        if room is None or user.id not in room.participants:
            return
        self._apply(room, lambda r: model.disconnect(r, user.id))
        self._seat_deadlines[key] = self.clock.monotonic() + self.settings.reconnect_grace_seconds

    def forget_user(self, user_id: int) -> None:
        """A deleted account leaves every live room it sits in (a quiet ``left``)."""
        now = self.clock.now()
        for room in list(self._rooms.values()):
            if user_id in room.participants:
                self._apply(room, lambda r: model.leave(r, user_id, now))
            self._sockets.pop((room.id, user_id), None)
            self._seat_deadlines.pop((room.id, user_id), None)

    def find_user(self, name: str) -> User | None:
        """A local ``alice``, a remote ``bob@host[:port]`` (as a room view shows it, in any
        case, node/handles.py) or a remote actor's URI, known to this node."""
        if name.startswith(("https://", "http://")):
            return self.users.by_actor_uri(name)
        try:
            username, domain = split_handle(name)
        except ValueError:
            return None
        if domain is None:
            return self.users.by_name(username.lower())
        return self.users.by_handle(username, domain)

    def disconnect(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.room_id)
        if subs is not None:
            subs.discard(sub)
        broadcast = self._broadcasts.get(sub.room_id)
        if broadcast is not None:
            broadcast.forget(sub)
        if sub.user is None:
            self.unwatch(sub)
            return
        user_id = sub.user.id
        key = (sub.room_id, user_id)
        if self._release_socket(key):
            return
        room = self._rooms.get(sub.room_id)
        if room is None or user_id not in room.participants:
            return
        self._apply(room, lambda r: model.disconnect(r, user_id))
        self._seat_deadlines[key] = self.clock.monotonic() + self.settings.reconnect_grace_seconds

    def send_to(self, room_id: str, user_id: int, message: dict[str, Any]) -> None:
        """A message for one participant's clients only (WebRTC signalling)."""
        for sub in self._subs.get(room_id, ()):
            if sub.user is not None and sub.user.id == user_id:
                sub.offer(message)

    def report_levels(self, room_id: str, levels: dict[int, float]) -> None:
        """Speaking levels from the media engine: sent at once, never stored."""
        room = self._rooms.get(room_id)
        if room is None:
            return
        if levels:
            self._levels[room_id] = dict(levels)
        else:
            self._levels.pop(room_id, None)
        for listener in self.level_listeners:
            listener(room_id, levels)
        users = self.users.many(list(levels))
        message = {
            "type": "speaking",
            "seq": room.seq,
            "levels": {handle(users[u]): round(v, 3) for u, v in levels.items() if u in users},
        }
        for sub in self._subs.get(room_id, ()):
            sub.offer(message, droppable=True)

    def _broadcast(
        self, room_id: str, message: dict[str, Any], skip: frozenset[int], droppable: bool
    ) -> None:
        """MESSAGE to every socket of the room (relay trunks too) but those of SKIP. A
        coalesced room's ``reactions`` ride on its broadcaster's next flush instead."""
        if message.get("type") == "reactions":
            subs = self._subs.get(room_id)
            if not subs or self._fanout(room_id, subs).react(message.get("reactions")):
                return
        message = Shared(message)  # encoded once for all the room's sockets
        for sub in list(self._subs.get(room_id, ())):
            if sub.user is None or sub.user.id not in skip:
                sub.offer(message, droppable=droppable)

    def _publish(self, room: Room, seq: int, event: RoomEvent) -> None:
        subs = self._subs.get(room.id)
        if not subs:
            return
        message = self.event_message(room, seq, event)
        fanout = self._fanout(room.id, subs)
        fanout.publish(message)
        if event.kind not in ("left", "removed"):
            return
        gone = event.data.get("user")
        for sub in fanout.sockets_of(gone) if isinstance(gone, int) else ():
            if sub.user is not None and sub.user.id == gone:
                subs.discard(sub)
                if event.kind == "removed":
                    self._close_sub(sub, 4003, "removed from the room")
                else:
                    self._close_sub(sub, 1000, "left the room")

    def _fanout(self, room_id: str, subs: set[Subscription]) -> RoomBroadcast:
        """The room's fan-out (node/rooms/broadcast.py), over the room's subscriptions."""
        broadcast = self._broadcasts.get(room_id)
        if broadcast is None or broadcast.subs is not subs:
            if broadcast is not None:
                broadcast.close()
            broadcast = self._broadcasts[room_id] = RoomBroadcast(
                self.audience,
                subs,
                counts=lambda: self.audience_counts(room_id),
                size=lambda: len(room.participants) if (room := self.active(room_id)) else 0,
                moderators=lambda: room.moderator_ids() if (room := self.active(room_id)) else (),
                monotonic=self.clock.monotonic,
                schedule=loop_schedule,
            )
        return broadcast

    def audience_counts(self, room_id: str) -> AudienceCounts:
        room = self._rooms.get(room_id)
        return room_counts(room) if room is not None else AudienceCounts(0, 0, 0)

    def close_all(self) -> list[Subscription]:
        subs = [s for group in self._subs.values() for s in group]
        for sub in subs:
            sub.close(1001, "server shutting down")
        return subs

    # ---- views (what clients see; node/rooms/views.py) ----------------------------
    def event_message(self, room: Room, seq: int, event: RoomEvent) -> dict[str, Any]:
        return self.views.event_message(room, seq, event)

    def view(self, room: Room, viewer: User | None) -> dict[str, Any]:
        data = self.views.view(room, viewer, self._levels.get(room.id, {}))
        data["chat"] = self.chat.view(room, viewer)
        return data

    def card(self, room: Room, viewer: User) -> HallwayCard:
        return self.views.card(room, viewer, self._levels.get(room.id, {}))


def _touched(events: Iterable[RoomEvent]) -> set[int]:
    return {e.data["user"] for e in events if isinstance(e.data.get("user"), int)}
