"""HTTP signatures: published vectors, fixed vectors, and every rejection path by message.

Cross-implementation checks against ``httpsig`` (draft-cavage) live here too; the
``http-message-signatures`` (RFC 9421) ones are in test_federation_interop.py.
"""

from __future__ import annotations

import base64
import hashlib
import re
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpsig
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from federation import keys
from federation.signatures import (
    CavageSignature,
    HttpRequest,
    SignatureError,
    VerifiedSignature,
    content_digest_header,
    digest_header,
    http_date,
    sign_cavage,
    sign_rfc9421,
    signature_base,
    signature_key_id,
    signature_scheme,
    verify_cavage,
    verify_content_digest,
    verify_digest,
    verify_request,
    verify_rfc9421,
)

# draft-cavage-http-signatures-12 appendix C: the published test key (RSA-1024) ...
CAVAGE_TEST_KEY = """-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj+CvfSC8+q28hxA161QF
NUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6Z4UMR7EOcpfdUE9Hf3m/hs+F
UR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJwoYi+1hqp1fIekaxsyQIDAQAB
AoGBAJR8ZkCUvx5kzv+utdl7T5MnordT1TvoXXJGXK7ZZ+UuvMNUCdN2QPc4sBiA
QWvLw1cSKt5DsKZ8UETpYPy8pPYnnDEz2dDYiaew9+xEpubyeW2oH4Zx71wqBtOK
kqwrXa/pzdpiucRRjk6vE6YY7EBBs/g7uanVpGibOVAEsqH1AkEA7DkjVH28WDUg
f1nqvfn2Kj6CT7nIcE3jGJsZZ7zlZmBmHFDONMLUrXR/Zm3pR5m0tCmBqa5RK95u
412jt1dPIwJBANJT3v8pnkth48bQo/fKel6uEYyboRtA5/uHuHkZ6FQF7OUkGogc
mSJluOdc5t6hI1VsLn0QZEjQZMEOWr+wKSMCQQCC4kXJEsHAve77oP6HtG/IiEn7
kpyUXRNvFsDE0czpJJBvL/aRFUJxuRK91jhjC68sA7NsKMGg5OXb5I5Jj36xAkEA
gIT7aFOYBFwGgQAQkWNKLvySgKbAZRTeLBacpHMuQdl1DfdntvAyqpAZ0lY0RKmW
G6aFKaqQfOXKCyWoUiVknQJAXrlgySFci/2ueKlIE1QqIiLSZ8V8OlpFLRnb1pzI
7U1yQXnTAEFYM560yJlzUpOb1V4cScGd365tiSMvxLOvTA==
-----END RSA PRIVATE KEY-----
"""
# ... and its test request (appendix C) with the published signatures of C.2 and C.3.
CAVAGE_URL = "http://example.com/foo?param=value&pet=dog"
CAVAGE_BODY = b'{"hello": "world"}'
CAVAGE_HEADERS = {
    "Host": "example.com",
    "Date": "Thu, 05 Jan 2014 21:31:40 GMT",
    "Content-Type": "application/json",
    "Digest": "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
    "Content-Length": "18",
}
CAVAGE_NOW = datetime(2014, 1, 5, 21, 31, 40, tzinfo=UTC)
CAVAGE_BASIC = (
    'keyId="Test",algorithm="rsa-sha256",headers="(request-target) host date",'
    'signature="HUxc9BS3P/kPhSmJo+0pQ4IsCo007vkv6bUm4Qehrx+B1Eo4Mq5/6KylET72ZpMUS80XvjlOPjKz'
    "xfeTQj4DiKbAzwJAb4HX3qX6obQTa00/qPDXlMepD2JtTw33yNnm/0xV7fQuvILN/ys+378Ysi082+4xBQFwvh"
    'NvSoVsGv4="'
)
CAVAGE_ALL = (
    'keyId="Test",algorithm="rsa-sha256",'
    'headers="(request-target) host date content-type digest content-length",'
    'signature="Ef7MlxLXoBovhil3AlyjtBwAL9g4TN3tibLj7uuNB3CROat/9KaeQ4hW2NiJ+pZ6HQEOx9vYZAyi+7'
    "cmIkmJszJCut5kQLAwuX+Ms/mUFvpKlSo9StS2bMXDBNjOh4Auj774GFj4gwjS+3NhFeoqyr/MuN6HsEnkvn6zdg"
    'fE2i0="'
)

