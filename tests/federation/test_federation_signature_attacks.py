"""A hostile node's requests against the signature wrapper, each with the exact refusal.

Salon's RFC 9421 and RFC 8941 code is now http-message-signatures and http-sf with
Salon's policy around them; these pin that policy: malformed and ambiguous structured
fields (repeated labels and parameters, the offsets Salon reports), huge and odd values,
algorithms that do not fit the key, components Salon does not accept, and clocks.
Every test here fails if the check it names is removed.
"""

from __future__ import annotations

import base64
import re
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from federation import keys
from federation.signatures import (
    HttpRequest,
    SignatureError,
    content_digest_header,
    sign_cavage,
    sign_rfc9421,
    signature_key_id,
    verify_content_digest,
    verify_request,
    verify_rfc9421,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
STAMP = int(NOW.timestamp())
KEY = "https://evil.example/users/mallory#key"
INBOX = "https://salon.example/inbox"
BODY = b'{"type":"Follow"}'
UNDATED = ("@method", "@target-uri", "content-digest")


@pytest.fixture(scope="module")
def ed_key() -> keys.PrivateKey:
    return keys.generate_ed25519_private_key()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return keys.generate_rsa_private_key()


def expect_error(message: str) -> AbstractContextManager[Any]:
    return pytest.raises(SignatureError, match=f"^{re.escape(message)}$")


def signed(
    key: keys.PrivateKey, *, now: datetime = NOW, components: tuple[str, ...] | None = None
) -> HttpRequest:
    request = HttpRequest("POST", INBOX, {"Content-Type": "application/activity+json"}, BODY)
    added = sign_rfc9421(request, key_id=KEY, private_key=key, now=now, components=components)
    return request.with_headers(added)


def with_signature(request: HttpRequest, signature_input: str, signature: str) -> HttpRequest:
    return request.with_headers({"Signature-Input": signature_input, "Signature": signature})


# -- malformed structured fields: Salon's wording and offsets over http-sf's parser --

_BOUND = '"@method" "@target-uri" "content-digest"'
_GOOD = f'({_BOUND});created={STAMP};keyid="k"'


@pytest.mark.parametrize(
    ("signature_input", "message"),
    [
        ("Sig1=" + _GOOD, "expected a key at offset 0"),
        (f"sig1={_GOOD},", "trailing ',' in dictionary at offset 77"),
        (f"sig1={_GOOD} sig2=()", "expected ',' between dictionary members at offset 77"),
        ("sig1=&", "not a valid structured field at offset 5"),
        ('sig1=("@method");keyid=%"%zz"', "not a valid structured field at offset 26"),
        ('sig1=("@method");keyid="open', "unterminated string at offset 28"),
        ('sig1=("@method");keyid="a\\x"', "invalid escape in string at offset 26"),
        (
            'sig1=("@method");created=1234567890123456',
            "integer has more than 15 digits at offset 40",
        ),
        ('sig1=("@method","@path")', "expected ' ' or ')' in inner list at offset 15"),
        ('sig1=("@method" "@path"', "unterminated inner list at offset 23"),
        ("sig1=?2", "invalid boolean at offset 6"),
        ('sig1=("@method");keyid="é"', "field value is not ASCII"),
        ('sig1=("@method");created=１２３', "field value is not ASCII"),
    ],
)
def test_malformed_signature_input(
    ed_key: keys.PrivateKey, signature_input: str, message: str
) -> None:
    request = with_signature(signed(ed_key), signature_input, "sig1=:AAAA:")
    with expect_error(f"malformed Signature-Input header: {message}"):
        verify_request(request, ed_key.public_key(), now=NOW)
    with expect_error(f"malformed Signature-Input header: {message}"):
        signature_key_id(request)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("sig1=:AAAA", "unterminated byte sequence at offset 5"),
        ("sig1=:AA*A:", "invalid base64 in byte sequence at offset 8"),
    ],
)
def test_malformed_signature(ed_key: keys.PrivateKey, signature: str, message: str) -> None:
    request = signed(ed_key)
    broken = with_signature(request, request.header("signature-input") or "", signature)
    with expect_error(f"malformed Signature header: {message}"):
        verify_request(broken, ed_key.public_key(), now=NOW)


