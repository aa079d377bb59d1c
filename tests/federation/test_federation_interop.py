"""RFC 9421 against an independent implementation: PyPI ``http-message-signatures``.

Both directions, both algorithms: their signer -> our verifier, our signer -> their
verifier (which also checks our ``Content-Digest``). That library checks ``created``
against the real clock, so these tests sign with the current time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from federation import keys
from federation.signatures import HttpRequest, SignatureError, sign_rfc9421, verify_request

hms = pytest.importorskip("http_message_signatures")

KEY_ID = "https://salon.example/users/alice#key"
URL = "https://remote.example/inbox?shared=1"
BODY = b'{"type":"Create","object":{"type":"Event"}}'


class _Message:
    """The request shape http-message-signatures resolves components from."""

    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method = method
        self.url = url
        self.headers = headers


def _algorithm(private: keys.PrivateKey) -> Any:
    if isinstance(private, rsa.RSAPrivateKey):
        return hms.algorithms.RSA_V1_5_SHA256
    return hms.algorithms.ED25519


@pytest.fixture(scope="module", params=["rsa", "ed25519"])
def private_key(request: pytest.FixtureRequest) -> keys.PrivateKey:
    if request.param == "rsa":
        return keys.generate_rsa_private_key()
    return keys.generate_ed25519_private_key()


def test_their_signature_verifies_with_us(private_key: keys.PrivateKey) -> None:
    message = _Message("POST", URL, {"Content-Type": "application/activity+json"})
    signer = hms.HTTPMessageSigner(
        signature_algorithm=_algorithm(private_key),
        key_resolver=hms.MappingKeyResolver(public_keys={}, private_keys={KEY_ID: private_key}),
    )
    signer.sign(
        message,
        key_id=KEY_ID,
        covered_component_ids=("@method", "@authority", "@target-uri", "@path", "@query"),
        body=BODY,
    )
    assert "content-digest" in message.headers["Signature-Input"]
    request = HttpRequest("POST", URL, message.headers, BODY)
    result = verify_request(request, private_key.public_key(), now=datetime.now(UTC))
    assert result.scheme == "rfc9421"
    assert result.key_id == KEY_ID
    assert "content-digest" in result.covered
    tampered = HttpRequest("POST", URL, message.headers, BODY + b" ")
    with pytest.raises(SignatureError, match=r"^Content-Digest header does not match the body$"):
        verify_request(tampered, private_key.public_key(), now=datetime.now(UTC))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_our_signature_verifies_with_them(private_key: keys.PrivateKey, method: str) -> None:
    body = BODY if method == "POST" else b""
    request = HttpRequest(method, URL, {"Accept": "application/activity+json"}, body)
    added = sign_rfc9421(request, key_id=KEY_ID, private_key=private_key, now=datetime.now(UTC))
    headers = dict(request.with_headers(added).headers)
    verifier = hms.HTTPMessageVerifier(
        signature_algorithm=_algorithm(private_key),
        key_resolver=hms.MappingKeyResolver(
            public_keys={KEY_ID: private_key.public_key()}, private_keys={}
        ),
    )
    results = verifier.verify(
        _Message(method, URL, headers),
        require_components=("@method", "@target-uri"),
        body=body if method == "POST" else None,
    )
    assert len(results) == 1
    assert results[0].parameters["keyid"] == KEY_ID