# RFC 9421 appendix B.1.4 test-key-ed25519 and B.2.6 (signing a request using ed25519).
RFC9421_ED25519_PRIVATE = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n"
    "-----END PRIVATE KEY-----\n"
)
B2_URL = "https://example.com/foo?param=Value&Pet=dog"
B2_HEADERS = {
    "Host": "example.com",
    "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
    "Content-Type": "application/json",
    "Content-Digest": (
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
    ),
    "Content-Length": "18",
}
B26_CREATED = 1618884473
B26_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
B26_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPp"
    "BKRCw==:"
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
ALICE_KEY = "https://salon.example/users/alice#main-key"
INBOX = "https://remote.example/inbox"
FOLLOW_BODY = b'{"type":"Follow"}'


@pytest.fixture(scope="module")
def cavage_key() -> rsa.RSAPrivateKey:
    key = keys.load_private_key_pem(CAVAGE_TEST_KEY)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return keys.generate_rsa_private_key()


@pytest.fixture(scope="module")
def ed_key() -> keys.PrivateKey:
    return keys.load_private_key_pem(RFC9421_ED25519_PRIVATE)


def signed_post(key: keys.PrivateKey, body: bytes = FOLLOW_BODY, url: str = INBOX) -> HttpRequest:
    request = HttpRequest("POST", url, {"Content-Type": "application/activity+json"}, body)
    return request.with_headers(sign_cavage(request, key_id=ALICE_KEY, private_key=key, now=NOW))


def expect_error(message: str) -> AbstractContextManager[Any]:
    return pytest.raises(SignatureError, match=f"^{re.escape(message)}$")


# -- digests --


def test_digest_vectors_from_the_specs() -> None:
    # draft-cavage appendix C and RFC 9530 section 2 / RFC 9421 appendix B.2 use this body.
    assert digest_header(CAVAGE_BODY) == "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
    assert content_digest_header(CAVAGE_BODY) == (
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    )
    assert content_digest_header(CAVAGE_BODY, "sha-512") == B2_HEADERS["Content-Digest"]
    verify_digest(CAVAGE_HEADERS["Digest"], CAVAGE_BODY)
    verify_digest("sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=, MD5=abc", CAVAGE_BODY)
    verify_content_digest(B2_HEADERS["Content-Digest"], CAVAGE_BODY)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
            "Digest header does not match the body",
        ),
        (
            "MD5=Sd/dVLAcvNLSq16eXua5uQ==",
            "Digest header has no supported algorithm (SHA-256, SHA-512)",
        ),
        ("SHA-256", "malformed Digest header"),
        ("SHA-256=not*base64", "malformed Digest header"),
    ],
)
def test_digest_rejections(value: str, message: str) -> None:
    with expect_error(message):
        verify_digest(value, b"tampered")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
            "Content-Digest header does not match the body",
        ),
        (
            "md5=:Sd/dVLAcvNLSq16eXua5uQ==:",
            "Content-Digest header has no supported algorithm (sha-256, sha-512)",
        ),
        ("sha-256=abc", "malformed Content-Digest header: sha-256 is not a byte sequence"),
        ("sha-256=:abc", "malformed Content-Digest header: unterminated byte sequence at offset 8"),
    ],
)
def test_content_digest_rejections(value: str, message: str) -> None:
    with expect_error(message):
        verify_content_digest(value, b"tampered")


# -- request model --


def test_request_model_joins_repeated_fields_and_splits_the_target() -> None:
    request = HttpRequest(
        "post", "https://a.example/inbox?x=1&y=%20", [("Accept", "a"), ("accept", " b ")]
    )
    assert request.method == "POST"
    assert request.header("ACCEPT") == "a, b"
    assert (request.path, request.query) == ("/inbox", "x=1&y=%20")
    assert request.request_target == "/inbox?x=1&y=%20"
    assert HttpRequest("GET", "https://a.example").request_target == "/"
    assert HttpRequest("GET", "https://a.example/p?").query == ""
    with expect_error("request URL must be absolute http(s): '/inbox'"):
        HttpRequest("GET", "/inbox")


def test_http_date_and_naive_clock() -> None:
    assert http_date(NOW) == "Wed, 01 May 2024 12:00:00 GMT"
    with pytest.raises(ValueError, match=r"^now must be a timezone-aware datetime$"):
        http_date(datetime(2024, 5, 1))


# -- draft-cavage: parsing --


