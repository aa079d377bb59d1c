"""RFC 9421 HTTP Message Signatures, through the ``http-message-signatures`` library.

The library builds the signature base (derived components, field values, the canonical
``@signature-params``), signs and verifies; ``http-sf`` parses the structured fields.
Salon keeps what is policy, checked before the library runs, with Salon's messages:

* which signature: the first label (or the one asked for); repeated labels are refused;
* the algorithms: ``rsa-v1_5-sha256`` and ``ed25519`` only, and ``alg`` must match the key;
* the covered components: ``@method``, the target and authority, ``date`` or ``created``,
  ``content-digest`` when there is a body; no component parameters; Salon's derived set;
* the clock: ``created``/``Date`` within ±``max_skew`` of the injected ``now`` (the library
  would read the wall clock, so its own time check is switched off), ``expires`` not past;
* ``Content-Digest`` against the body, and key lookup (the caller's ``KeySource``, handed
  to the library through its key resolver).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import http_message_signatures as hms
import http_sf
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa

from federation import keys
from federation.signed_request import (
    MAX_SKEW,
    HttpRequest,
    KeySource,
    SignatureError,
    VerifiedSignature,
    as_utc,
    check_created,
    check_date_header,
    content_digest_header,
    http_date,
    key_kind,
    parse_sf_dictionary,
    resolve_key,
    verify_content_digest,
)

DEFAULT_RFC9421_COMPONENTS = ("@method", "@target-uri", "@authority", "date")

#: alg → (key kind, the library's algorithm)
_ALGORITHMS: dict[str, tuple[str, type[hms.HTTPSignatureAlgorithm]]] = {
    "rsa-v1_5-sha256": ("RSA", hms.algorithms.RSA_V1_5_SHA256),
    "ed25519": ("Ed25519", hms.algorithms.ED25519),
}
_DERIVED = frozenset(
    {"@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query"}
)


@dataclass
class _Message:
    """The request shape the library reads components from (and writes signatures to)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


class _ResolvedKey(hms.HTTPSignatureKeyResolver):
    """Hands the library the key Salon already looked up (and checked) for ``key_id``."""

    def __init__(
        self,
        key_id: str,
        public: keys.PublicKey | None = None,
        private: keys.PrivateKey | None = None,
    ) -> None:
        self.key_id, self.public, self.private = key_id, public, private

    def resolve_public_key(self, key_id: str) -> keys.PublicKey | None:
        return self.public if key_id == self.key_id else None

    def resolve_private_key(self, key_id: str) -> keys.PrivateKey:
        if key_id != self.key_id or self.private is None:
            raise SignatureError(f"unknown key: {key_id}")
        return self.private


class _Verifier(hms.HTTPMessageVerifier):
    """The library's verifier with its wall-clock ``created``/``expires`` check off.

    Salon has already checked both against the injected clock (``check_created``).
    """

    require_created = False

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        return None


@dataclass(frozen=True)
class _Rfc9421Signature:
    label: str
    members: tuple[Any, Any]  # http-sf (inner list, params) and (byte sequence, params)
    key_id: str
    components: tuple[str, ...]
    component_params: tuple[dict[str, Any], ...]
    created: int | None
    expires: int | None
    alg: str | None


def _parse(request: HttpRequest, label: str | None) -> _Rfc9421Signature:
    inputs_value = request.header("signature-input")
    signatures_value = request.header("signature")
    if inputs_value is None:
        raise SignatureError("request has no Signature-Input header")
    if signatures_value is None:
        raise SignatureError("request has no Signature header")
    inputs = parse_sf_dictionary(inputs_value, "Signature-Input")
    signatures = parse_sf_dictionary(signatures_value, "Signature")
    if not inputs:
        raise SignatureError("Signature-Input header is empty")
    label = next(iter(inputs)) if label is None else label
    member = inputs.get(label)
    if member is None or not isinstance(member[0], list):
        raise SignatureError(f'Signature-Input has no signature labelled "{label}"')
    signature = signatures.get(label)
    if signature is None or not isinstance(signature[0], bytes):
        raise SignatureError(f'Signature header has no byte sequence labelled "{label}"')
    items, params = member
    key_id, alg = params.get("keyid"), params.get("alg")
    if type(key_id) is not str:
        raise SignatureError(f'Signature-Input "{label}" has no keyid')
    if alg is not None and type(alg) is not str:
        raise SignatureError(f'Signature-Input "{label}" alg must be a string')
    times = {}
    for name in ("created", "expires"):
        value = params.get(name)
        if value is not None and type(value) is not int:
            raise SignatureError(f'Signature-Input "{label}" {name} must be an integer')
        times[name] = value
    return _Rfc9421Signature(
        label, (member, signature), key_id,
        tuple(str(name) for name, _ in items), tuple(item_params for _, item_params in items),
        times["created"], times["expires"], alg,
    )  # fmt: skip


def _check_coverage(sig: _Rfc9421Signature, request: HttpRequest, digest: bool) -> None:
    """Salon's policy: bind method, target and authority; bind the body when there is one."""
    covered = set(sig.components)
    if "@method" not in covered:
        raise SignatureError('signature must cover "@method"')
    binds_path = covered & {"@target-uri", "@path", "@request-target"}
    binds_host = covered & {"@target-uri", "@authority", "host"}
    if not binds_path or not binds_host:
        raise SignatureError('signature must cover "@target-uri" (or "@path" and "@authority")')
    if sig.created is None and "date" not in covered:
        raise SignatureError('signature has neither a created parameter nor a covered "date"')
    if digest and request.has_body and "content-digest" not in covered:
        raise SignatureError('signature must cover "content-digest" for a request with a body')


