"""What both signature schemes share: the request model, digests, clock and key checks.

Pure: no I/O, no clock (``now`` comes in). ``federation.signatures`` is the public face;
``federation.cavage`` and ``federation.rfc9421`` build on this module.

Structured field values (RFC 8941, for ``Content-Digest`` here and ``Signature-Input`` /
``Signature`` in ``rfc9421``) are parsed by the ``http-sf`` library; ``parse_sf_dictionary``
only adds Salon's policy (ASCII only, no duplicate keys) and Salon's stable error messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import http_sf
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from federation import keys

#: Accepted clock difference for ``Date`` and ``created`` (Mastodon uses one hour too).
MAX_SKEW = timedelta(hours=1)

KeySource = keys.PublicKey | Callable[[str], keys.PublicKey | None]
Scheme = Literal["draft-cavage", "rfc9421"]

DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "sha-256": lambda body: hashlib.sha256(body).digest(),
    "sha-512": lambda body: hashlib.sha512(body).digest(),
}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class SignatureError(Exception):
    """The request is not acceptably signed; the message says why (an inbox answers 401)."""


@dataclass(frozen=True)
class HttpRequest:
    """A request as signed or received: method, absolute URL as sent, headers, body.

    ``url`` must carry the raw (still percent-encoded) path and query exactly as on the
    wire; an inbox builds it from its public base URL and the raw request target. Header
    names are case-insensitive and repeated field lines are joined with ``", "``
    (RFC 9110 section 5.3), which a multidict's ``items()`` gives for free.
    """

    method: str
    url: str
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()
    body: bytes = b""
    _fields: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pairs = tuple(self.headers.items() if isinstance(self.headers, Mapping) else self.headers)
        joined: dict[str, list[str]] = {}
        for name, value in pairs:
            joined.setdefault(name.lower(), []).append(value.strip())
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", pairs)
        object.__setattr__(self, "_fields", {k: ", ".join(v) for k, v in joined.items()})
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SignatureError(f"request URL must be absolute http(s): {self.url!r}")

    def header(self, name: str) -> str | None:
        return self._fields.get(name.lower())

    @property
    def fields(self) -> dict[str, str]:
        """Lowercased name → combined value (a copy: the request stays as it was)."""
        return dict(self._fields)

    def with_headers(self, extra: Mapping[str, str]) -> HttpRequest:
        """This request with ``extra`` headers set (replacing same-named ones)."""
        replaced = {name.lower() for name in extra}
        kept = [(k, v) for k, v in self._fields.items() if k not in replaced]
        return HttpRequest(self.method, self.url, [*kept, *extra.items()], self.body)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @property
    def query(self) -> str | None:
        """The query without ``?``; None when the URL has no ``?`` at all."""
        return urlsplit(self.url).query if "?" in self.url.split("#", 1)[0] else None

    @property
    def request_target(self) -> str:
        return self.path if self.query is None else f"{self.path}?{self.query}"

    @property
    def has_body(self) -> bool:
        return bool(self.body) or self.method in _BODY_METHODS


@dataclass(frozen=True)
class VerifiedSignature:
    """Who signed (``key_id``) and how; the inbox then checks key owner == actor."""

    key_id: str
    scheme: Scheme
    algorithm: str
    covered: tuple[str, ...]


def http_date(now: datetime) -> str:
    """IMF-fixdate (RFC 9110 5.6.7, formerly RFC 7231): ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return format_datetime(as_utc(now), usegmt=True)


def as_utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(UTC)


# -- structured fields (RFC 8941) through http-sf --

#: http-sf's wording → Salon's (stable across library versions; the offset is kept).
_SF_REASONS = (
    ("End of inner list not found", "unterminated inner list"),
    ("Binary Sequence didn't contain ending", "unterminated byte sequence"),
    ("Binary Sequence", "invalid base64 in byte sequence"),
    ("Reached end of input without finding a closing DQUOTE", "unterminated string"),
    ("Backslash before disallowed character", "invalid escape in string"),
    ("String contains disallowed character", "invalid character in string"),
    ("Key ", "expected a key"),
    ("Dictionary has trailing comma", "trailing ',' in dictionary"),
    ("has trailing characters after the value", "expected ',' between dictionary members"),
    ("Trailing delimiter", "trailing ',' in dictionary"),
    ("Inner list bad delimitation", "expected ' ' or ')' in inner list"),
    ("Integer too long", "integer has more than 15 digits"),
    ("No Boolean value found", "invalid boolean"),
)


class _DuplicateKey(ValueError):
    pass


def _reject_duplicate(key: str, context: str) -> None:
    kind = "member" if context == "dictionary" else "parameter"
    raise _DuplicateKey(f'duplicate {kind} "{key}"')