def test_cavage_header_parse_and_serialize_round_trip() -> None:
    parsed = CavageSignature.parse(CAVAGE_BASIC)
    assert parsed.key_id == "Test"
    assert parsed.algorithm == "rsa-sha256"
    assert parsed.headers == ("(request-target)", "host", "date")
    assert len(parsed.signature) == 128
    assert parsed.serialize() == CAVAGE_BASIC
    assert CavageSignature.parse(parsed.serialize()) == parsed


def test_cavage_header_parse_is_lenient_where_peers_differ() -> None:
    parsed = CavageSignature.parse(
        'keyid="k\\"1", Algorithm=hs2019 ,created=1402170695, expires=1402170995,'
        'headers="(request-target) (created) Host",signature="AAAA"'
    )
    assert parsed == CavageSignature(
        key_id='k"1',
        signature=b"\x00\x00\x00",
        algorithm="hs2019",
        headers=("(request-target)", "(created)", "host"),
        created=1402170695,
        expires=1402170995,
    )
    assert CavageSignature.parse('keyId="k",signature="AAAA"').headers == ("date",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Signature header is empty"),
        ("   ", "Signature header is empty"),
        ('keyId="k"', "Signature header is missing signature"),
        ('signature="AAAA"', "Signature header is missing keyId"),
        (
            'keyId="k",keyId="j",signature="AAAA"',
            "Signature header has a duplicate keyId parameter",
        ),
        ('keyId="k,signature="AAAA"', "malformed Signature header: expected ',' at offset 20"),
        ('keyId="k",signature="AAAA', "malformed Signature header: unterminated quoted string"),
        ('keyId="k" signature="AAAA"', "malformed Signature header: expected ',' at offset 10"),
        ("keyId", "malformed Signature header: expected '=' at offset 0"),
        ('="k"', "malformed Signature header: bad parameter name at offset 0"),
        ('keyId="k",signature="A*A="', "Signature header signature is not valid base64"),
        ('keyId="k",signature="AAAA",created=soon', "Signature header created is not an integer"),
        ('keyId="k",signature="AAAA",headers=""', "Signature header headers parameter is empty"),
    ],
)
def test_cavage_header_parse_errors(value: str, message: str) -> None:
    with expect_error(message):
        CavageSignature.parse(value)


# -- draft-cavage: published vectors --


def test_verifies_the_published_basic_and_all_headers_vectors(
    cavage_key: rsa.RSAPrivateKey,
) -> None:
    public = cavage_key.public_key()
    basic = HttpRequest(
        "POST", CAVAGE_URL, {**CAVAGE_HEADERS, "Signature": CAVAGE_BASIC}, CAVAGE_BODY
    )
    result = verify_cavage(basic, public, now=CAVAGE_NOW, require_body_digest=False)
    assert result == VerifiedSignature(
        "Test", "draft-cavage", "rsa-sha256", ("(request-target)", "host", "date")
    )
    full = HttpRequest("POST", CAVAGE_URL, {**CAVAGE_HEADERS, "Signature": CAVAGE_ALL}, CAVAGE_BODY)
    assert verify_cavage(full, public, now=CAVAGE_NOW).covered[-2:] == ("digest", "content-length")
    # The Authorization form (draft-cavage section 3) carries the same parameters.
    auth = HttpRequest(
        "POST",
        CAVAGE_URL,
        {**CAVAGE_HEADERS, "Authorization": "Signature " + CAVAGE_ALL},
        CAVAGE_BODY,
    )
    assert verify_request(auth, public, now=CAVAGE_NOW).key_id == "Test"


def test_published_basic_vector_needs_digest_coverage_by_default(
    cavage_key: rsa.RSAPrivateKey,
) -> None:
    basic = HttpRequest(
        "POST", CAVAGE_URL, {**CAVAGE_HEADERS, "Signature": CAVAGE_BASIC}, CAVAGE_BODY
    )
    with expect_error("signature must cover digest for a request with a body"):
        verify_cavage(basic, cavage_key.public_key(), now=CAVAGE_NOW)


# -- draft-cavage: signing --


