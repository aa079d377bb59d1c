"""Key material for actors: generation, PEM and FEP-521a Multikey encodings.

Every Salon actor (users and the node's own ``Application`` actor) owns two key pairs:

* RSA-2048, published as ``publicKey`` (``#main-key``) because the whole fediverse still
  verifies draft-cavage ``rsa-sha256`` signatures with it;
* Ed25519, published in ``assertionMethod`` as a FEP-521a ``Multikey`` so that peers
  that speak RFC 9421 ``ed25519`` (and, later, object integrity proofs) can use it.

Everything here is pure: no file or network I/O. Private keys are carried as PEM strings so
that the storage layer can persist them without knowing about ``cryptography`` objects.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

RSA_KEY_BITS = 2048
RSA_PUBLIC_EXPONENT = 65537

#: Fragment of the RSA key id, as Mastodon does (``https://host/users/alice#main-key``).
RSA_KEY_FRAGMENT = "main-key"
#: Fragment of the Ed25519 Multikey id in ``assertionMethod``.
ED25519_KEY_FRAGMENT = "ed25519-key"

# base58btc alphabet (Bitcoin); the multibase prefix for it is "z" (multibase spec,
# draft-multiformats-multibase, table of encodings).
_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: index for index, char in enumerate(_B58_ALPHABET)}
MULTIBASE_BASE58BTC = "z"

# Multicodec table (https://github.com/multiformats/multicodec/blob/master/table.csv),
# written as unsigned varints: ed25519-pub 0xed -> ed 01, rsa-pub 0x1205 -> 85 24,
# ed25519-priv 0x1300 -> 80 26.
MULTICODEC_ED25519_PUB = b"\xed\x01"
MULTICODEC_RSA_PUB = b"\x85\x24"
MULTICODEC_ED25519_PRIV = b"\x80\x26"


class KeyFormatError(ValueError):
    """A key could not be decoded; the message says which encoding rule was broken."""


def b58encode(data: bytes) -> str:
    """Encode bytes in base58btc; each leading zero byte becomes a leading ``1``."""
    zeros = len(data) - len(data.lstrip(b"\x00"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_B58_ALPHABET[remainder])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Decode base58btc; rejects characters outside the alphabet (``0``, ``O``, ``I``, ``l``)."""
    number = 0
    for position, char in enumerate(text):
        try:
            number = number * 58 + _B58_INDEX[char]
        except KeyError:
            raise KeyFormatError(
                f"invalid base58btc character {char!r} at position {position}"
            ) from None
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * zeros + body


def generate_rsa_private_key() -> rsa.RSAPrivateKey:
    """RSA-2048 with e=65537: what Mastodon generates and every peer accepts."""
    return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)


def generate_ed25519_private_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def private_key_to_pem(key: PrivateKey) -> str:
    """Unencrypted PKCS#8: the data directory holds the file with mode 0600 instead."""
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")


def public_key_to_pem(key: PublicKey) -> str:
    """SubjectPublicKeyInfo PEM, the form ActivityPub's ``publicKeyPem`` carries."""
    return key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode("ascii")