def parse_sf_dictionary(value: str, header: str) -> dict[str, Any]:
    """An RFC 8941 dictionary as http-sf models it: ``{key: (value, params)}``.

    Stricter than RFC 8941 in two ways that matter for signatures: the value must be
    ASCII, and a repeated key (a second ``sig1`` or ``keyid``) is an error rather than
    silently replacing the first, so two parties can never read different signatures.
    """
    try:
        data = value.encode("ascii")
    except UnicodeEncodeError:
        raise SignatureError(f"malformed {header} header: field value is not ASCII") from None
    try:
        parsed = http_sf.parse(data, tltype="dictionary", on_duplicate_key=_reject_duplicate)
    except _DuplicateKey as exc:
        raise SignatureError(f"malformed {header} header: {exc}") from None
    except http_sf.StructuredFieldError as exc:
        raise SignatureError(f"malformed {header} header: {_sf_reason(exc, data)}") from None
    if not isinstance(parsed, dict):  # pragma: no cover - tltype="dictionary" guarantees it
        raise SignatureError(f"malformed {header} header")
    return parsed


def _sf_reason(exc: http_sf.StructuredFieldError, data: bytes) -> str:
    message = exc.args[0] if exc.args else ""
    reason = next((ours for theirs, ours in _SF_REASONS if theirs in message), None)
    position = len(data) if exc.position is None else exc.position
    if reason == "unterminated byte sequence":
        position = data.rfind(b":", 0, position)  # where the unclosed sequence opened
    return f"{reason or 'not a valid structured field'} at offset {position}"


# -- digests --


def digest_header(body: bytes) -> str:
    """RFC 3230 ``Digest`` value, the one draft-cavage signatures cover."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def content_digest_header(body: bytes, algorithm: str = "sha-256") -> str:
    """RFC 9530 ``Content-Digest`` value: a structured dictionary with a byte sequence."""
    return http_sf.ser({algorithm: DIGESTS[algorithm](body)})


def verify_digest(value: str, body: bytes) -> None:
    """Every supported algorithm listed must match; at least one must be supported."""
    checked = False
    for part in value.split(","):
        name, sep, encoded = part.strip().partition("=")
        if not sep or not name:
            raise SignatureError("malformed Digest header")
        compute = DIGESTS.get(name.lower())
        if compute is None:
            continue
        try:
            expected = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise SignatureError("malformed Digest header") from None
        if not hmac.compare_digest(expected, compute(body)):
            raise SignatureError("Digest header does not match the body")
        checked = True
    if not checked:
        raise SignatureError("Digest header has no supported algorithm (SHA-256, SHA-512)")


def verify_content_digest(value: str, body: bytes) -> None:
    """RFC 9530 section 2: same rule as ``verify_digest`` for ``Content-Digest``."""
    checked = False
    for name, (member, _params) in parse_sf_dictionary(value, "Content-Digest").items():
        compute = DIGESTS.get(name)
        if compute is None:
            continue
        if not isinstance(member, bytes):
            raise SignatureError(f"malformed Content-Digest header: {name} is not a byte sequence")
        if not hmac.compare_digest(member, compute(body)):
            raise SignatureError("Content-Digest header does not match the body")
        checked = True
    if not checked:
        raise SignatureError("Content-Digest header has no supported algorithm (sha-256, sha-512)")


# -- keys and clock --


def resolve_key(key: KeySource, key_id: str) -> keys.PublicKey:
    if isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        return key
    found = key(key_id)
    if found is None:
        raise SignatureError(f"unknown key: {key_id}")
    return found


def key_kind(public: keys.PublicKey) -> str:
    return "RSA" if isinstance(public, rsa.RSAPublicKey) else "Ed25519"


def check_date_header(request: HttpRequest, now: datetime, max_skew: timedelta) -> None:
    value = request.header("date")
    if value is None:
        raise SignatureError("missing header covered by signature: date")
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise SignatureError(f"Date header is not a valid HTTP date: {value!r}") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if abs(as_utc(now) - sent) > max_skew:
        raise SignatureError(
            f"Date header is outside the allowed clock skew ({int(max_skew.total_seconds())} s)"
        )


def check_created(
    created: int | None, expires: int | None, now: datetime, max_skew: timedelta
) -> None:
    """``created`` within ``max_skew`` either way (future too), ``expires`` not passed."""
    moment = as_utc(now).timestamp()
    if created is not None and abs(moment - created) > max_skew.total_seconds():
        raise SignatureError(
            f"signature created time is outside the allowed clock skew "
            f"({int(max_skew.total_seconds())} s)"
        )
    if expires is not None and moment > expires:
        raise SignatureError("signature has expired")