def test_sign_cavage_post_fixed_vector(cavage_key: rsa.RSAPrivateKey) -> None:
    request = HttpRequest("POST", INBOX, {"Content-Type": "application/activity+json"}, FOLLOW_BODY)
    added = sign_cavage(request, key_id=ALICE_KEY, private_key=cavage_key, now=NOW)
    expected_digest = base64.b64encode(hashlib.sha256(FOLLOW_BODY).digest()).decode()
    assert added == {
        "Host": "remote.example",
        "Date": "Wed, 01 May 2024 12:00:00 GMT",
        "Digest": f"SHA-256={expected_digest}",
        "Signature": (
            'keyId="https://salon.example/users/alice#main-key",algorithm="rsa-sha256",'
            'headers="(request-target) host date digest",'
            'signature="sTIBaCDVRoEH26HDvwAcrz51PCklhiJa2p+S2ekOX+dT04eHc1NTgqJpusgSuhU/ADZEpK3NvMlJ'
            "ig/yf4AOFdn4xWfrMy2tBmcRzdzGscOOy8ypPY2+Z2WUwc1lSfrJoeOyRIL/j0YzPtd4ijab3H7fM494miW136"
            'Cb5kEDAos="'
        ),
    }
    # The exact string is also accepted by an independent implementation (httpsig).
    verifier = httpsig.HeaderVerifier(
        headers={**added, "Content-Type": "application/activity+json"},
        secret=keys.public_key_to_pem(cavage_key.public_key()),
        required_headers=["(request-target)", "host", "date", "digest"],
        method="POST",
        path="/inbox",
        sign_header="signature",
    )
    assert verifier.verify() is True


def test_sign_cavage_get_covers_query_and_port_without_digest(
    cavage_key: rsa.RSAPrivateKey,
) -> None:
    request = HttpRequest("GET", "http://remote.example:8101/users/bob?page=2")
    added = sign_cavage(
        request, key_id="https://salon.example/actor#main-key", private_key=cavage_key, now=NOW
    )
    assert added == {
        "Host": "remote.example:8101",
        "Date": "Wed, 01 May 2024 12:00:00 GMT",
        "Signature": (
            'keyId="https://salon.example/actor#main-key",algorithm="rsa-sha256",'
            'headers="(request-target) host date",'
            'signature="XZfO5Rc4b/TW3U26n9CUraFNoeBFh99e5Px+q92fZ8EoTFGIiONrc0NKsOdTjLDVNoP0cXftm3u4'
            "A+C+mtrQPvJreSkstwQ8SioP29q5YA0E08s21GFmWNEyoE9kNjDxBoYpeS+aqJ8kJaXCbkFEHYQfkw+oEncU29S"
            'mLvUEqD4="'
        ),
    }
    verifier = httpsig.HeaderVerifier(
        headers=added,
        secret=keys.public_key_to_pem(cavage_key.public_key()),
        required_headers=["(request-target)", "host", "date"],
        method="GET",
        path="/users/bob?page=2",
        sign_header="signature",
    )
    assert verifier.verify() is True
    result = verify_request(request.with_headers(added), cavage_key.public_key(), now=NOW)
    assert result.covered == ("(request-target)", "host", "date")


def test_sign_then_verify_round_trip_with_a_2048_bit_key(rsa_key: rsa.RSAPrivateKey) -> None:
    request = signed_post(rsa_key)
    assert signature_scheme(request) == "draft-cavage"
    assert signature_key_id(request) == ALICE_KEY
    result = verify_request(request, rsa_key.public_key(), now=NOW + timedelta(minutes=59))
    assert result == VerifiedSignature(
        ALICE_KEY, "draft-cavage", "rsa-sha256", ("(request-target)", "host", "date", "digest")
    )


def test_httpsig_signed_request_verifies(rsa_key: rsa.RSAPrivateKey) -> None:
    """An independent signer (httpsig, pycryptodome underneath) produces what we accept."""
    headers = {
        "Host": "salon.example",
        "Date": http_date(NOW),
        "Digest": digest_header(FOLLOW_BODY),
    }
    signer = httpsig.HeaderSigner(
        key_id=ALICE_KEY,
        secret=keys.private_key_to_pem(rsa_key),
        algorithm="rsa-sha256",
        headers=["(request-target)", "host", "date", "digest"],
        sign_header="signature",
    )
    signed = signer.sign(headers, method="POST", path="/inbox?via=test")
    request = HttpRequest("POST", "https://salon.example/inbox?via=test", signed, FOLLOW_BODY)
    assert verify_request(request, rsa_key.public_key(), now=NOW).key_id == ALICE_KEY


# -- draft-cavage: hs2019, (created), query fallback --


def _manual_signature(key: keys.PrivateKey, signing_string: str) -> str:
    data = signing_string.encode()
    if isinstance(key, rsa.RSAPrivateKey):
        return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()
    return base64.b64encode(key.sign(data)).decode()


