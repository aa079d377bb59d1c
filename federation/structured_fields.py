"""The subset of RFC 8941 (Structured Field Values) that RFC 9421 and RFC 9530 need.

``Signature-Input`` and ``Signature`` (RFC 9421 section 4) and ``Content-Digest``
(RFC 9530 section 2) are Dictionaries whose members are Inner Lists or Items. The
signature base must contain the *canonical serialisation* of the signature parameters
(RFC 9421 section 2.3), so this module both parses and serialises. Decimals are not
needed by any of those fields and are rejected.
"""

from __future__ import annotations

import base64
import binascii
import string
from dataclasses import dataclass, field

BareItem = int | str | bytes | bool

_KEY_FIRST = set(string.ascii_lowercase + "*")
_KEY_CHARS = set(string.ascii_lowercase + string.digits + "_-.*")
_TOKEN_FIRST = set(string.ascii_letters + "*")
_TOKEN_CHARS = set(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~:/")
_BASE64_CHARS = set(string.ascii_letters + string.digits + "+/=")


class StructuredFieldError(ValueError):
    """The field value does not follow RFC 8941; the message names the rule and offset."""


@dataclass(frozen=True)
class Token:
    """An sf-token (RFC 8941 section 3.3.4), kept apart from sf-string on purpose."""

    value: str


Params = dict[str, BareItem | Token]


@dataclass(frozen=True)
class Item:
    value: BareItem | Token
    params: Params = field(default_factory=dict)


@dataclass(frozen=True)
class InnerList:
    items: tuple[Item, ...]
    params: Params = field(default_factory=dict)


Member = Item | InnerList


class _Parser:
    """A cursor over an ASCII field value, following RFC 8941 section 4.2 step by step."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> StructuredFieldError:
        return StructuredFieldError(f"{what} at offset {self.pos}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_sp(self) -> None:
        while self.peek() == " ":
            self.pos += 1

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t"):
            self.pos += 1

    def dictionary(self) -> dict[str, Member]:
        result: dict[str, Member] = {}
        self.skip_sp()
        while self.pos < len(self.text):
            key = self.key()
            member: Member
            if self.peek() == "=":
                self.pos += 1
                member = self.inner_list() if self.peek() == "(" else self.item()
            else:
                member = Item(True, self.parameters())
            result[key] = member  # RFC 8941: a later duplicate key overwrites
            self.skip_ows()
            if self.pos >= len(self.text):
                return result
            if self.peek() != ",":
                raise self.fail("expected ',' between dictionary members")
            self.pos += 1
            self.skip_ows()
            if self.pos >= len(self.text):
                raise self.fail("trailing ',' in dictionary")
        return result

    def inner_list(self) -> InnerList:
        self.pos += 1  # "("
        items: list[Item] = []
        while self.pos < len(self.text):
            self.skip_sp()
            if self.peek() == ")":
                self.pos += 1
                return InnerList(tuple(items), self.parameters())
            items.append(self.item())
            if self.pos < len(self.text) and self.peek() not in (" ", ")"):
                raise self.fail("expected ' ' or ')' in inner list")
        raise self.fail("unterminated inner list")

    def item(self) -> Item:
        value = self.bare_item()
        return Item(value, self.parameters())

    def parameters(self) -> Params:
        params: Params = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip_sp()
            key = self.key()
            value: BareItem | Token = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            params[key] = value
        return params

    def key(self) -> str:
        if self.peek() not in _KEY_FIRST:
            raise self.fail("expected a key")
        start = self.pos
        while self.peek() and self.peek() in _KEY_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def bare_item(self) -> BareItem | Token:
        char = self.peek()
        if char == "-" or char.isdigit():
            return self.integer()
        if char == '"':
            return self.string()
        if char == ":":
            return self.byte_sequence()
        if char == "?":
            return self.boolean()
        if char and char in _TOKEN_FIRST:
            start = self.pos
            while self.peek() and self.peek() in _TOKEN_CHARS:
                self.pos += 1
            return Token(self.text[start : self.pos])
        raise self.fail("expected an item")

    def integer(self) -> int:
        start = self.pos
        if self.peek() == "-":
            self.pos += 1
        digits_start = self.pos
        while self.peek() and self.peek().isdigit():
            self.pos += 1
        digits = self.text[digits_start : self.pos]
        if not digits:
            raise self.fail("expected digits")
        if self.peek() == ".":
            raise self.fail("decimals are not supported")
        if len(digits) > 15:
            raise self.fail("integer has more than 15 digits")
        return int(self.text[start : self.pos])

    def string(self) -> str:
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\":
                escaped = self.peek()
                if escaped not in ('"', "\\") or not escaped:
                    raise self.fail("invalid escape in string")
                out.append(escaped)
                self.pos += 1
            elif char == '"':
                return "".join(out)
            elif not (" " <= char <= "~"):
                raise self.fail("invalid character in string")
            else:
                out.append(char)
        raise self.fail("unterminated string")

    def byte_sequence(self) -> bytes:
        end = self.text.find(":", self.pos + 1)
        if end < 0:
            raise self.fail("unterminated byte sequence")
        encoded = self.text[self.pos + 1 : end]
        if not set(encoded) <= _BASE64_CHARS:
            raise self.fail("invalid base64 in byte sequence")
        try:
            decoded = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise self.fail("invalid base64 in byte sequence") from None
        self.pos = end + 1
        return decoded

    def boolean(self) -> bool:
        value = self.text[self.pos + 1 : self.pos + 2]
        if value not in ("0", "1"):
            raise self.fail("invalid boolean")
        self.pos += 2
        return value == "1"


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse an sf-dictionary; the error message carries the offset of the first fault."""
    if not text.isascii():
        raise StructuredFieldError("field value is not ASCII")
    parser = _Parser(text)
    result = parser.dictionary()
    parser.skip_sp()
    if parser.pos != len(text):
        raise parser.fail("unexpected trailing characters")
    return result


def serialize_bare_item(value: BareItem | Token) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Token):
        return value.value
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def serialize_params(params: Params) -> str:
    out = []
    for key, value in params.items():
        out.append(f";{key}" if value is True else f";{key}={serialize_bare_item(value)}")
    return "".join(out)


def serialize_item(item: Item) -> str:
    return serialize_bare_item(item.value) + serialize_params(item.params)


def serialize_inner_list(inner: InnerList) -> str:
    body = " ".join(serialize_item(item) for item in inner.items)
    return f"({body}){serialize_params(inner.params)}"


def serialize_member(member: Member) -> str:
    if isinstance(member, InnerList):
        return serialize_inner_list(member)
    if member.value is True:
        return serialize_params(member.params)
    return serialize_item(member)


def serialize_dictionary(members: dict[str, Member]) -> str:
    parts = []
    for key, member in members.items():
        if isinstance(member, Item) and member.value is True:
            parts.append(key + serialize_params(member.params))
        else:
            parts.append(f"{key}={serialize_member(member)}")
    return ", ".join(parts)
