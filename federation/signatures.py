"""HTTP signatures for federation: build, parse and verify. Pure: no I/O, no clock.

Two schemes coexist in the fediverse and Salon speaks both:

* draft-cavage-http-signatures-12 (``Signature: keyId=...,headers=...``), what Mastodon
  and almost everyone signs with: Salon signs every outgoing request this way
  (``rsa-sha256`` over ``(request-target) host date digest``) and verifies ``rsa-sha256``
  and ``hs2019`` (``federation.cavage``, Salon's own code);
* RFC 9421 HTTP Message Signatures (``Signature-Input`` + ``Signature``), verified for
  ``rsa-v1_5-sha256`` and ``ed25519`` and available for signing (``federation.rfc9421``:
  the ``http-message-signatures`` library, with Salon's policy around it).

Body integrity uses ``Digest`` (RFC 3230, ``SHA-256=``) with cavage and ``Content-Digest``
(RFC 9530, ``sha-256=:...:``, parsed by ``http-sf``) with RFC 9421. Key lookup is the
caller's business: verifiers take the public key, or a callable from key id to key, so
fetching stays in the I/O layer (use ``signature_key_id`` to learn which key to fetch
first). Time comes in as ``now``. This module is the one the rest of Salon imports.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from federation.cavage import CavageSignature, cavage_header, sign_cavage, verify_cavage
from federation.rfc9421 import (
    DEFAULT_RFC9421_COMPONENTS,
    rfc9421_key_id,
    sign_rfc9421,
    signature_base,
    verify_rfc9421,
)
from federation.signed_request import (
    MAX_SKEW,
    HttpRequest,
    KeySource,
    Scheme,
    SignatureError,
    VerifiedSignature,
    content_digest_header,
    digest_header,
    http_date,
    verify_content_digest,
    verify_digest,
)

__all__ = [
    "DEFAULT_RFC9421_COMPONENTS",
    "MAX_SKEW",
    "CavageSignature",
    "HttpRequest",
    "KeySource",
    "Scheme",
    "SignatureError",
    "VerifiedSignature",
    "content_digest_header",
    "digest_header",
    "http_date",
    "sign_cavage",
    "sign_rfc9421",
    "signature_base",
    "signature_key_id",
    "signature_scheme",
    "verify_cavage",
    "verify_content_digest",
    "verify_digest",
    "verify_request",
    "verify_rfc9421",
]


def signature_scheme(request: HttpRequest) -> Scheme:
    """RFC 9421 when ``Signature-Input`` is present (the two share ``Signature``)."""
    return "rfc9421" if request.header("signature-input") is not None else "draft-cavage"


def signature_key_id(request: HttpRequest) -> str:
    """The key id a verifier will need, so the I/O layer can fetch that key first."""
    if signature_scheme(request) == "rfc9421":
        return rfc9421_key_id(request)
    return CavageSignature.parse(cavage_header(request)).key_id


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
