"""Typed ActivityPub / ActivityStreams 2.0 wire objects used by Salon.

Each class has ``parse(data) -> instance`` and ``serialize() -> dict``; there is no I/O and
no JSON-LD processing. Like Mastodon, Salon reads the *compacted* form with the standard
contexts, so parsers look at plain keys; they accept what other servers actually send
(objects as id strings or embedded dicts, ``to``/``cc`` as a string or a list) and reject
anything else with an ``ActivityError`` whose message names the object and the field.

Specs: ActivityStreams 2.0 vocabulary (W3C REC), ActivityPub (W3C REC) sections 3-7,
FEP-521a (Multikey in ``assertionMethod``), Salon's own terms (``SALON_CONTEXT``).

Here: actors and the activities. What every object shares (contexts, ``ActivityError``,
``host_of``, the field readers, ``Reference``) is in ``federation/as2.py``; the room
(``Event``, ``Audio``) in ``federation/events.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from federation import keys
from federation.as2 import (
    ACTOR_CONTEXT,
    ACTOR_TYPES,
    AS_CONTEXT,
    EVENT_CONTEXT,
    ActivityError,
    Reference,
    check_type,
    optional_str,
    optional_uri,
    put_addresses,
    read_addresses,
    read_link,
    read_object,
    read_ref,
    required_uri,
    type_of,
)
from federation.as2 import host_of as host_of  # re-exported: bench/ imports it from here
from federation.events import Event


class UnsupportedActivity(ActivityError):
    """A well-formed activity of a type Salon ignores (an inbox answers 202)."""

    def __init__(self, activity_type: str) -> None:
        super().__init__(f"unsupported activity type: {activity_type!r}")
        self.activity_type = activity_type


# -- actors --


@dataclass(frozen=True)
class ActorPublicKey:
    """The ``publicKey`` block (security/v1): the RSA key draft-cavage signatures use."""

    id: str
    owner: str
    public_key_pem: str

    @classmethod
    def parse(cls, data: object) -> ActorPublicKey:
        block = read_object(data, "publicKey")
        pem = block.get("publicKeyPem")
        if not isinstance(pem, str):
            raise ActivityError("publicKey.publicKeyPem is required")
        return cls(
            id=required_uri(block, "id", "publicKey"),
            owner=read_ref(block.get("owner"), "publicKey.owner"),
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
        block = read_object(data, "Multikey")
        check_type(block, "Multikey", "Multikey")
        multibase = block.get("publicKeyMultibase")
        if not isinstance(multibase, str):
            raise ActivityError("Multikey.publicKeyMultibase is required")
        return cls(
            id=required_uri(block, "id", "Multikey"),
            controller=read_ref(block.get("controller"), "Multikey.controller"),
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
        actor = read_object(data, "Actor")
        kind = check_type(actor, ACTOR_TYPES, "Actor")
        what = kind
        endpoints = actor.get("endpoints")
        shared = None
        if isinstance(endpoints, Mapping):
            shared = optional_uri(endpoints, "sharedInbox", f"{what}.endpoints")
        keys_value = actor.get("publicKey")
        key_blocks = keys_value if isinstance(keys_value, list) else [keys_value]
        methods = actor.get("assertionMethod")
        method_blocks = methods if isinstance(methods, list) else [methods]
        approves = actor.get("manuallyApprovesFollowers", False)
        if not isinstance(approves, bool):
            raise ActivityError(f"{what}.manuallyApprovesFollowers must be a boolean")
        return cls(
            id=required_uri(actor, "id", what),
            type=kind,
            inbox=required_uri(actor, "inbox", what),
            outbox=optional_uri(actor, "outbox", what),
            followers=optional_uri(actor, "followers", what),
            following=optional_uri(actor, "following", what),
            shared_inbox=shared,
            preferred_username=optional_str(actor, "preferredUsername", what),
            name=optional_str(actor, "name", what),
            summary=optional_str(actor, "summary", what),
            url=read_link(actor.get("url")),
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
        activity = read_object(data, cls.TYPE)
        check_type(activity, cls.TYPE, cls.TYPE)
        return cls(
            id=required_uri(activity, "id", cls.TYPE),
            actor=read_ref(activity.get("actor"), f"{cls.TYPE}.actor"),
            object=cls._parse_object(activity.get("object"), f"{cls.TYPE}.object"),
            to=read_addresses(activity, "to", cls.TYPE),
            cc=read_addresses(activity, "cc", cls.TYPE),
        )

    @classmethod
    def _parse_object(cls, value: Any, field: str) -> Any:
        if isinstance(value, Mapping):
            kind = type_of(value, field)
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
        put_addresses(out, self.to, self.cc)
        return out


@dataclass(frozen=True, kw_only=True)
class _IdTargeted(_Activity):
    """Activities whose object is just an id: the followed actor, the joined room."""

    object: str

    @classmethod
    def _parse_object(cls, value: Any, field: str) -> Any:
        return read_ref(value, field)


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


def parse_activity(data: object) -> Activity:
    """Dispatch on ``type``; unknown but well-formed types raise ``UnsupportedActivity``."""
    activity = read_object(data, "activity")
    kind = type_of(activity, "activity")
    model = ACTIVITY_CLASSES.get(kind)
    if model is None:
        raise UnsupportedActivity(kind)
    return model.parse(activity)
