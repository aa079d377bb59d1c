"""HTTP signatures for federation: build, parse and verify. Pure: no I/O, no clock.

Two schemes coexist in the fediverse and Salon speaks both:

* draft-cavage-http-signatures-12 (``Signature: keyId=...,headers=...``), what Mastodon
  and almost everyone signs with: Salon signs every outgoing request this way
  (``rsa-sha256`` over ``(request-target) host date digest``) and verifies ``rsa-sha256``
  and ``hs2019``;
* RFC 9421 HTTP Message Signatures (``Signature-Input`` + ``Signature``), verified for
  ``rsa-v1_5-sha256`` and ``ed25519`` and available for signing.

Body integrity uses ``Digest`` (RFC 3230, ``SHA-256=``) with cavage and ``Content-Digest``
(RFC 9530, ``sha-256=:...:``) with RFC 9421. Key lookup is the caller's business: verifiers
take the public key, or a callable from key id to key, so fetching stays in the I/O layer
(use ``signature_key_id`` to learn which key to fetch first). Time comes in as ``now``.
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
from typing import Literal
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from federation import keys
from federation import structured_fields as sf
from federation.activities import ActivityError, host_of

#: Accepted clock difference for ``Date`` and ``created`` (Mastodon uses one hour too).
MAX_SKEW = timedelta(hours=1)

KeySource = keys.PublicKey | Callable[[str], keys.PublicKey | None]
Scheme = Literal["draft-cavage", "rfc9421"]

_DIGESTS: dict[str, Callable[[bytes], bytes]] = {
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
    return format_datetime(_utc(now), usegmt=True)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(UTC)


# -- digests --


def digest_header(body: bytes) -> str:
    """RFC 3230 ``Digest`` value, the one draft-cavage signatures cover."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def content_digest_header(body: bytes, algorithm: str = "sha-256") -> str:
    """RFC 9530 ``Content-Digest`` value: a structured dictionary with a byte sequence."""
    digest = _DIGESTS[algorithm](body)
    return f"{algorithm}=:{base64.b64encode(digest).decode('ascii')}:"


def verify_digest(value: str, body: bytes) -> None:
    """Every supported algorithm listed must match; at least one must be supported."""
    checked = False
    for part in value.split(","):
        name, sep, encoded = part.strip().partition("=")
        if not sep or not name:
            raise SignatureError("malformed Digest header")
        compute = _DIGESTS.get(name.lower())
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
    try:
        members = sf.parse_dictionary(value)
    except sf.StructuredFieldError as exc:
        raise SignatureError(f"malformed Content-Digest header: {exc}") from None
    checked = False
    for name, member in members.items():
        compute = _DIGESTS.get(name)
        if compute is None:
            continue
        if not isinstance(member, sf.Item) or not isinstance(member.value, bytes):
            raise SignatureError(f"malformed Content-Digest header: {name} is not a byte sequence")
        if not hmac.compare_digest(member.value, compute(body)):
            raise SignatureError("Content-Digest header does not match the body")
        checked = True
    if not checked:
        raise SignatureError("Content-Digest header has no supported algorithm (sha-256, sha-512)")


# -- shared verification pieces --


def _resolve_key(key: KeySource, key_id: str) -> keys.PublicKey:
    if isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        return key
    found = key(key_id)
    if found is None:
        raise SignatureError(f"unknown key: {key_id}")
    return found


