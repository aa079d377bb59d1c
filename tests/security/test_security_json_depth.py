"""Attack: JSON nested 100 000 levels deep made json.loads raise RecursionError (a 500 with
a traceback) on the API and the inbox. Now it is refused with 400 before parsing."""

from __future__ import annotations

import aiohttp

from cli.app import NODE
from node.jsonbody import MAX_JSON_DEPTH
from tests.support.nodes import Node, NodeFactory

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 20_000 + "1" + "}" * 20_000
TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


async def _post(node: Node, path: str, body: str, content_type: str) -> tuple[int, str, dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            node.url + path, data=body.encode(), headers={"Content-Type": content_type}
        ) as resp,
    ):
        return resp.status, resp.content_type, await resp.json(content_type=None)


async def test_deeply_nested_json_is_refused_on_api_and_inbox(node_factory: NodeFactory) -> None:
    node = await node_factory(api_body_bytes=400_000)
    alice = await node.user("alice")
    for body in (DEEP, DEEP_OBJECT, "[" * 100_000):
        status, kind, answer = await _post(node, "/api/auth/signup", body, "application/json")
        assert (status, kind, answer) == (400, "application/json", {"error": TOO_DEEP})
        status, _, answer = await _post(node, "/inbox", body, "application/activity+json")
        assert status == 400 and TOO_DEEP in str(answer)
        status, _, answer = await _post(
            node, "/users/alice/inbox", body, "application/activity+json"
        )
        assert status == 400 and TOO_DEEP in str(answer)
    # a signed-in user's write goes through the same reader
    status, answer = await alice.call(
        "PATCH", "/api/me", None, data=DEEP, headers={"Content-Type": "application/json"}
    )
    assert (status, answer) == (400, {"error": TOO_DEEP})
    # the node still serves, and nothing was created
    status, me = await alice.call("GET", "/api/me")
    assert status == 200 and me["username"] == "alice"
    assert node.app is not None
    assert [u.username for u in node.app[NODE].accounts.users.list_local()] == ["alice"]


async def test_brackets_inside_strings_are_not_nesting(node: Node) -> None:
    """Brackets, quotes and backslashes inside strings do not count, whatever they spell."""
    tricky = '{"username": "\\"[[[' + "[" * 50_000 + '", "password": "x\\\\"}'
    status, _, answer = await _post(node, "/api/auth/signup", tricky, "application/json")
    assert status == 400 and answer["error"].startswith("username must be")
    # exactly at the limit is accepted by the reader (and then refused by the service)
    at_limit = '{"username": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    status, _, answer = await _post(node, "/api/auth/signup", at_limit, "application/json")
    assert status == 400 and answer["error"].startswith("username must be")
    over = '{"username": ' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "}"
    status, _, answer = await _post(node, "/api/auth/signup", over, "application/json")
    assert (status, answer) == (400, {"error": TOO_DEEP})