def test_repeated_labels_and_parameters_are_refused(ed_key: keys.PrivateKey) -> None:
    """RFC 8941 lets the last duplicate win; two readers could then see two signatures."""
    request = signed(ed_key)
    good_input = request.header("signature-input") or ""
    good_signature = request.header("signature") or ""
    evil_input = good_input.replace(f'keyid="{KEY}"', 'keyid="https://salon.example/actor"')
    cases = [
        (f"{evil_input}, {good_input}", good_signature, "Signature-Input", 'member "sig1"'),
        (good_input, f"sig1=:AAAA:, {good_signature}", "Signature", 'member "sig1"'),
        (good_input.replace(";keyid=", ';keyid="x";keyid='), good_signature,
         "Signature-Input", 'parameter "keyid"'),
    ]  # fmt: skip
    for signature_input, signature, header, what in cases:
        broken = with_signature(request, signature_input, signature)
        with expect_error(f"malformed {header} header: duplicate {what}"):
            verify_request(broken, ed_key.public_key(), now=NOW)
    digest = content_digest_header(BODY)
    with expect_error('malformed Content-Digest header: duplicate member "sha-256"'):
        verify_content_digest(f"{digest}, sha-256=:AAAA:", BODY)


def test_empty_signature_input(ed_key: keys.PrivateKey) -> None:
    with expect_error("Signature-Input header is empty"):
        verify_request(with_signature(signed(ed_key), " ", "sig1=:AAAA:"), ed_key.public_key(),
                       now=NOW)  # fmt: skip


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (";created=1.5", 'Signature-Input "sig1" created must be an integer'),
        (f";created=@{STAMP}", 'Signature-Input "sig1" created must be an integer'),
        (";created=?1", 'Signature-Input "sig1" created must be an integer'),
        (';expires="soon"', 'Signature-Input "sig1" expires must be an integer'),
        (";alg=ed25519", 'Signature-Input "sig1" alg must be a string'),
    ],
)
def test_parameter_types(ed_key: keys.PrivateKey, params: str, message: str) -> None:
    signature_input = f'sig1=("@method" "@target-uri" "content-digest");keyid="k"{params}'
    with expect_error(message):
        verify_request(with_signature(signed(ed_key), signature_input, "sig1=:AAAA:"),
                       ed_key.public_key(), now=NOW)  # fmt: skip


def test_keyid_must_be_a_string(ed_key: keys.PrivateKey) -> None:
    for keyid in (":AAAA:", "evil", "1"):
        signature_input = f'sig1=("@method" "@target-uri");created={STAMP};keyid={keyid}'
        with expect_error('Signature-Input "sig1" has no keyid'):
            signature_key_id(with_signature(signed(ed_key), signature_input, "sig1=:AAAA:"))


# -- tampering with what was signed --


def test_changed_signature_parameters_break_the_signature(ed_key: keys.PrivateKey) -> None:
    request = signed(ed_key)
    good = request.header("signature-input") or ""
    signature = request.header("signature") or ""
    public = ed_key.public_key()
    for tampered in (
        good.replace('"content-digest")', '"content-digest" "content-type")'),
        good.replace(f"created={STAMP}", f"created={STAMP + 1}"),
        good.replace(';alg="ed25519"', ""),
        good.replace(f';keyid="{KEY}";alg="ed25519"', f';alg="ed25519";keyid="{KEY}"'),
    ):
        with expect_error(f"signature verification failed for key {KEY}"):
            verify_request(with_signature(request, tampered, signature), public, now=NOW)
    # Whitespace is not signed: the base holds the canonical serialisation (RFC 9421 2.3).
    spaced = good.replace("(", "(  ").replace('" "', '"   "')
    assert verify_request(with_signature(request, spaced, signature), public, now=NOW)


def test_only_the_first_label_counts(ed_key: keys.PrivateKey) -> None:
    request = signed(ed_key)
    good = request.header("signature-input") or ""
    signature = request.header("signature") or ""
    decoy = f'sig0=("@method" "@target-uri" "content-digest");created={STAMP};keyid="{KEY}"'
    first_bad = with_signature(request, f"{decoy}, {good}", f"sig0=:AAAA:, {signature}")
    with expect_error(f"signature verification failed for key {KEY}"):
        verify_request(first_bad, ed_key.public_key(), now=NOW)
    assert verify_rfc9421(first_bad, ed_key.public_key(), now=NOW, label="sig1")
    # Labels in Signature that Signature-Input does not name are left alone.
    extra = with_signature(request, good, f"{signature}, other=:AAAA:")
    assert verify_request(extra, ed_key.public_key(), now=NOW).key_id == KEY


def test_unknown_signature_metadata_is_refused(ed_key: keys.PrivateKey) -> None:
    request = signed(ed_key)
    good = request.header("signature-input") or ""
    added = good + ';foo="bar"'
    with pytest.raises(SignatureError, match=r'^RFC 9421 signature rejected: .*"foo"'):
        verify_request(with_signature(request, added, request.header("signature") or ""),
                       ed_key.public_key(), now=NOW)  # fmt: skip


