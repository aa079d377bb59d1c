"""Typed ActivityPub / ActivityStreams 2.0 wire objects used by Salon.

Each class has ``parse(data) -> instance`` and ``serialize() -> dict``; there is no I/O and
no JSON-LD processing. Like Mastodon, Salon reads the *compacted* form with the standard
contexts, so parsers look at plain keys; they accept what other servers actually send
(objects as id strings or embedded dicts, ``to``/``cc`` as a string or a list) and reject
anything else with an ``ActivityError`` whose message names the object and the field.

Specs: ActivityStreams 2.0 vocabulary (W3C REC), ActivityPub (W3C REC) sections 3-7,
FEP-521a (Multikey in ``assertionMethod``), Salon's own terms (``SALON_CONTEXT``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypeVar, cast
from urllib.parse import urlsplit

from federation import keys
from federation.rfc3339 import TimestampError, parse_rfc3339
from node.handles import canonical_hostname
from node.rooms.model import JoinMode, RoomStatus

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
_E = TypeVar("_E", RoomStatus, JoinMode)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ActivityError(ValueError):
    """Malformed or unacceptable AS2 input (an inbox answers 400)."""


class UnsupportedActivity(ActivityError):
    """A well-formed activity of a type Salon ignores (an inbox answers 202)."""

    def __init__(self, activity_type: str) -> None:
        super().__init__(f"unsupported activity type: {activity_type!r}")
        self.activity_type = activity_type


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


def _mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ActivityError(f"{what} must be a JSON object")
    return cast(Mapping[str, Any], data)


def _type_of(data: Mapping[str, Any], what: str) -> str:
    """AS2 allows ``type`` to be an array; the first string we model wins."""
    value = data.get("type")
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return next((v for v in value if v in _KNOWN_TYPES), value[0])
    raise ActivityError(f"{what}.type is required")


def _check_type(data: Mapping[str, Any], expected: str | frozenset[str], what: str) -> str:
    found = _type_of(data, what)
    allowed = {expected} if isinstance(expected, str) else expected
    if found not in allowed:
        raise ActivityError(f"{what}.type must be {' or '.join(sorted(allowed))}, got {found!r}")
    return found


def _uri(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ActivityError(f"{field} must be a string")
    try:
        host_of(value)
    except ActivityError:
        raise ActivityError(f"{field} must be an absolute http(s) URI, got {value!r}") from None
    return value


def _required_uri(data: Mapping[str, Any], key: str, what: str) -> str:
    if data.get(key) is None:
        raise ActivityError(f"{what}.{key} is required")
    return _uri(data[key], f"{what}.{key}")


def _optional_uri(data: Mapping[str, Any], key: str, what: str) -> str | None:
    return None if data.get(key) is None else _uri(data[key], f"{what}.{key}")


def _optional_str(data: Mapping[str, Any], key: str, what: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ActivityError(f"{what}.{key} must be a string")


def _ref(value: object, field: str) -> str:
    """An object given by id string or embedded with an ``id``: both name the same thing."""
    if value is None:
        raise ActivityError(f"{field} is required")
    if isinstance(value, Mapping):
        if value.get("id") is None:
            raise ActivityError(f"{field}.id is required")
        return _uri(value["id"], f"{field}.id")
    return _uri(value, field)


def _first_ref(value: object, field: str) -> str:
    """``attributedTo`` may be a list (AS2); Salon rooms have one host, the first entry."""
    if isinstance(value, list):
        if not value:
            raise ActivityError(f"{field} is required")
        value = value[0]
    return _ref(value, field)


def _addresses(data: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        address = _ref(item, f"{what}.{key}") if not isinstance(item, str) else item
        out.append(PUBLIC if address in _PUBLIC_ALIASES else address)
    return tuple(out)


def _datetime(data: Mapping[str, Any], key: str, what: str) -> datetime | None:
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


def _put_addresses(out: dict[str, Any], to: tuple[str, ...], cc: tuple[str, ...]) -> None:
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
            return cls(_ref(value, field), kind if isinstance(kind, str) else None)
        return cls(_ref(value, field))

    def serialize(self) -> str | dict[str, Any]:
        return self.id if self.type is None else {"id": self.id, "type": self.type}


# -- actors --


@dataclass(frozen=True)
class ActorPublicKey:
    """The ``publicKey`` block (security/v1): the RSA key draft-cavage signatures use."""

    id: str
    owner: str
    public_key_pem: str

    @classmethod
    def parse(cls, data: object) -> ActorPublicKey:
        block = _mapping(data, "publicKey")
        pem = block.get("publicKeyPem")
        if not isinstance(pem, str):
            raise ActivityError("publicKey.publicKeyPem is required")
        return cls(
            id=_required_uri(block, "id", "publicKey"),
            owner=_ref(block.get("owner"), "publicKey.owner"),
            public_key_pem=pem,
        )

    def serialize(self) -> dict[str, Any]:
        return {"id": self.id, "owner": self.owner, "publicKeyPem": self.public_key_pem}


@dataclass(frozen=True)
class Multikey:
    """An ``assertionMethod`` entry (FEP-521a): the Ed25519 key for RFC 9421 signatures."""

    id: str
    controller: str
    public_key_multibase: str

    @classmethod
    def parse(cls, data: object) -> Multikey:
        block = _mapping(data, "Multikey")
        _check_type(block, "Multikey", "Multikey")
        multibase = block.get("publicKeyMultibase")
        if not isinstance(multibase, str):
            raise ActivityError("Multikey.publicKeyMultibase is required")
        return cls(
            id=_required_uri(block, "id", "Multikey"),
            controller=_ref(block.get("controller"), "Multikey.controller"),
            public_key_multibase=multibase,
        )

    def serialize(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "Multikey",
            "controller": self.controller,
            "publicKeyMultibase": self.public_key_multibase,
        }


@dataclass(frozen=True, kw_only=True)
class Actor:
    """A ``Person`` (user) or ``Application`` (node) actor; other actor types parse too."""

    id: str
    type: str = "Person"
    inbox: str
    outbox: str | None = None
    followers: str | None = None
    following: str | None = None
    shared_inbox: str | None = None
    preferred_username: str | None = None
    name: str | None = None
    summary: str | None = None
    url: str | None = None
    public_keys: tuple[ActorPublicKey, ...] = ()
    assertion_methods: tuple[Multikey, ...] = ()
    manually_approves_followers: bool = False

    @classmethod
    def parse(cls, data: object) -> Self:
        actor = _mapping(data, "Actor")
        kind = _check_type(actor, ACTOR_TYPES, "Actor")
        what = kind
        endpoints = actor.get("endpoints")
        shared = None
        if isinstance(endpoints, Mapping):
            shared = _optional_uri(endpoints, "sharedInbox", f"{what}.endpoints")
        keys_value = actor.get("publicKey")
        key_blocks = keys_value if isinstance(keys_value, list) else [keys_value]
        methods = actor.get("assertionMethod")
        method_blocks = methods if isinstance(methods, list) else [methods]
        approves = actor.get("manuallyApprovesFollowers", False)
        if not isinstance(approves, bool):
            raise ActivityError(f"{what}.manuallyApprovesFollowers must be a boolean")
        return cls(
            id=_required_uri(actor, "id", what),
            type=kind,
            inbox=_required_uri(actor, "inbox", what),
            outbox=_optional_uri(actor, "outbox", what),
            followers=_optional_uri(actor, "followers", what),
            following=_optional_uri(actor, "following", what),
            shared_inbox=shared,
            preferred_username=_optional_str(actor, "preferredUsername", what),
            name=_optional_str(actor, "name", what),
            summary=_optional_str(actor, "summary", what),
            url=_link(actor.get("url")),
            public_keys=tuple(ActorPublicKey.parse(b) for b in key_blocks if b is not None),
            # Entries given only by reference cannot be used without a fetch: skipped.
            assertion_methods=tuple(
                Multikey.parse(b)
                for b in method_blocks
                if isinstance(b, Mapping) and b.get("type") == "Multikey"
            ),
            manually_approves_followers=approves,
        )

    def serialize(self, *, context: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"@context": ACTOR_CONTEXT} if context else {}
        out.update(id=self.id, type=self.type)
        optional = {
            "preferredUsername": self.preferred_username,
            "name": self.name,
            "summary": self.summary,
            "url": self.url,
            "inbox": self.inbox,
            "outbox": self.outbox,
            "followers": self.followers,
            "following": self.following,
        }
        out.update({key: value for key, value in optional.items() if value is not None})
        if self.shared_inbox is not None:
            out["endpoints"] = {"sharedInbox": self.shared_inbox}
        out["manuallyApprovesFollowers"] = self.manually_approves_followers
        if len(self.public_keys) == 1:
            out["publicKey"] = self.public_keys[0].serialize()
        elif self.public_keys:
            out["publicKey"] = [key.serialize() for key in self.public_keys]
        if self.assertion_methods:
            out["assertionMethod"] = [method.serialize() for method in self.assertion_methods]
        return out

    @property
    def delivery_inbox(self) -> str:
        """Where to POST: the shared inbox when there is one (one POST per node)."""
        return self.shared_inbox or self.inbox

    def verification_key(self, key_id: str) -> keys.PublicKey | None:
        """The key ``key_id`` if this actor lists it *and* owns it, else None.

        The inbox rule "the key's owner must be the actor and the actor must list the key"
        (docs/federation.md §3) reduces to this lookup on the fetched actor document.
        """
        try:
            for rsa_key in self.public_keys:
                if rsa_key.id == key_id and rsa_key.owner == self.id:
                    return keys.load_public_key_pem(rsa_key.public_key_pem)
            for method in self.assertion_methods:
                if method.id == key_id and method.controller == self.id:
                    return keys.decode_multikey(method.public_key_multibase)
        except keys.KeyFormatError as exc:
            raise ActivityError(f"{self.type} key {key_id}: {exc}") from None
        return None


def _link(value: object) -> str | None:
    """``url`` is a string, a Link object or a list of either (AS2 section 4); keep one href."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, Mapping):
        value = value.get("href")
    return value if isinstance(value, str) else None


