"""A bounded memory of remote actor documents (pure: no I/O, the clock's reading passed in).

Anyone can make a node fetch an actor document (a signed inbox POST names any ``keyId``),
so what the node keeps of them is capped twice: by entries and by bytes (the document's
serialized JSON size). The least recently used entries go first; an entry older than the
time-to-live is not returned. A document bigger than the byte budget is not kept at all.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from federation.activities import Actor


@dataclass(frozen=True)
class CachedActor:
    actor: Actor
    document: dict[str, Any]
    size: int  # bytes of the document as JSON
    fetched_at: float  # the clock's monotonic reading


class ActorCache:
    """Actor documents by URI (an actor id, or a key id that led to it), LRU-bounded."""

    def __init__(self, *, max_entries: int, max_bytes: int, ttl: float) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._entries: OrderedDict[str, CachedActor] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, uri: str, now: float) -> CachedActor | None:
        """The fresh entry for URI (marked as recently used), or None."""
        entry = self._entries.get(uri)
        if entry is None or now - entry.fetched_at >= self.ttl:
            return None
        self._entries.move_to_end(uri)
        return entry

    def peek(self, uri: str) -> CachedActor | None:
        """The entry for URI however old, without touching its place in the order."""
        return self._entries.get(uri)

    def put(self, uri: str, entry: CachedActor) -> None:
        self.pop(uri)
        if entry.size > self.max_bytes or self.max_entries < 1:
            return
        self._entries[uri] = entry
        self._bytes += entry.size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self._bytes -= oldest.size

    def pop(self, uri: str) -> None:
        entry = self._entries.pop(uri, None)
        if entry is not None:
            self._bytes -= entry.size