# -- algorithms and keys --


@pytest.mark.parametrize(
    "alg", ["hmac-sha256", "rsa-pss-sha512", "ecdsa-p256-sha256", "ecdsa-p384-sha384", "none"]
)
def test_algorithms_salon_does_not_accept(ed_key: keys.PrivateKey, alg: str) -> None:
    request = signed(ed_key)
    signature_input = (request.header("signature-input") or "").replace("ed25519", alg)
    with expect_error(f"unsupported signature algorithm: {alg}"):
        verify_request(with_signature(request, signature_input, request.header("signature") or ""),
                       ed_key.public_key(), now=NOW)  # fmt: skip


def test_alg_must_fit_the_key(ed_key: keys.PrivateKey, rsa_key: rsa.RSAPrivateKey) -> None:
    by_rsa = signed(rsa_key)
    with expect_error(f"algorithm rsa-v1_5-sha256 does not match the Ed25519 key {KEY}"):
        verify_request(by_rsa, ed_key.public_key(), now=NOW)
    # Without alg the key decides, and an Ed25519 signature is no RSA signature.
    request = signed(ed_key)
    bare = (request.header("signature-input") or "").replace(';alg="ed25519"', "")
    unsigned_alg = with_signature(request, bare, request.header("signature") or "")
    with expect_error(f"signature verification failed for key {KEY}"):
        verify_request(unsigned_alg, rsa_key.public_key(), now=NOW)


def test_huge_signature_value(ed_key: keys.PrivateKey, rsa_key: rsa.RSAPrivateKey) -> None:
    huge = base64.b64encode(b"\x01" * 65536).decode()
    for key in (ed_key, rsa_key):
        request = signed(key)
        broken = with_signature(request, request.header("signature-input") or "", f"sig1=:{huge}:")
        with expect_error(f"signature verification failed for key {KEY}"):
            verify_request(broken, key.public_key(), now=NOW)


def test_huge_component_list(ed_key: keys.PrivateKey) -> None:
    names = " ".join(f'"x-h{i}"' for i in range(2000))
    signature_input = f'sig1=({_BOUND} {names});created={STAMP};keyid="k"'
    with expect_error('missing component covered by signature: "x-h0"'):
        verify_request(with_signature(signed(ed_key), signature_input, "sig1=:AAAA:"),
                       ed_key.public_key(), now=NOW)  # fmt: skip


# -- components Salon does not accept --


@pytest.mark.parametrize(
    ("component", "message"),
    [
        ('"@query-param";name="a"', 'unsupported component parameter ;name on "@query-param"'),
        ('"@query-param"', 'unsupported derived component: "@query-param"'),
        ('"@signature-params"', 'unsupported derived component: "@signature-params"'),
        ('"date";req', 'unsupported component parameter ;req on "date"'),
        ('"content-type";bs', 'unsupported component parameter ;bs on "content-type"'),
        (
            '"content-digest";key="sha-256"',
            'unsupported component parameter ;key on "content-digest"',
        ),
        ("content-type", "covered components must be strings"),
        ('"content-digest"', 'component "content-digest" is covered twice'),
        ('"X-Evil"', 'component "X-Evil" is not lowercase'),
        ('"authorization"', 'missing component covered by signature: "authorization"'),
    ],
)
def test_component_policy(ed_key: keys.PrivateKey, component: str, message: str) -> None:
    signature_input = f'sig1=({_BOUND} {component});keyid="k";created={STAMP}'
    with expect_error(message):
        verify_request(with_signature(signed(ed_key), signature_input, "sig1=:AAAA:"),
                       ed_key.public_key(), now=NOW)  # fmt: skip


def test_missing_covered_digest_header(ed_key: keys.PrivateKey) -> None:
    request = signed(ed_key)
    pairs = [(k, v) for k, v in request.fields.items() if k != "content-digest"]
    stripped = HttpRequest(request.method, request.url, pairs, request.body)
    with expect_error('missing component covered by signature: "content-digest"'):
        verify_request(stripped, ed_key.public_key(), now=NOW)