def test_hs2019_with_rsa_and_created_expires(rsa_key: rsa.RSAPrivateKey) -> None:
    created, expires = int(NOW.timestamp()) - 10, int(NOW.timestamp()) + 300
    signing_string = (
        f"(request-target): post /inbox\n(created): {created}\n(expires): {expires}\n"
        f"host: salon.example\ndigest: {digest_header(FOLLOW_BODY)}"
    )
    header = (
        f'keyId="{ALICE_KEY}",algorithm="hs2019",created={created},expires={expires},'
        'headers="(request-target) (created) (expires) host digest",'
        f'signature="{_manual_signature(rsa_key, signing_string)}"'
    )
    request = HttpRequest(
        "POST",
        "https://salon.example/inbox",
        {"Host": "salon.example", "Digest": digest_header(FOLLOW_BODY), "Signature": header},
        FOLLOW_BODY,
    )
    assert verify_request(request, rsa_key.public_key(), now=NOW).algorithm == "hs2019"
    with expect_error("signature has expired"):
        verify_request(request, rsa_key.public_key(), now=NOW + timedelta(seconds=301))


def test_hs2019_with_ed25519_signed_by_us(ed_key: keys.PrivateKey) -> None:
    request = signed_post(ed_key)
    assert 'algorithm="hs2019"' in (request.header("signature") or "")
    public = ed_key.public_key()
    assert verify_request(request, public, now=NOW).algorithm == "hs2019"


def test_request_target_without_query_is_accepted(rsa_key: rsa.RSAPrivateKey) -> None:
    date = http_date(NOW)
    signing_string = f"(request-target): get /users/alice\nhost: salon.example\ndate: {date}"
    header = (
        f'keyId="{ALICE_KEY}",algorithm="rsa-sha256",headers="(request-target) host date",'
        f'signature="{_manual_signature(rsa_key, signing_string)}"'
    )
    request = HttpRequest(
        "GET",
        "https://salon.example/users/alice?format=json",
        {"Host": "salon.example", "Date": date, "Signature": header},
    )
    assert verify_request(request, rsa_key.public_key(), now=NOW).key_id == ALICE_KEY


# -- draft-cavage: rejections --


def test_tampered_body_is_rejected(rsa_key: rsa.RSAPrivateKey) -> None:
    request = signed_post(rsa_key)
    tampered = HttpRequest(request.method, request.url, request.headers, b'{"type":"Block"}')
    with expect_error("Digest header does not match the body"):
        verify_request(tampered, rsa_key.public_key(), now=NOW)


def test_tampered_digest_header_is_rejected(rsa_key: rsa.RSAPrivateKey) -> None:
    body = b'{"type":"Block"}'
    request = signed_post(rsa_key).with_headers({"Digest": digest_header(body)})
    tampered = HttpRequest(request.method, request.url, request.headers, body)
    with expect_error(f"signature verification failed for key {ALICE_KEY}"):
        verify_request(tampered, rsa_key.public_key(), now=NOW)


def test_tampered_target_host_and_date_are_rejected(rsa_key: rsa.RSAPrivateKey) -> None:
    request = signed_post(rsa_key)
    moved = HttpRequest(
        request.method, "https://remote.example/users/bob/inbox", request.headers, request.body
    )
    rehosted = request.with_headers({"Host": "other.example"})
    redated = request.with_headers({"Date": http_date(NOW + timedelta(seconds=1))})
    for bad in (moved, rehosted, redated):
        with expect_error(f"signature verification failed for key {ALICE_KEY}"):
            verify_request(bad, rsa_key.public_key(), now=NOW)


def test_wrong_key_is_rejected(rsa_key: rsa.RSAPrivateKey, cavage_key: rsa.RSAPrivateKey) -> None:
    with expect_error(f"signature verification failed for key {ALICE_KEY}"):
        verify_request(signed_post(rsa_key), cavage_key.public_key(), now=NOW)


@pytest.mark.parametrize("skew", [timedelta(hours=1, seconds=1), -timedelta(hours=1, seconds=1)])
def test_date_outside_one_hour_is_rejected(rsa_key: rsa.RSAPrivateKey, skew: timedelta) -> None:
    with expect_error("Date header is outside the allowed clock skew (3600 s)"):
        verify_request(signed_post(rsa_key), rsa_key.public_key(), now=NOW + skew)
    assert verify_request(signed_post(rsa_key), rsa_key.public_key(), now=NOW + skew / 2)


