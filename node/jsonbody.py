"""JSON objects from strangers, parsed without letting them crash the parser.

``json.loads`` recurses once per nested array or object, so ``[[[[…]]]]`` a hundred
thousand levels deep raises ``RecursionError`` — which no handler expects, so it became a
500 with a traceback on the API, the inbox and the sockets. ``loads_object`` measures the
nesting first, with a scan that never recurses, and refuses deep documents before
``json.loads`` sees them. Every place that parses JSON sent by a client or another node
goes through it, so the limit and its messages are defined once.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_JSON_DEPTH = 32
"""Deepest nesting accepted. ActivityPub documents and API bodies nest a handful of levels;
32 leaves room for any honest document and is far below Python's recursion limit."""

# A JSON string: quote, then non-special characters or escapes; the closing quote is
# optional so an unterminated string swallows the rest in one step (never backtracks).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonError(ValueError):
    """The text is not an acceptable JSON object; the message is safe to show the sender."""


class NotJsonObject(JsonError):
    """Valid JSON, but not an object (callers may word this refusal their own way)."""


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting outside strings: an upper bound of json's recursion.

    Linear and non-recursive: strings are cut out by one regular expression, everything but
    brackets by another, and the running depth is summed in C by ``accumulate``.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0))


def loads_object(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """RAW parsed as a JSON object, refusing nesting deeper than MAX_DEPTH before parsing.

    Raises ``JsonError`` ("malformed JSON: …", "JSON nested deeper than N levels") or its
    subclass ``NotJsonObject`` ("the body must be a JSON object").
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise JsonError(f"malformed JSON: {exc}") from None
    # Cheap bound first: fewer brackets than the limit cannot nest deeper than it.
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise JsonError(f"JSON nested deeper than {max_depth} levels")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonError(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise NotJsonObject("the body must be a JSON object")
    return data
