"""Reports and the moderation desk: one service for the web API, the admin page and the CLI.

A report lands on the reporter's own node. A report about someone on another node may be
forwarded there as a ``Flag`` (through ``ReportRelay``, which federation implements);
incoming ``Flag``s arrive here as remote reports. Every action an admin takes is written
to the audit log in the same call that takes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from node.accounts import handle
from node.auth import AttemptLimiter
from node.clock import Clock
from node.errors import DomainError
from node.remote import DomainControls, RemotePeople, ReportedRoom, ReportRelay
from node.rooms.model import RoomRuleError
from node.rooms.service import RoomService
from node.settings import Settings
from node.store.db import Database
from node.store.moderation import REPORT_STATUSES, ModerationStore, NewReport, Report
from node.store.rooms import RoomStore
from node.store.users import User, UserStore
from node.text import check_text

log = logging.getLogger(__name__)

CATEGORIES = ("spam", "harassment", "hate", "illegal", "other")
MAX_COMMENT = 1000
MAX_NOTE = 1000
MAX_TARGET = 500
REPORT_WINDOW = 3600.0
DOMAIN_POLICIES = ("suspend", "limit", "allow")
#: The name the audit log gives actions taken with ``salon admin`` on the server itself.
CLI_OPERATOR = "salon admin (CLI)"


class ModerationError(DomainError):
    """A report or a desk action that cannot be done."""


@dataclass(frozen=True)
class Target:
    """What a report is about: a user, and for a room report the room and its speakers."""

    user: User
    label: str
    room_uri: str | None
    context: dict[str, Any]
    remote_room: ReportedRoom | None = None


class ModerationDesk:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        rooms: RoomService | None,
        people: RemotePeople | None,
        relay: ReportRelay | None,
        domains: DomainControls | None,
    ) -> None:
        """ROOMS is None in the CLI (no room runs there); RELAY and DOMAINS None on a node
        built without federation."""
        self.store = ModerationStore(db)
        self.users = UserStore(db)
        self.room_store = RoomStore(db)
        self.settings = settings
        self.clock = clock
        self.rooms = rooms
        self.people = people
        self.relay = relay
        self.domain_controls = domains
        self.limiter = AttemptLimiter(clock, settings.reports_per_user_per_hour, REPORT_WINDOW)

    # ---- filing reports --------------------------------------------------------------
    async def report(
        self, reporter: User, target: object, category: object, comment: object, forward: object
    ) -> dict[str, Any]:
        """File a report; at most ``reports_per_user_per_hour`` attempts with well-formed
        fields per account, validated before anything is stored."""
        key = [f"user:{reporter.id}"]
        wait = self.limiter.retry_after(key)
        if wait is not None:
            raise ModerationError("rate_limited", "too many reports; try again later", wait)
        if category not in CATEGORIES:
            raise ModerationError("invalid", f"category must be one of {', '.join(CATEGORIES)}")
        text = check_text("" if comment is None else comment, "comment", MAX_COMMENT, lines=True)
        if not isinstance(forward, bool):
            raise ModerationError("invalid", "forward must be true or false")
        raw = check_text(target, "target", MAX_TARGET).strip()
        # counted before the (possibly remote) lookup, so reports sent at once count too
        self.limiter.record(key)
        found = await self._target(raw)
        if found.user.id == reporter.id:
            raise ModerationError("invalid", "you cannot report yourself")
        new = NewReport(
            origin="local",
            origin_domain=None,
            reporter_id=reporter.id,
            target_user_id=found.user.id,
            target=found.label,
            room_uri=found.room_uri,
            category=str(category),
            comment=text,
            context=found.context,
        )
        report_id = self.store.add_report(new, self.clock.now())
        remote = forward and not found.user.is_local and self.relay is not None
        if remote and self.relay and self.relay.forward(found.user, found.remote_room, text):
            self.store.mark_forwarded(report_id)
        report = self.store.report(report_id)
        assert report is not None
        return self.view(report)

    async def _target(self, raw: str) -> Target:
        if not raw:
            raise ModerationError("invalid", "target is required")
        base = self.settings.base_url + "/rooms/"
        room_id = raw[len(base) :] if raw.startswith(base) else raw
        if "/" not in room_id and self.rooms is not None:
            room = self.rooms.find(room_id)
            if room is not None:
                return self._local_room(room_id)
        if raw.startswith(("http://", "https://")):
            remote = self.relay.remote_room(raw) if self.relay is not None else None
            if remote is None:
                raise ModerationError("not_found", "no room known at that address")
            context = {
                "room": {"uri": remote.uri, "title": remote.title, "host": handle(remote.host)},
                "speakers": list(remote.speakers),
            }
            return Target(remote.host, remote.uri, remote.uri, context, remote)
        user = await self._user(raw)
        return Target(user, handle(user), None, {"user": handle(user)})

    def _local_room(self, room_id: str) -> Target:
        assert self.rooms is not None
        room = self.rooms.get(room_id)
        users = self.users.many([room.host_id, *(p.user_id for p in room.speakers())])
        host = users.get(room.host_id)
        if host is None:
            raise ModerationError("not_found", "no such room")
        uri = f"{self.settings.base_url}/rooms/{room.id}"
        context = {
            "room": {"uri": uri, "id": room.id, "title": room.title, "host": handle(host)},
            "speakers": [handle(users[p.user_id]) for p in room.speakers() if p.user_id in users],
        }
        return Target(host, uri, uri, context)

    async def _user(self, name: str) -> User:
        bare = name.lstrip("@")
        if "@" in bare:
            user_name, _, domain = bare.partition("@")
            if domain.lower() == _host(self.settings.base_url):
                bare = user_name
        if "@" not in bare:
            user = self.users.by_name(bare)
        else:
            user_name, _, domain = bare.partition("@")
            user = self.users.by_handle(user_name, domain.lower())
            if user is None and self.people is not None:
                user = await self.people.lookup(bare)
        if user is None:
            raise ModerationError("not_found", f"no user or room {name!r}")
        return user

    def receive_flag(
        self,
        origin_domain: str,
        flag_id: str,
        target: User,
        room_uri: str | None,
        comment: str,
    ) -> int:
        """A ``Flag`` from another node (already checked to name only our objects): a remote
        report with no reporter; its comment was cut to ``MAX_COMMENT`` by the caller."""
        context: dict[str, Any] = {"user": handle(target)}
        room_id = room_uri.rsplit("/", 1)[-1] if room_uri else None
        if room_id and self.rooms is not None and self.rooms.find(room_id) is not None:
            context = self._local_room(room_id).context
        new = NewReport(
            origin="remote",
            origin_domain=origin_domain,
            reporter_id=None,
            target_user_id=target.id,
            target=room_uri or handle(target),
            room_uri=room_uri,
            category="other",
            comment=comment,
            context=context,
            flag_id=flag_id,
        )
        return self.store.add_report(new, self.clock.now())

    # ---- the desk ------------------------------------------------------------------
    def reports(self, admin: User | None, status: str | None = None) -> list[dict[str, Any]]:
        _admin(admin)
        if status is not None and status not in REPORT_STATUSES:
            raise ModerationError("invalid", "status must be open or resolved")
        return [self.view(r) for r in self.store.reports(status)]

    def report_view(self, admin: User | None, report_id: int) -> dict[str, Any]:
        _admin(admin)
        return self.view(self._report(report_id))

    def view(self, report: Report) -> dict[str, Any]:
        people = self.users.many(
            [i for i in (report.reporter_id, report.target_user_id, report.resolved_by) if i]
        )

        def name(user_id: int | None) -> str | None:
            user = people.get(user_id) if user_id else None
            return handle(user) if user else None

        target = people.get(report.target_user_id) if report.target_user_id else None
        return {
            "id": report.id,
            "status": report.status,
            "remote": report.origin == "remote",
            "origin": report.origin_domain,
            "reporter": name(report.reporter_id),
            "target": report.target,
            "target_user": name(report.target_user_id),
            "target_local": target.is_local if target else None,
            "target_suspended": target.suspended if target else None,
            "room": report.room_uri,
            "category": report.category,
            "comment": report.comment,
            "context": report.context,
            "forwarded": report.forwarded,
            "note": report.note,
            "resolved_by": name(report.resolved_by),
            "resolved_at": report.resolved_at,
            "created_at": report.created_at,
        }

    def _report(self, report_id: int) -> Report:
        report = self.store.report(report_id)
        if report is None:
            raise ModerationError("not_found", f"no report {report_id}")
        return report

    def resolve(self, admin: User | None, report_id: int, note: object) -> dict[str, Any]:
        _admin(admin)
        text = _note(note)
        self._report(report_id)
        self.store.resolve(report_id, admin.id if admin else None, text, self.clock.now())
        self._audit(admin, "resolve", f"report {report_id}", text)
        return self.view(self._report(report_id))

    async def warn(self, admin: User | None, name: str, note: object) -> None:
        _admin(admin)
        text = _note(note, required=True)
        user = await self._user(name)
        if not user.is_local:
            raise ModerationError("invalid", "only accounts on this node can be warned")
        self.store.warn(user.id, text, self.clock.now())
        self._audit(admin, "warn", handle(user), text)

    def warnings(self, user: User) -> list[dict[str, Any]]:
        return self.store.warnings(user.id)

    async def suspend(self, admin: User | None, name: str, note: object = "") -> dict[str, Any]:
        """Local: its live rooms end, its seats go, ``Delete`` of its actor goes to its
        followers' nodes, then sessions and follows go. Remote: refused everywhere here."""
        _admin(admin)
        text = _note(note)
        user = await self._user(name)
        if user.is_admin and user.is_local:
            raise ModerationError("forbidden", "an admin account cannot be suspended")
        if user.suspended:
            raise ModerationError("conflict", f"{handle(user)} is already suspended")
        ended = self._end_rooms(user)
        if self.rooms is not None:
            self.rooms.forget_user(user.id)
        inboxes = 0
        if user.is_local and self.relay is not None:
            inboxes = self.relay.account_suspended(user)
        self.store.suspend(user.id, self.clock.now())
        self._audit(admin, "suspend", handle(user), text)
        log.info("moderation: suspended %s (%d room(s) ended)", handle(user), len(ended))
        return {"user": handle(user), "rooms_ended": ended, "delete_sent_to": inboxes}

    def _end_rooms(self, user: User) -> list[str]:
        if not user.is_local or self.rooms is None:
            return []
        ended = []
        for room_id in self.room_store.active_hosted_by(user.id):
            try:
                self.rooms.act(room_id, user, "end")
                ended.append(room_id)
            except RoomRuleError as exc:
                log.warning("moderation: cannot end room %s: %s", room_id, exc.message)
        return ended

    async def unsuspend(self, admin: User | None, name: str, note: object = "") -> None:
        _admin(admin)
        text = _note(note)
        user = await self._user(name)
        if not user.suspended:
            raise ModerationError("conflict", f"{handle(user)} is not suspended")
        self.store.unsuspend(user.id)
        self._audit(admin, "unsuspend", handle(user), text)

    async def limit(
        self, admin: User | None, name: str, note: object = "", limited: bool = True
    ) -> None:
        _admin(admin)
        text = _note(note)
        user = await self._user(name)
        if user.is_local:
            raise ModerationError("invalid", "only accounts on other nodes can be limited")
        self.store.set_limited(user.id, limited, self.clock.now())
        self._audit(admin, "limit" if limited else "unlimit", handle(user), text)

    def domains(self, admin: User | None) -> list[dict[str, Any]]:
        _admin(admin)
        controls = self._domains()
        return [
            {"domain": d, "policy": p, "created_at": t, "follows": controls.affected_follows(d)}
            for d, p, t in controls.policies()
        ]

    def set_domain(self, admin: User | None, domain: object, policy: object) -> dict[str, Any]:
        _admin(admin)
        name = check_text(domain, "domain", 253).strip().lower()
        if not name or any(c in name for c in "/@ ") or policy not in DOMAIN_POLICIES:
            raise ModerationError(
                "invalid", f"a domain and a policy ({', '.join(DOMAIN_POLICIES)}) are required"
            )
        controls = self._domains()
        affected = controls.affected_follows(name)
        controls.set_policy(name, str(policy), self.clock.now())
        self._audit(admin, f"domain {policy}", name, f"{affected} follow(s) affected")
        return {"domain": name, "policy": policy, "follows": affected}

    def remove_domain(self, admin: User | None, domain: str) -> None:
        _admin(admin)
        if not self._domains().remove_policy(domain):
            raise ModerationError("not_found", f"no policy for {domain}")
        self._audit(admin, "domain removed", domain.lower(), "")

    def _domains(self) -> DomainControls:
        if self.domain_controls is None:
            raise ModerationError("not_found", "this node has no federation")
        return self.domain_controls

    def audit_log(self, admin: User | None) -> list[dict[str, Any]]:
        _admin(admin)
        return [
            {
                "id": e.id,
                "admin": e.admin,
                "action": e.action,
                "target": e.target,
                "note": e.note,
                "created_at": e.created_at,
            }
            for e in self.store.audit_log()
        ]

    def _audit(self, admin: User | None, action: str, target: str, note: str) -> None:
        who = handle(admin) if admin else CLI_OPERATOR
        self.store.audit(admin.id if admin else None, who, action, target, note, self.clock.now())


def _admin(user: User | None) -> None:
    """None is the operator at the server's shell (``salon admin``); else an admin flag."""
    if user is not None and not (user.is_admin and user.is_local and not user.suspended):
        raise ModerationError("forbidden", "only admins of this node may use the desk")


def _note(raw: object, *, required: bool = False) -> str:
    text = check_text(raw if raw is not None else "", "note", MAX_NOTE, lines=True).strip()
    if required and not text:
        raise ModerationError("invalid", "note is required")
    return text


def _host(base_url: str) -> str:
    return base_url.split("://", 1)[-1].split("/", 1)[0].lower()
