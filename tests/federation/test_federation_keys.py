"""Key generation, PEM and FEP-521a Multikey encodings, against published vectors."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from federation import keys

# W3C Data Integrity EdDSA Cryptosuites (vc-di-eddsa), "example private and public keys":
# a published Ed25519 pair in multibase form, independent of this code base.
VC_DI_EDDSA_SECRET = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
VC_DI_EDDSA_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"

# RFC 9421 appendix B.1.4 test-key-ed25519.
RFC9421_ED25519_PRIVATE = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n"
    "-----END PRIVATE KEY-----\n"
)
RFC9421_ED25519_PUBLIC = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n"
    "-----END PUBLIC KEY-----\n"
)


# Vectors from the base58btc description in draft-msporny-base58 (section 5).
@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"", ""),
        (b"\x00", "1"),
        (b"Hello World!", "2NEpo7TZRRrLZSi2U"),
        (
            b"The quick brown fox jumps over the lazy dog.",
            "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z",
        ),
        (bytes.fromhex("0000287fb4cd"), "11233QC4"),
    ],
)
def test_base58btc_vectors(raw: bytes, encoded: str) -> None:
    assert keys.b58encode(raw) == encoded
    assert keys.b58decode(encoded) == raw


def test_base58btc_rejects_characters_outside_the_alphabet() -> None:
    with pytest.raises(keys.KeyFormatError) as info:
        keys.b58decode("z0")
    assert str(info.value) == "invalid base58btc character '0' at position 1"
    with pytest.raises(
        keys.KeyFormatError, match=r"^invalid base58btc character 'l' at position 2$"
    ):
        keys.b58decode("11l")


def test_published_ed25519_pair_encodes_to_the_published_multikey() -> None:
    private = keys.decode_ed25519_private_multikey(VC_DI_EDDSA_SECRET)
    assert keys.encode_multikey(private.public_key()) == VC_DI_EDDSA_PUBLIC
    decoded = keys.decode_multikey(VC_DI_EDDSA_PUBLIC)
    assert isinstance(decoded, ed25519.Ed25519PublicKey)
    assert decoded == private.public_key()


def test_ed25519_multikey_round_trip_has_the_z6mk_prefix() -> None:
    public = keys.generate_ed25519_private_key().public_key()
    encoded = keys.encode_multikey(public)
    assert encoded.startswith("z6Mk")
    assert keys.decode_multikey(encoded) == public


def test_rsa_multikey_round_trip() -> None:
    public = keys.generate_rsa_private_key().public_key()
    encoded = keys.encode_multikey(public)
    assert encoded.startswith("z4MX")  # rsa-pub 0x1205 with a 2048-bit key
    decoded = keys.decode_multikey(encoded)
    assert isinstance(decoded, rsa.RSAPublicKey)
    assert decoded.public_numbers() == public.public_numbers()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("u7QE", "publicKeyMultibase must start with 'z' (base58btc)"),
        (
            "z" + keys.b58encode(b"\xed\x01" + b"\x01" * 31),
            "Ed25519 Multikey must hold 32 key bytes, got 31",
        ),
        (
            "z" + keys.b58encode(b"\xe7\x01" + b"\x02" * 33),
            "unsupported Multikey type (expected ed25519-pub or rsa-pub)",
        ),
    ],
)
def test_multikey_decoding_errors(value: str, message: str) -> None:
    with pytest.raises(keys.KeyFormatError) as info:
        keys.decode_multikey(value)
    assert str(info.value) == message


def test_pem_round_trips_for_both_key_types() -> None:
    for private in (keys.generate_rsa_private_key(), keys.generate_ed25519_private_key()):
        pem = keys.private_key_to_pem(private)
        assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")
        loaded = keys.load_private_key_pem(pem)
        assert keys.public_key_to_pem(loaded.public_key()) == keys.public_key_to_pem(
            private.public_key()
        )
        public_pem = keys.public_key_to_pem(private.public_key())
        assert public_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
        assert keys.public_key_to_pem(keys.load_public_key_pem(public_pem)) == public_pem


def test_rfc9421_test_key_pem_pair_matches() -> None:
    private = keys.load_private_key_pem(RFC9421_ED25519_PRIVATE)
    assert keys.public_key_to_pem(private.public_key()) == RFC9421_ED25519_PUBLIC


def test_public_pem_with_crlf_and_padding_whitespace_loads() -> None:
    messy = "\n  " + RFC9421_ED25519_PUBLIC.replace("\n", "\r\n") + "  \n"
    assert keys.public_key_to_pem(keys.load_public_key_pem(messy)) == RFC9421_ED25519_PUBLIC


def test_pem_errors_are_key_format_errors() -> None:
    with pytest.raises(keys.KeyFormatError, match=r"^invalid public key PEM: "):
        keys.load_public_key_pem("not a key")
    with pytest.raises(keys.KeyFormatError, match=r"^invalid private key PEM: "):
        keys.load_private_key_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(keys.KeyFormatError) as info:
        keys.load_private_key_pem(keys.private_key_to_pem(ec_key))  # type: ignore[arg-type]
    assert str(info.value) == "unsupported private key type (expected RSA or Ed25519)"
    with pytest.raises(keys.KeyFormatError) as info:
        keys.load_public_key_pem(keys.public_key_to_pem(ec_key.public_key()))  # type: ignore[arg-type]
    assert str(info.value) == "unsupported public key type (expected RSA or Ed25519)"


def test_actor_keys_generate_load_and_hide_secrets() -> None:
    material = keys.ActorKeys.generate()
    assert material.rsa_private_key.key_size == 2048
    assert material.rsa_private_key.public_key().public_numbers().e == 65537
    assert keys.load_public_key_pem(material.rsa_public_pem) == (
        material.rsa_private_key.public_key()
    )
    assert keys.decode_multikey(material.ed25519_public_multibase) == (
        material.ed25519_private_key.public_key()
    )
    assert "PRIVATE" not in repr(material)
    assert material == keys.ActorKeys(material.rsa_private_pem, material.ed25519_private_pem)


def test_actor_keys_reject_swapped_pems() -> None:
    material = keys.ActorKeys.generate()
    swapped = keys.ActorKeys(material.ed25519_private_pem, material.rsa_private_pem)
    with pytest.raises(keys.KeyFormatError, match=r"^rsa_private_pem does not hold an RSA key$"):
        _ = swapped.rsa_private_key


def test_key_ids_follow_the_published_fragments() -> None:
    actor = "https://salon.example/users/alice"
    assert keys.rsa_key_id(actor) == "https://salon.example/users/alice#main-key"
    assert keys.ed25519_key_id(actor) == "https://salon.example/users/alice#ed25519-key"