# -- the room --

_DURATION = re.compile(
    r"P(?:([0-9]{1,6})D)?(?:T(?:([0-9]{1,6})H)?(?:([0-9]{1,6})M)?(?:([0-9]{1,9}(?:\.[0-9]{1,9})?)S)?)?"
)


def format_duration(seconds: float) -> str:
    """An xsd:duration such as ``PT1234.5S`` (AS2 §4 ``duration``)."""
    text = f"{max(0.0, seconds):.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def parse_duration(value: object, field: str) -> float:
    if not isinstance(value, str) or value in ("P", "PT") or value.endswith("T"):
        raise ActivityError(f"{field} must be an xsd:duration such as PT90S")
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ActivityError(f"{field} must be an xsd:duration such as PT90S")
    days, hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + secs


@dataclass(frozen=True)
class Audio:
    """An ``Audio`` attachment of an Event: the room's replay (docs/federation.md §5.2)."""

    url: str
    media_type: str = "audio/ogg"
    duration: float | None = None
    name: str | None = None

    @classmethod
    def parse(cls, data: object) -> Self:
        audio = _mapping(data, "Audio")
        _check_type(audio, "Audio", "Audio")
        url = _link(audio.get("url"))
        if url is None:
            raise ActivityError("Audio.url is required")
        media_type = audio.get("mediaType")
        if media_type is None:
            raw = audio.get("url")
            if isinstance(raw, Mapping):
                media_type = raw.get("mediaType")
        raw_duration = audio.get("duration")
        duration = None if raw_duration is None else parse_duration(raw_duration, "Audio.duration")
        return cls(
            url=_uri(url, "Audio.url"),
            media_type=media_type if isinstance(media_type, str) else "audio/ogg",
            duration=duration,
            name=_optional_str(audio, "name", "Audio"),
        )

    def serialize(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "Audio", "mediaType": self.media_type, "url": self.url}
        if self.duration is not None:
            out["duration"] = format_duration(self.duration)
        if self.name is not None:
            out["name"] = self.name
        return out


