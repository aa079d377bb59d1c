"""HTTP byte ranges (RFC 7233), as pure functions: which bytes a ``Range`` header asks for.

One range per request is served (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``). A header this
module does not serve — another unit, a syntax error, several ranges — is ignored and the
whole file is sent, as §3.1 allows; a range that starts past the end is unsatisfiable
(416 with ``Content-Range: bytes */SIZE``, §4.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Digits are capped so that a hostile header cannot make int() work hard; a first byte
# beyond any real file is still recognised as unsatisfiable.
_RANGE = re.compile(r"bytes=[ \t]*([0-9]{0,30})-([0-9]{0,30})[ \t]*")


class Unsatisfiable(ValueError):
    """The one range asked for lies wholly outside the file (answered with 416)."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range HEADER asks for in a file of SIZE bytes; None: send the whole file."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable(header)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # syntactically invalid: ignored (§2.1)
    if start >= size:
        raise Unsatisfiable(header)
    return ByteRange(start, min(end, size - 1))


def if_range_allows(if_range: str | None, etag: str, last_modified: str) -> bool:
    """Whether a Range may be honoured given If-Range (§3.2): the validator must match."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith(("W/", '"')):
        return value == etag  # strong comparison; a weak tag never matches
    return value == last_modified
