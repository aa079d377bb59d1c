"""draft-cavage-http-signatures-12: what Mastodon and most of the fediverse sign with.

Pure: no I/O, no clock. Salon signs every outgoing request this way (``rsa-sha256`` over
``(request-target) host date digest``) and verifies ``rsa-sha256`` and ``hs2019``.

This part is Salon's own code. PyPI ``httpsig`` (1.3.0) was a dependency for it but
cannot serve: it signs and verifies with pycryptodome from PEM text re-imported on every
call (measured 709 µs per verification against 81 µs for this module's whole
``verify_request``), it knows neither ``hs2019`` nor Ed25519, and its signing-string
builder has no ``(created)``/``(expires)`` and raises bare ``Exception``.
docs/federation.md section 2 has the details; httpsig stays in the tests as an
independent check of the bytes Salon signs.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from federation import keys
from federation.as2 import host_of
from federation.signed_request import (
    MAX_SKEW,
    HttpRequest,
    KeySource,
    SignatureError,
    VerifiedSignature,
    check_created,
    check_date_header,
    digest_header,
    http_date,
    resolve_key,
    verify_digest,
)


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
    if not (params[name].isascii() and params[name].isdigit()):
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
    return "\n".join(lines).encode("utf-8", "surrogateescape")


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
    sig = CavageSignature.parse(cavage_header(request))
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
        check_date_header(request, now, max_skew)
    check_created(
        sig.created if "(created)" in covered else None,
        sig.expires if "(expires)" in covered else None,
        now,
        max_skew,
    )
    digest = request.header("digest")
    if "digest" in covered and digest is not None:
        verify_digest(digest, request.body)
    public = resolve_key(key, sig.key_id)
    if sig.algorithm == "rsa-sha256" and not isinstance(public, rsa.RSAPublicKey):
        raise SignatureError(f"algorithm rsa-sha256 needs an RSA key, {sig.key_id} is Ed25519")
    if any(_verify_bytes(public, sig.signature, base) for base in bases):
        algorithm = sig.algorithm or "hs2019"
        return VerifiedSignature(sig.key_id, "draft-cavage", algorithm, covered)
    raise SignatureError(f"signature verification failed for key {sig.key_id}")


def cavage_header(request: HttpRequest) -> str:
    value = request.header("signature")
    if value is not None:
        return value
    auth = request.header("authorization")
    if auth is not None and auth[:10].lower() == "signature ":
        return auth[10:]  # draft-cavage section 3: the Authorization form
    raise SignatureError("request is not signed (no Signature header)")


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