def audio_attachments(value: object) -> tuple[Audio, ...]:
    """The ``Audio`` entries of ATTACHMENT; other kinds (images, links) are not Salon's."""
    items = value if isinstance(value, list) else [] if value is None else [value]
    return tuple(
        Audio.parse(item)
        for item in items[:10]
        if isinstance(item, Mapping) and item.get("type") == "Audio"
    )


@dataclass(frozen=True, kw_only=True)
class Event:
    """A Salon room as an AS2 ``Event`` plus Salon terms.

    Non-Salon ``Event`` objects (Mobilizon, Gancio) parse too: they have no ``status`` and
    then the Salon terms are not read at all, because Mobilizon uses ``joinMode`` with its
    own values under its own namespace.
    """

    id: str
    name: str
    attributed_to: str
    summary: str | None = None
    url: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    updated: datetime | None = None
    status: RoomStatus | None = None
    join_mode: JoinMode | None = None
    speakers: tuple[str, ...] = ()
    listener_count: int | None = None
    relay: str | None = None
    recording: bool | None = None  # the room is (or will be) recorded (issue #14)
    attachments: tuple[Audio, ...] = ()
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()

    @property
    def is_salon_room(self) -> bool:
        return self.status is not None

    @classmethod
    def parse(cls, data: object) -> Self:
        event = _mapping(data, "Event")
        _check_type(event, "Event", "Event")
        name = event.get("name")
        if not isinstance(name, str):
            raise ActivityError("Event.name is required")
        salon: dict[str, Any] = {}
        if event.get("status") is not None:
            salon = _salon_terms(event)
        return cls(
            id=_required_uri(event, "id", "Event"),
            name=name,
            attributed_to=_first_ref(event.get("attributedTo"), "Event.attributedTo"),
            summary=_optional_str(event, "summary", "Event"),
            url=_link(event.get("url")),
            start_time=_datetime(event, "startTime", "Event"),
            end_time=_datetime(event, "endTime", "Event"),
            updated=_datetime(event, "updated", "Event"),
            attachments=audio_attachments(event.get("attachment")),
            to=_addresses(event, "to", "Event"),
            cc=_addresses(event, "cc", "Event"),
            **salon,
        )

    def serialize(self, *, context: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"@context": EVENT_CONTEXT} if context else {}
        out.update(id=self.id, type="Event", name=self.name, attributedTo=self.attributed_to)
        if self.summary is not None:
            out["summary"] = self.summary
        if self.url is not None:
            out["url"] = self.url
        times = {"startTime": self.start_time, "endTime": self.end_time, "updated": self.updated}
        out.update({k: format_datetime(v) for k, v in times.items() if v is not None})
        if self.attachments:
            out["attachment"] = [audio.serialize() for audio in self.attachments]
        _put_addresses(out, self.to, self.cc)
        if self.status is not None:
            out["status"] = self.status
            if self.join_mode is not None:
                out["joinMode"] = self.join_mode
            out["speakers"] = list(self.speakers)
            if self.listener_count is not None:
                out["listenerCount"] = self.listener_count
            if self.relay is not None:
                out["relay"] = self.relay
            if self.recording is not None:
                out["recording"] = self.recording
        return out