def test_invalid_date_is_rejected(rsa_key: rsa.RSAPrivateKey) -> None:
    request = signed_post(rsa_key).with_headers({"Date": "yesterday"})
    with expect_error("Date header is not a valid HTTP date: 'yesterday'"):
        verify_request(request, rsa_key.public_key(), now=NOW)


def test_missing_covered_header_is_rejected(rsa_key: rsa.RSAPrivateKey) -> None:
    request = signed_post(rsa_key)
    without_host = HttpRequest(
        request.method,
        request.url,
        [(k, v) for k, v in request.headers if k != "Host"],
        request.body,
    )
    with expect_error("missing header covered by signature: host"):
        verify_request(without_host, rsa_key.public_key(), now=NOW)


def test_unsigned_request_is_rejected(rsa_key: rsa.RSAPrivateKey) -> None:
    with expect_error("request is not signed (no Signature header)"):
        verify_request(HttpRequest("POST", INBOX, {}, FOLLOW_BODY), rsa_key.public_key(), now=NOW)
    with expect_error("request is not signed (no Signature header)"):
        signature_key_id(HttpRequest("GET", INBOX, {"Authorization": "Bearer abc"}))


@pytest.mark.parametrize(
    ("headers", "algorithm", "message"),
    [
        ("host date digest", "rsa-sha256", "signature must cover (request-target)"),
        ("(request-target) host digest", "rsa-sha256", "signature must cover date or (created)"),
        (
            "(request-target) host date",
            "rsa-sha256",
            "signature must cover digest for a request with a body",
        ),
        (
            "(request-target) host date digest",
            "hmac-sha256",
            "unsupported signature algorithm: hmac-sha256",
        ),
        (
            "(request-target) host date digest",
            "rsa-sha1",
            "unsupported signature algorithm: rsa-sha1",
        ),
    ],
)
def test_coverage_and_algorithm_policy(
    rsa_key: rsa.RSAPrivateKey, headers: str, algorithm: str, message: str
) -> None:
    header = f'keyId="{ALICE_KEY}",algorithm="{algorithm}",headers="{headers}",signature="AAAA"'
    request = signed_post(rsa_key).with_headers({"Signature": header})
    with expect_error(message):
        verify_request(request, rsa_key.public_key(), now=NOW)


def test_rsa_sha256_with_an_ed25519_key_is_rejected(
    rsa_key: rsa.RSAPrivateKey, ed_key: keys.PrivateKey
) -> None:
    with expect_error(f"algorithm rsa-sha256 needs an RSA key, {ALICE_KEY} is Ed25519"):
        verify_request(signed_post(rsa_key), ed_key.public_key(), now=NOW)


def test_key_lookup_callable(rsa_key: rsa.RSAPrivateKey) -> None:
    known = {ALICE_KEY: rsa_key.public_key()}
    assert verify_request(signed_post(rsa_key), known.get, now=NOW).key_id == ALICE_KEY
    with expect_error(f"unknown key: {ALICE_KEY}"):
        verify_request(signed_post(rsa_key), {}.get, now=NOW)


# -- RFC 9421 --


def b26_request(extra: dict[str, str] | None = None) -> HttpRequest:
    return HttpRequest("POST", B2_URL, {**B2_HEADERS, **(extra or {})}, CAVAGE_BODY)


def test_rfc9421_b26_published_signature_is_reproduced_and_verified(
    ed_key: keys.PrivateKey,
) -> None:
    added = sign_rfc9421(
        b26_request(),
        key_id="test-key-ed25519",
        private_key=ed_key,
        now=datetime.fromtimestamp(B26_CREATED, UTC),
        components=("date", "@method", "@path", "@authority", "content-type", "content-length"),
        label="sig-b26",
        include_alg=False,
    )
    assert added == {"Signature-Input": B26_INPUT, "Signature": B26_SIGNATURE}
    request = b26_request({"Signature-Input": B26_INPUT, "Signature": B26_SIGNATURE})
    assert signature_scheme(request) == "rfc9421"
    assert signature_key_id(request) == "test-key-ed25519"
    result = verify_request(
        request,
        ed_key.public_key(),
        now=datetime.fromtimestamp(B26_CREATED, UTC),
        require_body_digest=False,
    )
    assert result == VerifiedSignature(
        "test-key-ed25519",
        "rfc9421",
        "ed25519",
        ("date", "@method", "@path", "@authority", "content-type", "content-length"),
    )
    with expect_error('signature must cover "content-digest" for a request with a body'):
        verify_request(request, ed_key.public_key(), now=datetime.fromtimestamp(B26_CREATED, UTC))


