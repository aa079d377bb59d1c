"""loads_object: exact messages and the depth scan's fixed vectors."""

from __future__ import annotations

import pytest

from node.jsonbody import JsonError, NotJsonObject, loads_object, nesting_depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[{{{"}', 1),
        ('{"a": "\\"[[["}', 1),
        ('{"a": "\\\\", "b": [[]]}', 3),
        ('"unterminated [[[[', 0),
        ("]]]][[", 0),  # json stops at the first stray closer
        ("[" * 1000, 1000),
    ],
)
def test_nesting_depth(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"[" * 40 + b"]" * 40, "JSON nested deeper than 32 levels"),
        (b'{"a": ' + b"[" * 100_000, "JSON nested deeper than 32 levels"),
        (b"\xff{}", "malformed JSON: 'utf-8' codec can't decode byte 0xff in position 0"),
        (b"{not json", "malformed JSON: Expecting property name enclosed in double quotes"),
    ],
)
def test_refusals(raw: bytes, error: str) -> None:
    with pytest.raises(JsonError) as caught:
        loads_object(raw)
    assert str(caught.value).startswith(error)


def test_not_an_object_and_custom_depth() -> None:
    with pytest.raises(NotJsonObject, match=r"^the body must be a JSON object$"):
        loads_object("[1]")
    assert loads_object('{"a": [[1]]}', max_depth=3) == {"a": [[1]]}
    with pytest.raises(JsonError, match=r"^JSON nested deeper than 2 levels$"):
        loads_object('{"a": [[1]]}', max_depth=2)