def _verify_bytes(public: keys.PublicKey, signature: bytes, data: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 with SHA-256 for RSA (RFC 8017), pure Ed25519 (RFC 8032)."""
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            public.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _sign_bytes(private: keys.PrivateKey, data: bytes) -> bytes:
    if isinstance(private, rsa.RSAPrivateKey):
        return private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return private.sign(data)


def _key_kind(public: keys.PublicKey) -> str:
    return "RSA" if isinstance(public, rsa.RSAPublicKey) else "Ed25519"


def _check_date_header(request: HttpRequest, now: datetime, max_skew: timedelta) -> None:
    value = request.header("date")
    if value is None:
        raise SignatureError("missing header covered by signature: date")
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise SignatureError(f"Date header is not a valid HTTP date: {value!r}") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if abs(_utc(now) - sent) > max_skew:
        raise SignatureError(
            f"Date header is outside the allowed clock skew ({int(max_skew.total_seconds())} s)"
        )


def _check_created(
    created: int | None, expires: int | None, now: datetime, max_skew: timedelta
) -> None:
    moment = _utc(now).timestamp()
    if created is not None and abs(moment - created) > max_skew.total_seconds():
        raise SignatureError(
            f"signature created time is outside the allowed clock skew "
            f"({int(max_skew.total_seconds())} s)"
        )
    if expires is not None and moment > expires:
        raise SignatureError("signature has expired")


# -- draft-cavage-http-signatures-12 --


@dataclass(frozen=True)
class CavageSignature:
    """The parameters of a draft-cavage ``Signature`` header (section 2.1).

    ``headers`` defaults to ``("date",)`` when absent, as Mastodon does (draft-cavage-12
    says ``(created)``, but no signer omitting the parameter means that in practice).
    """

    key_id: str
    signature: bytes
    algorithm: str | None = None
    headers: tuple[str, ...] = ("date",)
    created: int | None = None
    expires: int | None = None

    @classmethod
    def parse(cls, value: str) -> CavageSignature:
        params = _parse_cavage_params(value)
        for name in ("keyid", "signature"):
            if name not in params:
                label = "keyId" if name == "keyid" else name
                raise SignatureError(f"Signature header is missing {label}")
        try:
            signature = base64.b64decode(params["signature"], validate=True)
        except binascii.Error:
            raise SignatureError("Signature header signature is not valid base64") from None
        headers = tuple(params.get("headers", "date").lower().split())
        if not headers:
            raise SignatureError("Signature header headers parameter is empty")
        return cls(
            key_id=params["keyid"],
            signature=signature,
            algorithm=params["algorithm"].lower() if "algorithm" in params else None,
            headers=headers,
            created=_cavage_int(params, "created"),
            expires=_cavage_int(params, "expires"),
        )

    def serialize(self) -> str:
        parts = [f'keyId="{self.key_id}"']
        if self.algorithm is not None:
            parts.append(f'algorithm="{self.algorithm}"')
        if self.created is not None:
            parts.append(f"created={self.created}")
        if self.expires is not None:
            parts.append(f"expires={self.expires}")
        parts.append(f'headers="{" ".join(self.headers)}"')
        parts.append(f'signature="{base64.b64encode(self.signature).decode("ascii")}"')
        return ",".join(parts)


def _cavage_int(params: dict[str, str], name: str) -> int | None:
    if name not in params:
        return None
    if not params[name].isdigit():
        raise SignatureError(f"Signature header {name} is not an integer")
    return int(params[name])


def _parse_cavage_params(value: str) -> dict[str, str]:
    """``name="quoted" , name=token`` pairs; names are matched case-insensitively."""
    params: dict[str, str] = {}
    pos, end = 0, len(value)
    if not value.strip():
        raise SignatureError("Signature header is empty")
    while pos < end:
        while pos < end and value[pos] in " \t,":
            pos += 1
        if pos >= end:
            break
        eq = value.find("=", pos)
        if eq < 0:
            raise SignatureError(f"malformed Signature header: expected '=' at offset {pos}")
        name = value[pos:eq].strip()
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise SignatureError(f"malformed Signature header: bad parameter name at offset {pos}")
        pos = eq + 1
        if pos < end and value[pos] == '"':
            chars: list[str] = []
            pos += 1
            while pos < end and value[pos] != '"':
                if value[pos] == "\\" and pos + 1 < end:
                    pos += 1
                chars.append(value[pos])
                pos += 1
            if pos >= end:
                raise SignatureError("malformed Signature header: unterminated quoted string")
            text, pos = "".join(chars), pos + 1
        else:
            stop = value.find(",", pos)
            stop = end if stop < 0 else stop
            text, pos = value[pos:stop].strip(), stop
        while pos < end and value[pos] in " \t":
            pos += 1
        if pos < end and value[pos] != ",":
            raise SignatureError(f"malformed Signature header: expected ',' at offset {pos}")
        key = name.lower()
        if key in params:
            raise SignatureError(f"Signature header has a duplicate {name} parameter")
        params[key] = text
    return params


def _cavage_signing_string(request: HttpRequest, sig: CavageSignature, target: str) -> bytes:
    """Section 2.3: one ``name: value`` line per covered header, joined by ``\\n``."""
    lines = []
    for name in sig.headers:
        if name == "(request-target)":
            value: str | None = f"{request.method.lower()} {target}"
        elif name in ("(created)", "(expires)"):
            number = sig.created if name == "(created)" else sig.expires
            if number is None:
                raise SignatureError(f"signature covers {name} but has no {name[1:-1]} parameter")
            value = str(number)
        else:
            value = request.header(name)
        if value is None:
            raise SignatureError(f"missing header covered by signature: {name}")
        lines.append(f"{name}: {value}")
    return "\n".join(lines).encode("utf-8")


def sign_cavage(
    request: HttpRequest, *, key_id: str, private_key: keys.PrivateKey, now: datetime
) -> dict[str, str]:
    """Headers to add (replacing same-named ones) to send ``request`` signed.

    Covers ``(request-target) host date`` plus ``digest`` for methods other than GET/HEAD.
    RSA keys sign as ``rsa-sha256`` (what Mastodon verifies), Ed25519 keys as ``hs2019``.
    """
    added = {"Host": host_of(request.url), "Date": http_date(now)}
    covered = ["(request-target)", "host", "date"]
    if request.method not in ("GET", "HEAD"):
        added["Digest"] = digest_header(request.body)
        covered.append("digest")
    algorithm = "rsa-sha256" if isinstance(private_key, rsa.RSAPrivateKey) else "hs2019"
    unsigned = CavageSignature(key_id, b"", algorithm, tuple(covered))
    base = _cavage_signing_string(request.with_headers(added), unsigned, request.request_target)
    signed = CavageSignature(key_id, _sign_bytes(private_key, base), algorithm, tuple(covered))
    added["Signature"] = signed.serialize()
    return added


def verify_cavage(
    request: HttpRequest,
    key: KeySource,
    *,
    now: datetime,
    max_skew: timedelta = MAX_SKEW,
    require_body_digest: bool = True,
) -> VerifiedSignature:
    """Verify a draft-cavage signature: coverage policy, clock, digest, then the crypto."""
    sig = CavageSignature.parse(_cavage_header(request))
    covered = sig.headers
    if sig.algorithm not in (None, "hs2019", "rsa-sha256"):
        raise SignatureError(f"unsupported signature algorithm: {sig.algorithm}")
    if "(request-target)" not in covered:
        raise SignatureError("signature must cover (request-target)")
    if "date" not in covered and "(created)" not in covered:
        raise SignatureError("signature must cover date or (created)")
    if require_body_digest and request.has_body and "digest" not in covered:
        raise SignatureError("signature must cover digest for a request with a body")
    targets = [request.request_target]
    if request.query is not None:
        targets.append(request.path)  # some signers leave the query out
    bases = [_cavage_signing_string(request, sig, target) for target in targets]
    if "date" in covered:
        _check_date_header(request, now, max_skew)
    _check_created(
        sig.created if "(created)" in covered else None,
        sig.expires if "(expires)" in covered else None,
        now,
        max_skew,
    )
    digest = request.header("digest")
    if "digest" in covered and digest is not None:
        verify_digest(digest, request.body)
    public = _resolve_key(key, sig.key_id)
    if sig.algorithm == "rsa-sha256" and not isinstance(public, rsa.RSAPublicKey):
        raise SignatureError(f"algorithm rsa-sha256 needs an RSA key, {sig.key_id} is Ed25519")
    if any(_verify_bytes(public, sig.signature, base) for base in bases):
        algorithm = sig.algorithm or "hs2019"
        return VerifiedSignature(sig.key_id, "draft-cavage", algorithm, covered)
    raise SignatureError(f"signature verification failed for key {sig.key_id}")


def _cavage_header(request: HttpRequest) -> str:
    value = request.header("signature")
    if value is not None:
        return value
    auth = request.header("authorization")
    if auth is not None and auth[:10].lower() == "signature ":
        return auth[10:]  # draft-cavage section 3: the Authorization form
    raise SignatureError("request is not signed (no Signature header)")


# -- RFC 9421 HTTP Message Signatures --

_RFC9421_ALGORITHMS = {"rsa-v1_5-sha256": "RSA", "ed25519": "Ed25519"}
DEFAULT_RFC9421_COMPONENTS = ("@method", "@target-uri", "@authority", "date")


def _derived_component(request: HttpRequest, name: str) -> str:
    """RFC 9421 section 2.2: values derived from the request line and target URI."""
    if name == "@method":
        return request.method
    if name == "@target-uri":
        return request.url
    if name == "@authority":
        try:
            return host_of(request.url)
        except ActivityError as exc:
            raise SignatureError(str(exc)) from None
    if name == "@scheme":
        return urlsplit(request.url).scheme.lower()
    if name == "@request-target":
        return request.request_target
    if name == "@path":
        return request.path
    if name == "@query":
        return f"?{request.query or ''}"
    raise SignatureError(f'unsupported derived component: "{name}"')


def _signature_base(request: HttpRequest, signature_params: sf.InnerList) -> bytes:
    """RFC 9421 section 2.5: covered component lines then ``"@signature-params"``."""
    lines = []
    seen = set()
    for component in signature_params.items:
        name = component.value
        if not isinstance(name, str):
            raise SignatureError("covered components must be strings")
        if component.params:
            unsupported = ";".join(component.params)
            raise SignatureError(f'unsupported component parameter ;{unsupported} on "{name}"')
        if name in seen:
            raise SignatureError(f'component "{name}" is covered twice')
        if name != name.lower():
            raise SignatureError(f'component "{name}" is not lowercase')
        seen.add(name)
        if name.startswith("@"):
            value = _derived_component(request, name)
        else:
            header = request.header(name)
            if header is None:
                raise SignatureError(f'missing component covered by signature: "{name}"')
            value = header
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {sf.serialize_inner_list(signature_params)}')
    return "\n".join(lines).encode("utf-8")


@dataclass(frozen=True)
class _Rfc9421Signature:
    label: str
    params: sf.InnerList
    signature: bytes
    key_id: str
    components: tuple[str, ...]
    created: int | None
    expires: int | None
    alg: str | None


def _parse_rfc9421(request: HttpRequest, label: str | None) -> _Rfc9421Signature:
    inputs_value = request.header("signature-input")
    signatures_value = request.header("signature")
    if inputs_value is None:
        raise SignatureError("request has no Signature-Input header")
    if signatures_value is None:
        raise SignatureError("request has no Signature header")
    inputs = _dictionary(inputs_value, "Signature-Input")
    signatures = _dictionary(signatures_value, "Signature")
    if not inputs:
        raise SignatureError("Signature-Input header is empty")
    label = next(iter(inputs)) if label is None else label
    params = inputs.get(label)
    if not isinstance(params, sf.InnerList):
        raise SignatureError(f'Signature-Input has no signature labelled "{label}"')
    signature = signatures.get(label)
    if not isinstance(signature, sf.Item) or not isinstance(signature.value, bytes):
        raise SignatureError(f'Signature header has no byte sequence labelled "{label}"')
    key_id, alg = params.params.get("keyid"), params.params.get("alg")
    if not isinstance(key_id, str):
        raise SignatureError(f'Signature-Input "{label}" has no keyid')
    if alg is not None and not isinstance(alg, str):
        raise SignatureError(f'Signature-Input "{label}" alg must be a string')
    times = {}
    for name in ("created", "expires"):
        value = params.params.get(name)
        if value is not None and (type(value) is not int):
            raise SignatureError(f'Signature-Input "{label}" {name} must be an integer')
        times[name] = value
    components = tuple(str(item.value) for item in params.items)
    return _Rfc9421Signature(
        label, params, signature.value, key_id, components,
        times["created"], times["expires"], alg,
    )  # fmt: skip


def _dictionary(value: str, header: str) -> dict[str, sf.Member]:
    try:
        return sf.parse_dictionary(value)
    except sf.StructuredFieldError as exc:
        raise SignatureError(f"malformed {header} header: {exc}") from None


def _check_rfc9421_coverage(sig: _Rfc9421Signature, request: HttpRequest, digest: bool) -> None:
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
    sig = _parse_rfc9421(request, label)
    if sig.alg is not None and sig.alg not in _RFC9421_ALGORITHMS:
        raise SignatureError(f"unsupported signature algorithm: {sig.alg}")
    _check_rfc9421_coverage(sig, request, require_body_digest)
    base = _signature_base(request, sig.params)
    if "date" in sig.components:
        _check_date_header(request, now, max_skew)
    _check_created(sig.created, sig.expires, now, max_skew)
    digest = request.header("content-digest")
    if "content-digest" in sig.components and digest is not None:
        verify_content_digest(digest, request.body)
    public = _resolve_key(key, sig.key_id)
    kind = _key_kind(public)
    alg = sig.alg or ("rsa-v1_5-sha256" if kind == "RSA" else "ed25519")
    if _RFC9421_ALGORITHMS[alg] != kind:
        raise SignatureError(f"algorithm {alg} does not match the {kind} key {sig.key_id}")
    if not _verify_bytes(public, sig.signature, base):
        raise SignatureError(f"signature verification failed for key {sig.key_id}")
    return VerifiedSignature(sig.key_id, "rfc9421", alg, sig.components)


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
    params: sf.Params = {"created": int(_utc(now).timestamp()), "keyid": key_id}
    if include_alg:
        rsa_key = isinstance(private_key, rsa.RSAPrivateKey)
        params["alg"] = "rsa-v1_5-sha256" if rsa_key else "ed25519"
    inner = sf.InnerList(tuple(sf.Item(name) for name in components), params)
    base = _signature_base(request.with_headers(added), inner)
    signature = _sign_bytes(private_key, base)
    added["Signature-Input"] = f"{label}={sf.serialize_inner_list(inner)}"
    added["Signature"] = f"{label}=:{base64.b64encode(signature).decode('ascii')}:"
    return added


# -- either scheme --


def signature_scheme(request: HttpRequest) -> Scheme:
    """RFC 9421 when ``Signature-Input`` is present (the two share ``Signature``)."""
    return "rfc9421" if request.header("signature-input") is not None else "draft-cavage"


def signature_key_id(request: HttpRequest) -> str:
    """The key id a verifier will need, so the I/O layer can fetch that key first."""
    if signature_scheme(request) == "rfc9421":
        return _parse_rfc9421(request, None).key_id
    return CavageSignature.parse(_cavage_header(request)).key_id


def verify_request(
    request: HttpRequest,
    key: KeySource,
    *,
    now: datetime,
    max_skew: timedelta = MAX_SKEW,
    require_body_digest: bool = True,
) -> VerifiedSignature:
    """Verify whichever scheme the request uses; raises ``SignatureError`` on any failure."""
    verify = verify_rfc9421 if signature_scheme(request) == "rfc9421" else verify_cavage
    return verify(request, key, now=now, max_skew=max_skew, require_body_digest=require_body_digest)