def test_rfc9421_ed25519_fixed_vector(ed_key: keys.PrivateKey) -> None:
    request = HttpRequest("POST", INBOX, {"Content-Type": "application/activity+json"}, FOLLOW_BODY)
    key_id = "https://salon.example/users/alice#ed25519-key"
    added = sign_rfc9421(request, key_id=key_id, private_key=ed_key, now=NOW)
    assert added == {
        "Date": "Wed, 01 May 2024 12:00:00 GMT",
        "Content-Digest": "sha-256=:GYwYnH3BiO6aICFt0ThC5bUIJ4byvqdpWtR8m5fNkww=:",
        "Signature-Input": (
            'sig1=("@method" "@target-uri" "@authority" "date" "content-digest")'
            ';created=1714564800;keyid="https://salon.example/users/alice#ed25519-key"'
            ';alg="ed25519"'
        ),
        "Signature": (
            "sig1=:ICQ+B3hl5MzzqY+WnOZHFqI4+03suXp0fxAXpdfCsT7KN6Oq/4ccd6Os7edXyMtIj5addBJYAEDk"
            "ReYJ0TNgAg==:"
        ),
    }
    result = verify_request(request.with_headers(added), ed_key.public_key(), now=NOW)
    assert (result.scheme, result.algorithm) == ("rfc9421", "ed25519")


def test_rfc9421_rsa_round_trip_get_and_post(rsa_key: rsa.RSAPrivateKey) -> None:
    for request in (
        HttpRequest("GET", "https://remote.example/users/bob?page=1"),
        HttpRequest("POST", INBOX, {}, FOLLOW_BODY),
    ):
        added = sign_rfc9421(request, key_id=ALICE_KEY, private_key=rsa_key, now=NOW)
        assert ("Content-Digest" in added) is (request.method == "POST")
        result = verify_rfc9421(request.with_headers(added), rsa_key.public_key(), now=NOW)
        assert result.algorithm == "rsa-v1_5-sha256"


def test_rfc9421_derived_components(ed_key: keys.PrivateKey) -> None:
    request = HttpRequest("GET", "http://Salon.Example:80/rooms/7?x=%20y&z")
    components = (
        "@method", "@scheme", "@authority", "@path", "@query", "@request-target", "@target-uri"
    )  # fmt: skip
    assert signature_base(request, components, key_id="k", now=NOW) == (
        '"@method": GET\n'
        '"@scheme": http\n'
        '"@authority": salon.example\n'
        '"@path": /rooms/7\n'
        '"@query": ?x=%20y&z\n'
        '"@request-target": /rooms/7?x=%20y&z\n'
        '"@target-uri": http://Salon.Example:80/rooms/7?x=%20y&z\n'
        '"@signature-params": ("@method" "@scheme" "@authority" "@path" "@query" '
        '"@request-target" "@target-uri");created=1714564800;keyid="k"'
    )
    added = sign_rfc9421(request, key_id="k", private_key=ed_key, now=NOW, components=components)
    signed = request.with_headers(added)
    assert verify_rfc9421(signed, ed_key.public_key(), now=NOW).covered == components
    no_query = HttpRequest("GET", "https://salon.example/rooms/7")
    base = signature_base(no_query, ("@query",), key_id="k", now=NOW)
    assert base.splitlines()[0] == '"@query": ?'


def rfc9421_signed(key: keys.PrivateKey) -> HttpRequest:
    request = HttpRequest("POST", INBOX, {}, FOLLOW_BODY)
    return request.with_headers(sign_rfc9421(request, key_id=ALICE_KEY, private_key=key, now=NOW))


_CREATED = ';keyid="k";created=1714564800'
_BODY_BOUND = '"@method" "@target-uri" "content-digest"'