@pytest.mark.parametrize(
    ("value", "complaint"),
    [("Mallory é", "non-ASCII"), ("Mallory\u202e", "invalid control characters")],
)
def test_odd_unicode_in_a_covered_field(
    ed_key: keys.PrivateKey, value: str, complaint: str
) -> None:
    request = HttpRequest("POST", INBOX, {"X-Name": value}, BODY)
    components = (*UNDATED, "x-name")
    with pytest.raises(SignatureError, match=f"^cannot sign: .*{complaint}"):
        sign_rfc9421(request, key_id=KEY, private_key=ed_key, now=NOW, components=components)
    good = signed(ed_key, components=UNDATED)
    sneaky = good.with_headers({"X-Name": value})
    signature_input = (good.header("signature-input") or "").replace(
        '"content-digest")', '"content-digest" "x-name")'
    )
    broken = with_signature(sneaky, signature_input, good.header("signature") or "")
    with pytest.raises(SignatureError, match=f"^RFC 9421 signature rejected: .*{complaint}"):
        verify_request(broken, ed_key.public_key(), now=NOW)


# -- clocks --


def test_created_far_in_the_future_or_past(ed_key: keys.PrivateKey) -> None:
    for shift in (timedelta(hours=2), timedelta(days=3650), -timedelta(hours=2)):
        request = signed(ed_key, now=NOW + shift, components=UNDATED)
        with expect_error("signature created time is outside the allowed clock skew (3600 s)"):
            verify_request(request, ed_key.public_key(), now=NOW)
    assert verify_request(signed(ed_key, now=NOW + timedelta(minutes=59), components=UNDATED),
                          ed_key.public_key(), now=NOW)  # fmt: skip
    request = signed(ed_key)
    far = (request.header("signature-input") or "").replace(
        f"created={STAMP}", "created=999999999999999"
    )
    with expect_error("signature created time is outside the allowed clock skew (3600 s)"):
        verify_request(with_signature(request, far, "sig1=:AAAA:"), ed_key.public_key(), now=NOW)


def test_expired_signature(ed_key: keys.PrivateKey) -> None:
    request = signed(ed_key, components=UNDATED)
    expired = (request.header("signature-input") or "") + f";expires={STAMP - 1}"
    with expect_error("signature has expired"):
        verify_request(with_signature(request, expired, request.header("signature") or ""),
                       ed_key.public_key(), now=NOW)  # fmt: skip


def test_the_library_does_not_read_the_wall_clock(ed_key: keys.PrivateKey) -> None:
    """A signature from 2024 verifies at 2024 (the clock is injected), not only today."""
    request = signed(ed_key, components=UNDATED)
    assert verify_request(request, ed_key.public_key(), now=NOW).algorithm == "ed25519"
    future = datetime(2100, 1, 1, tzinfo=UTC)
    later = signed(ed_key, now=future, components=UNDATED)
    assert verify_request(later, ed_key.public_key(), now=future).key_id == KEY


# -- draft-cavage --


def test_cavage_created_must_be_ascii_digits(rsa_key: rsa.RSAPrivateKey) -> None:
    request = HttpRequest("POST", INBOX, {}, BODY)
    request = request.with_headers(sign_cavage(request, key_id=KEY, private_key=rsa_key, now=NOW))
    header = (request.header("signature") or "") + ",created=\u0661\u0662\u0663"
    with expect_error("Signature header created is not an integer"):
        verify_request(request.with_headers({"Signature": header}), rsa_key.public_key(), now=NOW)


def test_cavage_undecodable_header_bytes_fail_cleanly(rsa_key: rsa.RSAPrivateKey) -> None:
    """aiohttp hands undecodable header bytes over as surrogates; they must not crash."""
    request = HttpRequest("POST", INBOX, {}, BODY)
    request = request.with_headers(sign_cavage(request, key_id=KEY, private_key=rsa_key, now=NOW))
    header = (request.header("signature") or "").replace(
        'headers="(request-target) host date digest"',
        'headers="(request-target) host date digest x-raw"',
    )
    raw = request.with_headers({"Signature": header, "X-Raw": "caf\udce9"})
    with expect_error(f"signature verification failed for key {KEY}"):
        verify_request(raw, rsa_key.public_key(), now=NOW)


def test_request_target_must_be_an_encoded_uri(ed_key: keys.PrivateKey) -> None:
    """RFC 9421 derives @target-uri from the URI as sent: the library accepts RFC 3986 only."""
    good = HttpRequest("GET", "https://salon.example/users/a?x=%7Cy")
    signed_get = good.with_headers(sign_rfc9421(good, key_id=KEY, private_key=ed_key, now=NOW))
    assert verify_request(signed_get, ed_key.public_key(), now=NOW).key_id == KEY
    raw = HttpRequest("GET", "https://salon.example/users/a?x=|y", signed_get.headers)
    with pytest.raises(SignatureError, match=r"^RFC 9421 signature rejected: Invalid URL"):
        verify_request(raw, ed_key.public_key(), now=NOW)
