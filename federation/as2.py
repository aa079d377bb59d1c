"""What every AS2 wire object of Salon's shares: the JSON-LD contexts, ``ActivityError``,
the canonical host of a URI, the field readers and ``Reference``.

The readers take the *compacted* form with the standard contexts (see
``federation/activities.py``) and raise an ``ActivityError`` whose message names
``<Type>.<field>``, so a 400 says exactly what was wrong. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

from federation.rfc3339 import TimestampError, parse_rfc3339
from node.handles import canonical_hostname

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
# Compacted spellings of the Public collection that servers send (AS2 section 5.6).
_PUBLIC_ALIASES = frozenset({"Public", "as:Public", PUBLIC})

#: Namespace IRI of Salon's vocabulary; docs/federation.md documents every term.
SALON_NAMESPACE = "https://w3id.org/salon/ns#"
#: Inline term definitions, so that consumers need not fetch a context document.
SALON_CONTEXT: dict[str, Any] = {
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "salon": SALON_NAMESPACE,
    "status": "salon:status",
    "joinMode": "salon:joinMode",
    "speakers": {"@id": "salon:speakers", "@type": "@id", "@container": "@set"},
    "listenerCount": {
        "@id": "salon:listenerCount",
        "@type": "http://www.w3.org/2001/XMLSchema#nonNegativeInteger",
    },
    "relay": {"@id": "salon:relay", "@type": "@id"},
    "inviteToken": "salon:inviteToken",
    "recording": {"@id": "salon:recording", "@type": "http://www.w3.org/2001/XMLSchema#boolean"},
}
#: Neither security/v1 nor multikey/v1 defines ``assertionMethod`` (data-integrity/v1 does);
#: without this term JSON-LD processors (Fedify) drop the FEP-521a keys.
ASSERTION_METHOD_TERM: dict[str, Any] = {
    "assertionMethod": {
        "@id": "https://w3id.org/security#assertionMethod",
        "@type": "@id",
        "@container": "@set",
    }
}
ACTOR_CONTEXT: list[Any] = [
    AS_CONTEXT,
    SECURITY_CONTEXT,
    MULTIKEY_CONTEXT,
    {**SALON_CONTEXT, **ASSERTION_METHOD_TERM},
]
EVENT_CONTEXT: list[Any] = [AS_CONTEXT, SALON_CONTEXT]
ACTOR_TYPES = frozenset({"Person", "Application", "Service", "Group", "Organization"})
#: The activity types federation/activities.py models (its ``ACTIVITY_CLASSES``).
ACTIVITY_TYPES = frozenset(
    {"Follow", "Accept", "Reject", "Undo", "Create", "Update", "Delete", "Join", "Leave", "Block"}
)
_KNOWN_TYPES = ACTIVITY_TYPES | ACTOR_TYPES | {"Event", "Multikey"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ActivityError(ValueError):
    """Malformed or unacceptable AS2 input (an inbox answers 400)."""


def host_of(uri: str) -> str:
    """Host of an http(s) URI, with the port when it is not the scheme's default.

    This is the unit of trust in federation (an object must live on its actor's host) and
    of delivery backoff, so ``HTTPS://A.example:443/x`` and ``https://a.example/y`` agree.
    """
    parts = urlsplit(uri)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ActivityError(f"not an absolute http(s) URI: {uri!r}")
    try:
        port = parts.port
    except ValueError:
        raise ActivityError(f"invalid port in URI: {uri!r}") from None
    hostname = parts.hostname
    try:
        host = f"[{hostname}]" if ":" in hostname else canonical_hostname(hostname)
    except ValueError as exc:
        raise ActivityError(str(exc)) from None
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return host
    return f"{host}:{port}"


def canonical_authority(authority: str) -> str:
    """``host[:port]`` (a handle's host, a ``Host`` header) as ``host_of`` spells it: the
    host canonical, the port kept unless it is https' default."""
    return host_of(f"https://{authority}/")


def same_host(a: str, b: str) -> bool:
    """True when both URIs are http(s) on the same host and port; False if either is not."""
    try:
        return host_of(a) == host_of(b)
    except ActivityError:
        return False


# -- field readers: each error names "<Type>.<field>" so a 400 says exactly what was wrong --


def read_object(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ActivityError(f"{what} must be a JSON object")
    return cast(Mapping[str, Any], data)


def type_of(data: Mapping[str, Any], what: str) -> str:
    """AS2 allows ``type`` to be an array; the first string we model wins."""
    value = data.get("type")
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return next((v for v in value if v in _KNOWN_TYPES), value[0])
    raise ActivityError(f"{what}.type is required")


def check_type(data: Mapping[str, Any], expected: str | frozenset[str], what: str) -> str:
    found = type_of(data, what)
    allowed = {expected} if isinstance(expected, str) else expected
    if found not in allowed:
        raise ActivityError(f"{what}.type must be {' or '.join(sorted(allowed))}, got {found!r}")
    return found


def read_uri(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ActivityError(f"{field} must be a string")
    try:
        host_of(value)
    except ActivityError:
        raise ActivityError(f"{field} must be an absolute http(s) URI, got {value!r}") from None
    return value


def required_uri(data: Mapping[str, Any], key: str, what: str) -> str:
    if data.get(key) is None:
        raise ActivityError(f"{what}.{key} is required")
    return read_uri(data[key], f"{what}.{key}")


def optional_uri(data: Mapping[str, Any], key: str, what: str) -> str | None:
    return None if data.get(key) is None else read_uri(data[key], f"{what}.{key}")


def optional_str(data: Mapping[str, Any], key: str, what: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ActivityError(f"{what}.{key} must be a string")


def read_ref(value: object, field: str) -> str:
    """An object given by id string or embedded with an ``id``: both name the same thing."""
    if value is None:
        raise ActivityError(f"{field} is required")
    if isinstance(value, Mapping):
        if value.get("id") is None:
            raise ActivityError(f"{field}.id is required")
        return read_uri(value["id"], f"{field}.id")
    return read_uri(value, field)


def first_ref(value: object, field: str) -> str:
    """``attributedTo`` may be a list (AS2); Salon rooms have one host, the first entry."""
    if isinstance(value, list):
        if not value:
            raise ActivityError(f"{field} is required")
        value = value[0]
    return read_ref(value, field)


def read_addresses(data: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        address = read_ref(item, f"{what}.{key}") if not isinstance(item, str) else item
        out.append(PUBLIC if address in _PUBLIC_ALIASES else address)
    return tuple(out)


def read_datetime(data: Mapping[str, Any], key: str, what: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ActivityError(f"{what}.{key} must be a string")
    try:
        return parse_rfc3339(value)
    except TimestampError:
        raise ActivityError(f"{what}.{key} is not an RFC 3339 date-time: {value!r}") from None


def format_datetime(value: datetime) -> str:
    """xsd:dateTime in UTC with ``Z``, the form Mastodon emits and every peer parses."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def put_addresses(out: dict[str, Any], to: tuple[str, ...], cc: tuple[str, ...]) -> None:
    if to:
        out["to"] = list(to)
    if cc:
        out["cc"] = list(cc)


@dataclass(frozen=True)
class Reference:
    """An object Salon does not model (or got by id only): kept as id and type."""

    id: str
    type: str | None = None

    @classmethod
    def parse(cls, value: object, field: str) -> Reference:
        if isinstance(value, Mapping):
            kind = value.get("type")
            return cls(read_ref(value, field), kind if isinstance(kind, str) else None)
        return cls(read_ref(value, field))

    def serialize(self) -> str | dict[str, Any]:
        return self.id if self.type is None else {"id": self.id, "type": self.type}


def read_link(value: object) -> str | None:
    """``url`` is a string, a Link object or a list of either (AS2 section 4); keep one href."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, Mapping):
        value = value.get("href")
    return value if isinstance(value, str) else None