@pytest.mark.parametrize(
    ("signature_input", "signature", "message"),
    [
        (None, "sig1=:AAAA:", "request has no Signature-Input header"),
        ('sig1=("@method")', None, "request has no Signature header"),
        (
            "sig1=(",
            "sig1=:AAAA:",
            "malformed Signature-Input header: unterminated inner list at offset 6",
        ),
        ('sig1=("@method")', "sig1=AAAA", 'Signature header has no byte sequence labelled "sig1"'),
        ('sig1="x"', "sig1=:AAAA:", 'Signature-Input has no signature labelled "sig1"'),
        ('sig1=("@method");created=1', "sig1=:AAAA:", 'Signature-Input "sig1" has no keyid'),
        (
            'sig1=("@method");keyid="k";created="1"',
            "sig1=:AAAA:",
            'Signature-Input "sig1" created must be an integer',
        ),
        (
            'sig1=("@method");keyid="k";alg="hmac-sha256"',
            "sig1=:AAAA:",
            "unsupported signature algorithm: hmac-sha256",
        ),
        ('sig1=("@target-uri");keyid="k"', "sig1=:AAAA:", 'signature must cover "@method"'),
        (
            'sig1=("@method" "@path");keyid="k"',
            "sig1=:AAAA:",
            'signature must cover "@target-uri" (or "@path" and "@authority")',
        ),
        (
            f'sig1=({_BODY_BOUND});keyid="k"',
            "sig1=:AAAA:",
            'signature has neither a created parameter nor a covered "date"',
        ),
        (
            f'sig1=("@method" "@target-uri"){_CREATED}',
            "sig1=:AAAA:",
            'signature must cover "content-digest" for a request with a body',
        ),
        (
            f'sig1=({_BODY_BOUND} "x-missing"){_CREATED}',
            "sig1=:AAAA:",
            'missing component covered by signature: "x-missing"',
        ),
        (
            f"sig1=({_BODY_BOUND};sf){_CREATED}",
            "sig1=:AAAA:",
            'unsupported component parameter ;sf on "content-digest"',
        ),
        (
            f'sig1=("@method" {_BODY_BOUND}){_CREATED}',
            "sig1=:AAAA:",
            'component "@method" is covered twice',
        ),
        (
            f'sig1=({_BODY_BOUND} "@status"){_CREATED}',
            "sig1=:AAAA:",
            'unsupported derived component: "@status"',
        ),
        (
            f'sig1=({_BODY_BOUND} "Date"){_CREATED}',
            "sig1=:AAAA:",
            'component "Date" is not lowercase',
        ),
    ],
)
def test_rfc9421_structural_rejections(
    ed_key: keys.PrivateKey, signature_input: str | None, signature: str | None, message: str
) -> None:
    request = rfc9421_signed(ed_key)
    pairs = [(k, v) for k, v in request.headers if k not in ("Signature-Input", "Signature")]
    if signature_input is not None:
        pairs.append(("Signature-Input", signature_input))
    if signature is not None:
        pairs.append(("Signature", signature))
    broken = HttpRequest(request.method, request.url, pairs, request.body)
    with expect_error(message):
        verify_rfc9421(broken, ed_key.public_key(), now=NOW)


def test_rfc9421_tampering_and_clock(ed_key: keys.PrivateKey, rsa_key: rsa.RSAPrivateKey) -> None:
    request = rfc9421_signed(ed_key)
    public = ed_key.public_key()
    with expect_error("Content-Digest header does not match the body"):
        verify_rfc9421(HttpRequest("POST", INBOX, request.headers, b"{}"), public, now=NOW)
    with expect_error(f"signature verification failed for key {ALICE_KEY}"):
        verify_rfc9421(
            HttpRequest("POST", INBOX + "?x", request.headers, request.body), public, now=NOW
        )
    with expect_error(f"signature verification failed for key {ALICE_KEY}"):
        verify_rfc9421(request, keys.generate_ed25519_private_key().public_key(), now=NOW)
    with expect_error(f"algorithm ed25519 does not match the RSA key {ALICE_KEY}"):
        verify_rfc9421(request, rsa_key.public_key(), now=NOW)
    late = NOW + timedelta(hours=1, seconds=1)
    with expect_error("Date header is outside the allowed clock skew (3600 s)"):
        verify_rfc9421(request, public, now=late)
    undated = HttpRequest("POST", INBOX, {}, FOLLOW_BODY)
    components = ("@method", "@target-uri", "content-digest")
    signed = undated.with_headers(
        sign_rfc9421(undated, key_id=ALICE_KEY, private_key=ed_key, now=NOW, components=components)
    )
    assert verify_rfc9421(signed, public, now=NOW - timedelta(minutes=30)).covered == components
    with expect_error("signature created time is outside the allowed clock skew (3600 s)"):
        verify_rfc9421(signed, public, now=late)


def test_rfc9421_label_selection(ed_key: keys.PrivateKey) -> None:
    request = rfc9421_signed(ed_key)
    with expect_error('Signature-Input has no signature labelled "other"'):
        verify_rfc9421(request, ed_key.public_key(), now=NOW, label="other")
    assert verify_rfc9421(request, ed_key.public_key(), now=NOW, label="sig1").key_id == ALICE_KEY
