"""The persisted delivery queue: one row per (activity, destination inbox).

States and allowed moves are declared in ``federation.delivery``; this module only stores
them. Due rows are claimed atomically (``UPDATE … RETURNING``) so two workers never send
the same row; claims are released when a worker starts, so a crash loses nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from federation.delivery import DeliveryState, HostBackoff, check_transition
from node.store.db import Database


@dataclass(frozen=True)
class Delivery:
    id: int
    activity_id: str
    inbox: str
    host: str
    state: DeliveryState
    attempts: int
    next_attempt_at: float
    signer_id: int | None
    document: dict[str, Any]


@dataclass(frozen=True)
class DeliveryRow:
    """A queue row as the operator sees it (``salon admin deliveries``)."""

    id: int
    activity_id: str
    inbox: str
    state: str
    attempts: int
    next_attempt_at: float
    last_status: int | None
    last_error: str


class DeliveryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(
        self,
        activity_id: str,
        document: dict[str, Any],
        signer_id: int | None,
        inboxes: list[tuple[str, str]],
        now: float,
        public: bool = False,
    ) -> int:
        """Store the activity once and one pending row per (inbox, host); rows added."""
        with self.db.transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO outbox_activities (id, signer_id, document, public,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (activity_id, signer_id, json.dumps(document), int(public), now),
            )
            added = 0
            for inbox, host in inboxes:
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO deliveries (activity_id, inbox, host, state,"
                    " next_attempt_at, created_at, updated_at)"
                    " VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                    (activity_id, inbox, host, now, now, now),
                )
                added += cur.rowcount
        return added

    def release_claims(self) -> int:
        """At start-up: rows a previous process claimed but never finished are due again."""
        with self.db.transaction():
            cur = self.db.execute("UPDATE deliveries SET claimed = 0 WHERE claimed = 1")
        return cur.rowcount

    def claim_due(self, now: float, limit: int) -> list[Delivery]:
        with self.db.transaction():
            rows = self.db.all(
                "UPDATE deliveries SET claimed = 1 WHERE id IN (SELECT id FROM deliveries"
                " WHERE state = 'pending' AND claimed = 0 AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, id LIMIT ?)"
                " RETURNING id, activity_id, inbox, host, state, attempts, next_attempt_at",
                (now, limit),
            )
            documents: dict[str, tuple[int | None, dict[str, Any]]] = {}
            for activity_id in {r["activity_id"] for r in rows}:
                found = self.db.one(
                    "SELECT signer_id, document FROM outbox_activities WHERE id = ?",
                    (activity_id,),
                )
                if found is not None:
                    documents[activity_id] = (found[0], json.loads(found[1]))
        out = []
        for r in sorted(rows, key=lambda r: (r["next_attempt_at"], r["id"])):
            signer, document = documents.get(r["activity_id"], (None, {}))
            out.append(
                Delivery(
                    id=r["id"],
                    activity_id=r["activity_id"],
                    inbox=r["inbox"],
                    host=r["host"],
                    state=DeliveryState(r["state"]),
                    attempts=r["attempts"],
                    next_attempt_at=r["next_attempt_at"],
                    signer_id=signer,
                    document=document,
                )
            )
        return out

    def finish(
        self,
        delivery: Delivery,
        state: DeliveryState,
        *,
        now: float,
        attempted: bool,
        next_attempt_at: float | None = None,
        status: int | None = None,
        error: str = "",
    ) -> None:
        """Record the outcome and unclaim; ``attempted`` False defers without using a try."""
        check_transition(delivery.state, state)
        attempts = delivery.attempts + (1 if attempted else 0)
        with self.db.transaction():
            self.db.execute(
                "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?,"
                " last_status = coalesce(?, last_status), last_error = ?, claimed = 0,"
                " updated_at = ? WHERE id = ?",
                (
                    state.value,
                    attempts,
                    next_attempt_at if next_attempt_at is not None else delivery.next_attempt_at,
                    status,
                    error,
                    now,
                    delivery.id,
                ),
            )

    def host(self, host: str) -> tuple[int, float | None]:
        row = self.db.one(
            "SELECT consecutive_failures, available_at FROM delivery_hosts WHERE host = ?",
            (host,),
        )
        return (int(row[0]), row[1]) if row else (0, None)

    def put_host(self, backoff: HostBackoff, available_at: float | None) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO delivery_hosts (host, consecutive_failures, available_at)"
                " VALUES (?, ?, ?) ON CONFLICT (host) DO UPDATE SET"
                " consecutive_failures = excluded.consecutive_failures,"
                " available_at = excluded.available_at",
                (backoff.host, backoff.consecutive_failures, available_at),
            )

    def wake_host(self, host: str, now: float) -> int:
        """Make HOST's pending rows due now (it is back); how many were waiting."""
        with self.db.transaction():
            cur = self.db.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE host = ? AND state = 'pending'"
                " AND claimed = 0 AND next_attempt_at > ?",
                (now, host, now),
            )
        return cur.rowcount

    def summary(self) -> dict[str, int]:
        rows = self.db.all("SELECT state, count(*) FROM deliveries GROUP BY state")
        counts = {state.value: 0 for state in DeliveryState}
        counts.update({r[0]: int(r[1]) for r in rows})
        return counts

    def count_in(self, state: DeliveryState) -> int:
        """Rows in STATE: a range of the ``deliveries_due`` index, not a scan of the table
        (which keeps every sent row), so metrics may ask at every scrape."""
        row = self.db.one("SELECT count(*) FROM deliveries WHERE state = ?", (state.value,))
        return int(row[0]) if row else 0

    def recent(self, limit: int = 20, state: str | None = None) -> list[DeliveryRow]:
        where = "WHERE state = ?" if state else ""
        params: tuple[Any, ...] = (state, limit) if state else (limit,)
        rows = self.db.all(
            f"SELECT id, activity_id, inbox, state, attempts, next_attempt_at, last_status,"
            f" last_error FROM deliveries {where} ORDER BY updated_at DESC, id DESC LIMIT ?",
            params,
        )
        return [
            DeliveryRow(
                id=r[0],
                activity_id=r[1],
                inbox=r[2],
                state=r[3],
                attempts=r[4],
                next_attempt_at=r[5],
                last_status=r[6],
                last_error=r[7],
            )
            for r in rows
        ]

    def for_activity(self, activity_id: str) -> list[DeliveryRow]:
        return [r for r in self.recent(10**6) if r.activity_id == activity_id]

    def outbox(self, signer_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
        rows = self.db.all(
            "SELECT document FROM outbox_activities WHERE signer_id = ? AND public = 1"
            " ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            (signer_id, limit, offset),
        )
        return [json.loads(r[0]) for r in rows]

    def outbox_count(self, signer_id: int) -> int:
        row = self.db.one(
            "SELECT count(*) FROM outbox_activities WHERE signer_id = ? AND public = 1",
            (signer_id,),
        )
        return int(row[0]) if row else 0
