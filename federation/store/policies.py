"""Operator domain policies: suspend, limit, allow (docs/federation.md §8)."""

from __future__ import annotations

from node.store.db import Database

POLICIES = ("suspend", "limit", "allow")


class DomainPolicies:
    """The policy table and the two questions every path asks of it."""

    def __init__(self, db: Database, *, allowlist_mode: bool) -> None:
        self.db = db
        self.allowlist_mode = allowlist_mode

    def refused(self, host: str) -> bool:
        """Suspended, or not allowed while the node runs in allowlist mode."""
        policy = self.policy_for(host)
        if policy == "suspend":
            return True
        return self.allowlist_mode and policy != "allow"

    def limited(self, host: str) -> bool:
        return self.policy_for(host) == "limit"

    def set_policy(self, domain: str, policy: str, now: float) -> None:
        domain = domain.lower()
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO domain_policies (domain, policy, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (domain) DO UPDATE SET policy = excluded.policy",
                (domain, policy, now),
            )
            if policy == "suspend":
                # Mastodon severs relationships with a suspended domain.
                match = "domain = ? OR domain LIKE ? OR domain LIKE ?"
                params = (domain, f"%.{domain}", f"{domain}:%")
                self.db.execute(
                    f"DELETE FROM follows WHERE follower_id IN (SELECT id FROM users WHERE"
                    f" {match}) OR followee_id IN (SELECT id FROM users WHERE {match})",
                    params + params,
                )

    def affected_follows(self, domain: str) -> int:
        """Follows in either direction with accounts on DOMAIN (and its subdomains): what
        a suspension would sever, and what a limit would hold for approval from now on."""
        domain = domain.lower()
        match = "domain = ? OR domain LIKE ? OR domain LIKE ?"
        params = (domain, f"%.{domain}", f"{domain}:%")
        row = self.db.one(
            f"SELECT count(*) FROM follows WHERE follower_id IN (SELECT id FROM users WHERE"
            f" {match}) OR followee_id IN (SELECT id FROM users WHERE {match})",
            params + params,
        )
        return int(row[0]) if row else 0

    def remove_policy(self, domain: str) -> bool:
        with self.db.transaction():
            cur = self.db.execute("DELETE FROM domain_policies WHERE domain = ?", (domain.lower(),))
        return cur.rowcount > 0

    def policies(self) -> list[tuple[str, str, float]]:
        rows = self.db.all("SELECT domain, policy, created_at FROM domain_policies ORDER BY domain")
        return [(r[0], r[1], r[2]) for r in rows]

    def policy_for(self, host: str) -> str | None:
        """Most specific policy for ``host[:port]``: exact, then without port, then parents."""
        host = host.lower()
        candidates = [host]
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        candidates.append(name)
        parts = name.split(".")
        candidates.extend(".".join(parts[i:]) for i in range(1, len(parts) - 1))
        marks = ",".join("?" for _ in candidates)
        rows = {
            r[0]: r[1]
            for r in self.db.all(
                f"SELECT domain, policy FROM domain_policies WHERE domain IN ({marks})",
                tuple(candidates),
            )
        }
        return next((rows[c] for c in candidates if c in rows), None)