def _member(kind: type[_E], raw: object, where: str) -> _E:
    """RAW as a member of the enum KIND (the room model's own vocabulary)."""
    values = [member.value for member in kind]
    if raw not in values:
        raise ActivityError(f"{where} must be one of {', '.join(values)}")
    return kind(raw)


def _salon_terms(event: Mapping[str, Any]) -> dict[str, Any]:
    status = _member(RoomStatus, event.get("status"), "Event.status")
    raw_mode = event.get("joinMode")
    join_mode = None if raw_mode is None else _member(JoinMode, raw_mode, "Event.joinMode")
    count = event.get("listenerCount")
    if count is not None and (type(count) is not int or count < 0):
        raise ActivityError("Event.listenerCount must be a non-negative integer")
    speakers = event.get("speakers")
    if not isinstance(speakers, list):
        speakers = [] if speakers is None else [speakers]
    recording = event.get("recording")
    if recording is not None and not isinstance(recording, bool):
        raise ActivityError("Event.recording must be true or false")
    return {
        "status": status,
        "recording": recording,
        "join_mode": join_mode,
        "speakers": tuple(_ref(s, "Event.speakers") for s in speakers),
        "listener_count": count,
        "relay": _optional_uri(event, "relay", "Event"),
    }


# -- activities --


@dataclass(frozen=True, kw_only=True)
class _Activity:
    """Fields every activity carries; subclasses narrow ``object`` and say how to read it."""

    TYPE: ClassVar[str]
    #: Object types a subclass parses when embedded; others become ``Reference``.
    EMBEDDED: ClassVar[tuple[type[Any], ...]] = ()
    id: str
    actor: str
    object: Any
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()

    @classmethod
    def parse(cls, data: Any) -> Self:
        activity = _mapping(data, cls.TYPE)
        _check_type(activity, cls.TYPE, cls.TYPE)
        return cls(
            id=_required_uri(activity, "id", cls.TYPE),
            actor=_ref(activity.get("actor"), f"{cls.TYPE}.actor"),
            object=cls._parse_object(activity.get("object"), f"{cls.TYPE}.object"),
            to=_addresses(activity, "to", cls.TYPE),
            cc=_addresses(activity, "cc", cls.TYPE),
        )

    @classmethod
    def _parse_object(cls, value: Any, field: str) -> Any:
        if isinstance(value, Mapping):
            kind = _type_of(value, field)
            for model in cls.EMBEDDED:
                if kind == getattr(model, "TYPE", model.__name__) or (
                    model is Actor and kind in ACTOR_TYPES
                ):
                    return model.parse(value)
        return Reference.parse(value, field)

    def _context(self) -> list[Any] | str:
        if isinstance(self.object, Actor):
            return ACTOR_CONTEXT
        return EVENT_CONTEXT if isinstance(self.object, Event) else AS_CONTEXT

    def serialize(self, *, context: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"@context": self._context()} if context else {}
        value = self.object
        if isinstance(value, Reference):
            value = value.serialize()
        elif not isinstance(value, str):
            value = value.serialize(context=False)
        out.update(id=self.id, type=self.TYPE, actor=self.actor, object=value)
        _put_addresses(out, self.to, self.cc)
        return out


