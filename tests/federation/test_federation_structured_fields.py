"""RFC 8941 subset: parse and canonical serialisation, as RFC 9421 needs them."""

from __future__ import annotations

import re

import pytest

from federation import structured_fields as sf


def test_signature_input_parses_and_reserialises_canonically() -> None:
    text = (
        'sig1=("@method" "@target-uri" "content-digest");created=1618884473'
        ';keyid="test-key-rsa";alg="rsa-v1_5-sha256", sig2=("@authority")'
    )
    parsed = sf.parse_dictionary(text)
    assert parsed["sig1"] == sf.InnerList(
        (sf.Item("@method"), sf.Item("@target-uri"), sf.Item("content-digest")),
        {"created": 1618884473, "keyid": "test-key-rsa", "alg": "rsa-v1_5-sha256"},
    )
    assert sf.serialize_dictionary(parsed) == text


def test_all_needed_item_types() -> None:
    parsed = sf.parse_dictionary(
        'a=:aGVsbG8=:, b=?0, c=-12;p;q=tok/en, d, e="say \\"hi\\" \\\\"  ,f=()'
    )
    assert parsed == {
        "a": sf.Item(b"hello"),
        "b": sf.Item(False),
        "c": sf.Item(-12, {"p": True, "q": sf.Token("tok/en")}),
        "d": sf.Item(True),
        "e": sf.Item('say "hi" \\'),
        "f": sf.InnerList(()),
    }
    assert sf.serialize_dictionary(parsed) == (
        'a=:aGVsbG8=:, b=?0, c=-12;p;q=tok/en, d, e="say \\"hi\\" \\\\", f=()'
    )


def test_duplicate_keys_keep_the_last_value() -> None:
    assert sf.parse_dictionary("a=1, a=2") == {"a": sf.Item(2)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A=1", "expected a key at offset 0"),
        ("a=1,", "trailing ',' in dictionary at offset 4"),
        ("a=1 b=2", "expected ',' between dictionary members at offset 4"),
        ('a="open', "unterminated string at offset 7"),
        ('a="\\x"', "invalid escape in string at offset 4"),
        ("a=:abc", "unterminated byte sequence at offset 2"),
        ("a=:ab*c:", "invalid base64 in byte sequence at offset 2"),
        ("a=?2", "invalid boolean at offset 2"),
        ("a=1.5", "decimals are not supported at offset 3"),
        ("a=1234567890123456", "integer has more than 15 digits at offset 18"),
        ("a=(1 2", "unterminated inner list at offset 6"),
        ("a=(1,2)", "expected ' ' or ')' in inner list at offset 4"),
        ("a=@", "expected an item at offset 2"),
        ("a=é", "field value is not ASCII"),
    ],
)
def test_errors_carry_the_offset(text: str, message: str) -> None:
    with pytest.raises(sf.StructuredFieldError, match=f"^{re.escape(message)}$"):
        sf.parse_dictionary(text)