def load_private_key_pem(pem: str | bytes) -> PrivateKey:
    """Load an RSA or Ed25519 private key (PKCS#8 or PKCS#1); other types are refused."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"invalid private key PEM: {exc}") from None
    if isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        return key
    raise KeyFormatError("unsupported private key type (expected RSA or Ed25519)")


def load_public_key_pem(pem: str | bytes) -> PublicKey:
    """Load an RSA or Ed25519 public key from SubjectPublicKeyInfo (or PKCS#1 RSA) PEM.

    Remote actors publish ``publicKeyPem`` with stray whitespace or ``\\r\\n`` line ends
    often enough that the text is normalised first.
    """
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    data = text.strip().replace("\r\n", "\n").encode("ascii", "replace")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"invalid public key PEM: {exc}") from None
    if isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        return key
    raise KeyFormatError("unsupported public key type (expected RSA or Ed25519)")


def encode_multikey(key: PublicKey) -> str:
    """FEP-521a ``publicKeyMultibase``: ``z`` + base58btc(multicodec prefix + key bytes).

    Ed25519 carries the raw 32-byte key; RSA carries the DER ``RSAPublicKey`` (PKCS#1),
    as the Multikey definition (W3C Controlled Identifiers 1.0) prescribes.
    """
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(
            encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
        )
        return MULTIBASE_BASE58BTC + b58encode(MULTICODEC_ED25519_PUB + raw)
    der = key.public_bytes(
        encoding=serialization.Encoding.DER, format=serialization.PublicFormat.PKCS1
    )
    return MULTIBASE_BASE58BTC + b58encode(MULTICODEC_RSA_PUB + der)


def decode_multikey(value: str) -> PublicKey:
    """Parse ``publicKeyMultibase`` back into a key; only base58btc is accepted (FEP-521a)."""
    if not value.startswith(MULTIBASE_BASE58BTC):
        raise KeyFormatError("publicKeyMultibase must start with 'z' (base58btc)")
    data = b58decode(value[1:])
    if data.startswith(MULTICODEC_ED25519_PUB):
        raw = data[len(MULTICODEC_ED25519_PUB) :]
        if len(raw) != 32:
            raise KeyFormatError(f"Ed25519 Multikey must hold 32 key bytes, got {len(raw)}")
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    if data.startswith(MULTICODEC_RSA_PUB):
        try:
            key = serialization.load_der_public_key(_pkcs1_to_spki(data[len(MULTICODEC_RSA_PUB) :]))
        except ValueError as exc:
            raise KeyFormatError(f"invalid RSA Multikey: {exc}") from None
        if isinstance(key, rsa.RSAPublicKey):
            return key
    raise KeyFormatError("unsupported Multikey type (expected ed25519-pub or rsa-pub)")


def decode_ed25519_private_multikey(value: str) -> ed25519.Ed25519PrivateKey:
    """Parse a ``secretKeyMultibase`` (multicodec ed25519-priv); used for spec test vectors."""
    if not value.startswith(MULTIBASE_BASE58BTC):
        raise KeyFormatError("secretKeyMultibase must start with 'z' (base58btc)")
    data = b58decode(value[1:])
    if not data.startswith(MULTICODEC_ED25519_PRIV) or len(data) != 34:
        raise KeyFormatError("not an Ed25519 private Multikey")
    return ed25519.Ed25519PrivateKey.from_private_bytes(data[2:])


def _pkcs1_to_spki(pkcs1_der: bytes) -> bytes:
    """Wrap a PKCS#1 RSAPublicKey in SubjectPublicKeyInfo (RFC 5280 section 4.1).

    ``cryptography`` only loads DER public keys in SPKI form, so the AlgorithmIdentifier
    (rsaEncryption OID 1.2.840.113549.1.1.1 with NULL parameters) is prepended by hand.
    """
    algorithm = bytes.fromhex("300d06092a864886f70d0101010500")
    bit_string = b"\x03" + _der_length(len(pkcs1_der) + 1) + b"\x00" + pkcs1_der
    content = algorithm + bit_string
    return b"\x30" + _der_length(len(content)) + content


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def rsa_key_id(actor_id: str) -> str:
    return f"{actor_id}#{RSA_KEY_FRAGMENT}"


def ed25519_key_id(actor_id: str) -> str:
    return f"{actor_id}#{ED25519_KEY_FRAGMENT}"


@functools.lru_cache(maxsize=4096)
def _load_cached(pem: str) -> PrivateKey:
    """Parsed keys by PEM text: the store hands out fresh ``ActorKeys`` on every read, and
    parsing an RSA key (with its validation) costs tens of milliseconds."""
    return load_private_key_pem(pem)


@dataclass(frozen=True)
class ActorKeys:
    """The private key material of one actor, as stored (PEM text, never logged).

    Parsed key objects are cached on first use: loading an RSA private key validates it,
    which costs more than signing, and a busy node signs thousands of requests.
    """

    rsa_private_pem: str = field(repr=False)
    ed25519_private_pem: str = field(repr=False)

    @classmethod
    def generate(cls) -> ActorKeys:
        return cls(
            rsa_private_pem=private_key_to_pem(generate_rsa_private_key()),
            ed25519_private_pem=private_key_to_pem(generate_ed25519_private_key()),
        )

    @property
    def rsa_private_key(self) -> rsa.RSAPrivateKey:
        key = _load_cached(self.rsa_private_pem)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyFormatError("rsa_private_pem does not hold an RSA key")
        return key

    @property
    def ed25519_private_key(self) -> ed25519.Ed25519PrivateKey:
        key = _load_cached(self.ed25519_private_pem)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise KeyFormatError("ed25519_private_pem does not hold an Ed25519 key")
        return key

    @property
    def rsa_public_pem(self) -> str:
        return public_key_to_pem(self.rsa_private_key.public_key())

    @property
    def ed25519_public_multibase(self) -> str:
        return encode_multikey(self.ed25519_private_key.public_key())