@dataclass(frozen=True, kw_only=True)
class _IdTargeted(_Activity):
    """Activities whose object is just an id: the followed actor, the joined room."""

    object: str

    @classmethod
    def _parse_object(cls, value: Any, field: str) -> Any:
        return _ref(value, field)


@dataclass(frozen=True, kw_only=True)
class Follow(_IdTargeted):
    TYPE: ClassVar[str] = "Follow"


@dataclass(frozen=True, kw_only=True)
class Join(_IdTargeted):
    """Remote join: ``object`` is the room's ``Event`` id on its origin node."""

    TYPE: ClassVar[str] = "Join"


@dataclass(frozen=True, kw_only=True)
class Leave(_IdTargeted):
    TYPE: ClassVar[str] = "Leave"


@dataclass(frozen=True, kw_only=True)
class Accept(_Activity):
    """Answers a ``Follow`` or ``Join``, embedded (as Mastodon sends it) or by id."""

    TYPE: ClassVar[str] = "Accept"
    EMBEDDED: ClassVar[tuple[type[Any], ...]] = (Follow, Join)
    object: Follow | Join | Reference


@dataclass(frozen=True, kw_only=True)
class Reject(_Activity):
    TYPE: ClassVar[str] = "Reject"
    EMBEDDED: ClassVar[tuple[type[Any], ...]] = (Follow, Join)
    object: Follow | Join | Reference


@dataclass(frozen=True, kw_only=True)
class Block(_IdTargeted):
    """A person blocks one of ours (Mastodon's shape: ``object`` is the blocked actor)."""

    TYPE: ClassVar[str] = "Block"


@dataclass(frozen=True, kw_only=True)
class Undo(_Activity):
    TYPE: ClassVar[str] = "Undo"
    EMBEDDED: ClassVar[tuple[type[Any], ...]] = (Follow, Block)
    object: Follow | Block | Reference


@dataclass(frozen=True, kw_only=True)
class Create(_Activity):
    """Room announcement; any other created object (a Mastodon ``Note``) is a Reference."""

    TYPE: ClassVar[str] = "Create"
    EMBEDDED: ClassVar[tuple[type[Any], ...]] = (Event,)
    object: Event | Reference


@dataclass(frozen=True, kw_only=True)
class Update(_Activity):
    """Room changes (``Event``) and profile or key changes (actors)."""

    TYPE: ClassVar[str] = "Update"
    EMBEDDED: ClassVar[tuple[type[Any], ...]] = (Event, Actor)
    object: Event | Actor | Reference


@dataclass(frozen=True, kw_only=True)
class Delete(_Activity):
    """``object`` is an id, a ``Tombstone`` or an actor (account deletion): a Reference."""

    TYPE: ClassVar[str] = "Delete"
    object: Reference


Activity = Follow | Accept | Reject | Undo | Create | Update | Delete | Join | Leave | Block
ACTIVITY_CLASSES: dict[str, type[Activity]] = {
    model.TYPE: model
    for model in (Follow, Accept, Reject, Undo, Create, Update, Delete, Join, Leave, Block)
}
_KNOWN_TYPES = frozenset(ACTIVITY_CLASSES) | ACTOR_TYPES | {"Event", "Multikey"}


def parse_activity(data: object) -> Activity:
    """Dispatch on ``type``; unknown but well-formed types raise ``UnsupportedActivity``."""
    activity = _mapping(data, "activity")
    kind = _type_of(activity, "activity")
    model = ACTIVITY_CLASSES.get(kind)
    if model is None:
        raise UnsupportedActivity(kind)
    return model.parse(activity)