def _check_components(sig: _Rfc9421Signature, request: HttpRequest) -> None:
    """What Salon lets a signature cover: plain lowercase names it can resolve, once each."""
    items = sig.members[0][0]
    seen = set()
    for (value, _), name, params in zip(items, sig.components, sig.component_params, strict=True):
        if type(value) is not str:
            raise SignatureError("covered components must be strings")
        if params:
            raise SignatureError(f'unsupported component parameter ;{";".join(params)} on "{name}"')
        if name in seen:
            raise SignatureError(f'component "{name}" is covered twice')
        if name != name.lower():
            raise SignatureError(f'component "{name}" is not lowercase')
        seen.add(name)
        if name.startswith("@"):
            if name not in _DERIVED:
                raise SignatureError(f'unsupported derived component: "{name}"')
        elif request.header(name) is None:
            raise SignatureError(f'missing component covered by signature: "{name}"')


def _library_message(request: HttpRequest, sig: _Rfc9421Signature | None = None) -> _Message:
    """The request for the library; when verifying, with only the chosen signature in it."""
    headers = request.fields
    if sig is not None:
        inner, signature = sig.members
        headers["signature-input"] = http_sf.ser({sig.label: inner})
        headers["signature"] = http_sf.ser({sig.label: signature})
    return _Message(request.method, request.url, headers)


def verify_rfc9421(
    request: HttpRequest,
    key: KeySource,
    *,
    now: datetime,
    max_skew: timedelta = MAX_SKEW,
    require_body_digest: bool = True,
    label: str | None = None,
) -> VerifiedSignature:
    """Verify one RFC 9421 signature (the first label unless ``label`` is given)."""
    sig = _parse(request, label)
    if sig.alg is not None and sig.alg not in _ALGORITHMS:
        raise SignatureError(f"unsupported signature algorithm: {sig.alg}")
    _check_coverage(sig, request, require_body_digest)
    _check_components(sig, request)
    if "date" in sig.components:
        check_date_header(request, now, max_skew)
    check_created(sig.created, sig.expires, now, max_skew)
    digest = request.header("content-digest")
    if "content-digest" in sig.components and digest is not None:
        verify_content_digest(digest, request.body)
    public = resolve_key(key, sig.key_id)
    kind = key_kind(public)
    alg = sig.alg or ("rsa-v1_5-sha256" if kind == "RSA" else "ed25519")
    if _ALGORITHMS[alg][0] != kind:
        raise SignatureError(f"algorithm {alg} does not match the {kind} key {sig.key_id}")
    verifier = _Verifier(
        signature_algorithm=_ALGORITHMS[alg][1], key_resolver=_ResolvedKey(sig.key_id, public)
    )
    try:
        verifier.verify(_library_message(request, sig), max_age=None)
    except hms.HTTPMessageSignaturesException as exc:
        if isinstance(exc.__cause__, CryptoInvalidSignature):
            raise SignatureError(f"signature verification failed for key {sig.key_id}") from None
        raise SignatureError(f"RFC 9421 signature rejected: {exc}") from None
    return VerifiedSignature(sig.key_id, "rfc9421", alg, sig.components)


def rfc9421_key_id(request: HttpRequest) -> str:
    """The key id of the signature ``verify_rfc9421`` would check (the first label)."""
    return _parse(request, None).key_id


def sign_rfc9421(
    request: HttpRequest,
    *,
    key_id: str,
    private_key: keys.PrivateKey,
    now: datetime,
    components: tuple[str, ...] | None = None,
    label: str = "sig1",
    include_alg: bool = True,
) -> dict[str, str]:
    """Headers to add for an RFC 9421 signature (``rsa-v1_5-sha256`` or ``ed25519``).

    By default covers ``@method @target-uri @authority date`` and, when the request has a
    body, ``content-digest``. ``Date`` and ``Content-Digest`` are added when covered and
    missing; headers the request already has are signed as they are.
    """
    if components is None:
        components = DEFAULT_RFC9421_COMPONENTS
        if request.has_body:
            components = (*components, "content-digest")
    added: dict[str, str] = {}
    if "date" in components and request.header("date") is None:
        added["Date"] = http_date(now)
    if "content-digest" in components and request.header("content-digest") is None:
        added["Content-Digest"] = content_digest_header(request.body)
    alg = "rsa-v1_5-sha256" if isinstance(private_key, rsa.RSAPrivateKey) else "ed25519"
    signer = hms.HTTPMessageSigner(
        signature_algorithm=_ALGORITHMS[alg][1],
        key_resolver=_ResolvedKey(key_id, private=private_key),
    )
    message = _library_message(request.with_headers(added))
    try:
        signer.sign(
            message,
            key_id=key_id,
            created=as_utc(now),
            label=label,
            include_alg=include_alg,
            covered_component_ids=components,
            use_existing_digest="content-digest" in message.headers,
        )
    except hms.HTTPMessageSignaturesException as exc:
        raise SignatureError(f"cannot sign: {exc}") from None
    added["Signature-Input"] = message.headers["Signature-Input"]
    added["Signature"] = message.headers["Signature"]
    return added


def signature_base(
    request: HttpRequest, components: tuple[str, ...], *, key_id: str, now: datetime
) -> str:
    """The RFC 9421 signature base Salon would sign (for tests and debugging a peer)."""
    signer = hms.HTTPMessageSigner(signature_algorithm=hms.algorithms.ED25519)
    message = _library_message(request)
    try:
        prepared = signer.prepare(
            message, key_id=key_id, created=as_utc(now), include_alg=False,
            covered_component_ids=components,
            use_existing_digest="content-digest" in message.headers,
        )  # fmt: skip
    except hms.HTTPMessageSignaturesException as exc:
        raise SignatureError(f"cannot build a signature base: {exc}") from None
    return prepared.signature_base.decode("ascii")
