"""Text people type into a node (room titles, descriptions, profiles): one check.

Valid Unicode only (no lone surrogates, which cannot be stored or sent as UTF-8), no NUL or
other control characters except newline and tab where a field allows lines, and a
documented maximum length in characters, checked before anything changes.
"""

from __future__ import annotations

import unicodedata

from node.errors import DomainError


def check_text(raw: object, field: str, max_chars: int, *, lines: bool = False) -> str:
    """RAW as a string fit to store, or DomainError("invalid") naming FIELD."""
    if not isinstance(raw, str) or len(raw) > max_chars:
        raise DomainError("invalid", f"{field} must be a string of at most {max_chars} characters")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise DomainError("invalid", f"{field} is not valid Unicode") from None
    allowed = "\n\t" if lines else ""
    for char in raw:
        if char not in allowed and unicodedata.category(char) == "Cc":
            raise DomainError("invalid", f"{field} must not contain control characters")
    return raw
