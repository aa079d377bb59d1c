"""The moderation desk's tables: reports, the audit log, warnings, suspensions and limits."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from node.store.db import Database

REPORT_STATUSES = ("open", "resolved")


@dataclass(frozen=True, kw_only=True)
class NewReport:
    """What a report is made of before it has an id (local or arrived as a ``Flag``)."""

    origin: str
    origin_domain: str | None
    reporter_id: int | None
    target_user_id: int | None
    target: str
    room_uri: str | None
    category: str
    comment: str
    context: dict[str, Any]
    flag_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Report(NewReport):
    """A stored report: what was filed, plus its id, forwarding and resolution."""

    id: int
    forwarded: bool
    status: str
    note: str
    resolved_by: int | None
    resolved_at: float | None
    created_at: float


@dataclass(frozen=True)
class AuditEntry:
    id: int
    admin: str
    action: str
    target: str
    note: str
    created_at: float


def _report(row: sqlite3.Row) -> Report:
    return Report(
        id=row["id"],
        origin=row["origin"],
        origin_domain=row["origin_domain"],
        reporter_id=row["reporter_id"],
        target_user_id=row["target_user_id"],
        target=row["target"],
        room_uri=row["room_uri"],
        category=row["category"],
        comment=row["comment"],
        context=json.loads(row["context"]),
        forwarded=bool(row["forwarded"]),
        flag_id=row["flag_id"],
        status=row["status"],
        note=row["note"],
        resolved_by=row["resolved_by"],
        resolved_at=row["resolved_at"],
        created_at=row["created_at"],
    )


class ModerationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- reports -------------------------------------------------------------------
    def add_report(self, new: NewReport, now: float) -> int:
        with self.db.transaction():
            cur = self.db.execute(
                "INSERT INTO reports (origin, origin_domain, reporter_id, target_user_id, target,"
                " room_uri, category, comment, context, flag_id, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
                (
                    new.origin,
                    new.origin_domain,
                    new.reporter_id,
                    new.target_user_id,
                    new.target,
                    new.room_uri,
                    new.category,
                    new.comment,
                    json.dumps(new.context),
                    new.flag_id,
                    now,
                ),
            )
        return int(cur.lastrowid or 0)

    def mark_forwarded(self, report_id: int) -> None:
        with self.db.transaction():
            self.db.execute("UPDATE reports SET forwarded = 1 WHERE id = ?", (report_id,))

    def report(self, report_id: int) -> Report | None:
        row = self.db.one("SELECT * FROM reports WHERE id = ?", (report_id,))
        return _report(row) if row else None

    def reports(self, status: str | None, limit: int = 100) -> list[Report]:
        if status is None:
            rows = self.db.all("SELECT * FROM reports ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self.db.all(
                "SELECT * FROM reports WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit)
            )
        return [_report(r) for r in rows]

    def resolve(self, report_id: int, admin_id: int | None, note: str, now: float) -> bool:
        with self.db.transaction():
            cur = self.db.execute(
                "UPDATE reports SET status = 'resolved', note = ?, resolved_by = ?,"
                " resolved_at = ? WHERE id = ?",
                (note, admin_id, now, report_id),
            )
        return cur.rowcount > 0

    def count_reports(self) -> int:
        row = self.db.one("SELECT count(*) FROM reports")
        return int(row[0]) if row else 0

    # ---- accounts ------------------------------------------------------------------
    def suspend(self, user_id: int, now: float) -> None:
        """Suspension and its immediate effects in one transaction: the account's sessions
        go, and so do follows in both directions (as Mastodon severs them)."""
        with self.db.transaction():
            self.db.execute("UPDATE users SET suspended_at = ? WHERE id = ?", (now, user_id))
            self.db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
            self.db.execute(
                "DELETE FROM follows WHERE follower_id = ? OR followee_id = ?", (user_id, user_id)
            )

    def unsuspend(self, user_id: int) -> None:
        with self.db.transaction():
            self.db.execute("UPDATE users SET suspended_at = NULL WHERE id = ?", (user_id,))

    def set_limited(self, user_id: int, limited: bool, now: float) -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE users SET limited_at = ? WHERE id = ?", (now if limited else None, user_id)
            )

    def follower_ids(self, user_id: int) -> list[int]:
        rows = self.db.all(
            "SELECT follower_id FROM follows WHERE followee_id = ? AND state = 'accepted'",
            (user_id,),
        )
        return [r[0] for r in rows]

    def warn(self, user_id: int, note: str, now: float) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO warnings (user_id, note, created_at) VALUES (?, ?, ?)",
                (user_id, note, now),
            )

    def warnings(self, user_id: int) -> list[dict[str, Any]]:
        rows = self.db.all(
            "SELECT note, created_at FROM warnings WHERE user_id = ? ORDER BY id", (user_id,)
        )
        return [{"note": r[0], "created_at": r[1]} for r in rows]

    # ---- audit log -----------------------------------------------------------------
    def audit(
        self, admin_id: int | None, admin: str, action: str, target: str, note: str, now: float
    ) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO moderation_audit (admin_id, admin, action, target, note, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (admin_id, admin, action, target, note, now),
            )

    def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        rows = self.db.all(
            "SELECT id, admin, action, target, note, created_at FROM moderation_audit"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]
