"""The node's one vocabulary of refusals.

A service refuses a request by raising a ``DomainError`` subclass with a ``code`` saying
which kind of refusal it is; the web layer (``node/web/http.py``) maps the code to an HTTP
status and a JSON ``{"error": message}``, the CLI prints the message. Services never name
HTTP statuses, and the web layer has one error type of its own (``HttpError``) for what
only HTTP has: bodies, content types and credentials in headers.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A refusal in the domain's words; ``status`` is what the web API answers."""

    STATUS: ClassVar[dict[str, int]] = {
        "invalid": 400,
        "unauthorized": 401,
        "forbidden": 403,
        "not_found": 404,
        "conflict": 409,
        "rate_limited": 429,
        "unreachable": 502,
    }

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        if code not in self.STATUS:
            raise ValueError(f"unknown refusal code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return self.STATUS[self.code]
