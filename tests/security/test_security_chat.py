"""Hostile users and hostile nodes against room chat and reactions.

Text is checked (length after NFC and trimming, controls, bidi overrides) and stored as
text; rates are limited per user; message ids are the node's, so a replayed request makes
a new message and a replayed delete finds nothing; a relay trunk speaks only for users it
seated, never for another node's users or its own users that are not in the room, and
the trunk path meets exactly the rules of the local socket (chat off, removals).
"""

from __future__ import annotations

from typing import Any

import pytest

from federation.as2 import host_of
from tests.support.chat import HostileTrunk, RoomSocket
from tests.support.federation import signed_join
from tests.support.network import FAST, eventually
from tests.support.nodes import ApiUser, Node, NodeFactory

pytestmark = pytest.mark.timeout(90)


async def local_room(node: Node) -> tuple[dict[str, Any], RoomSocket, ApiUser, RoomSocket]:
    alice, bob = await node.user("alice"), await node.user("bob")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Guarded"})
    sa = await RoomSocket.open(alice.http, f"{node.url}/api/rooms/{room['id']}/ws")
    sb = await RoomSocket.open(bob.http, f"{node.url}/api/rooms/{room['id']}/ws")
    return room, sa, bob, sb


def chat(text: Any) -> dict[str, Any]:
    return {"type": "chat", "text": text}


async def test_hostile_text_is_refused_or_kept_as_text(node_factory: NodeFactory) -> None:
    node = await node_factory("a", chat_max_chars=500)
    _, sa, _, sb = await local_room(node)
    cases = [
        ("x" * 501, "chat messages are at most 500 characters"),
        ("x" * 5000, "chat text is at most 4096 characters"),
        ("  \n\t ", "chat messages cannot be empty"),
        ("bell\x07", "chat text must not contain control characters"),
        ("evil\u202etxt.exe", "chat text must not contain bidirectional controls"),
        (["not", "text"], "chat needs a 'text' string"),
        (None, "chat needs a 'text' string"),
    ]
    for text, message in cases:
        answer = await sb.request(chat(text))
        assert answer["error"] == message, text
    # a lone surrogate cannot even be JSON-decoded as UTF-8 text by the server
    await sb.ws.send_str('{"type": "chat", "id": "s", "text": "\\ud800"}')
    answer = await sb.wait_for(lambda m: m.get("id") == "s")
    assert answer["error"] == "chat text is not valid Unicode"
    html = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    assert (await sb.request(chat(html)))["type"] == "reply"
    got = await sa.wait_for(lambda m: m.get("type") == "chat")
    assert got["message"]["text"] == html  # stored and sent as text; clients render text
    assert sa.texts() == [html]  # nothing refused above reached anyone


async def test_rate_limits_on_chat_and_reactions(node_factory: NodeFactory) -> None:
    node = await node_factory(
        "a",
        chat_messages_per_second=0.01,
        chat_messages_burst=3,
        reactions_burst=4,
        reactions_per_second=0.01,
    )
    _, sa, _, sb = await local_room(node)
    answers = [await sb.request(chat(f"m{i}")) for i in range(6)]
    assert [a["type"] for a in answers] == ["reply"] * 3 + ["error"] * 3
    assert answers[-1]["error"] == "too many chat messages; slow down"
    reacts = [await sb.request({"type": "react", "reaction": "clap"}) for _ in range(8)]
    assert [a["type"] for a in reacts] == ["reply"] * 4 + ["error"] * 4
    assert reacts[-1]["error"] == "too many reactions; slow down"
    await sa.wait_for(lambda m: m.get("type") == "reactions")
    assert sa.texts() == ["m0", "m1", "m2"]


async def test_ids_are_the_nodes_replays_make_nothing_new(node_factory: NodeFactory) -> None:
    node = await node_factory("a")
    _, sa, _, sb = await local_room(node)
    for _ in range(2):  # the same request twice: two messages, two fresh ids
        await sb.ws.send_json({"type": "chat", "id": 7, "text": "again", "message": {"id": "x"}})
    await eventually(lambda: _count(sa, 2))
    ids = [m["id"] for m in sa.chats()]
    assert len(set(ids)) == 2 and "x" not in ids
    assert (await sa.request({"type": "delete_message", "message": ids[0]}))["type"] == "reply"
    again = await sa.request({"type": "delete_message", "message": ids[0]})
    assert again["error"] == "no such chat message"
    # bob may delete his own, never alice's
    mine = await sa.request(chat("host says"))
    assert mine["type"] == "reply"
    await sb.wait_for(lambda m: m.get("type") == "chat" and m["message"]["text"] == "host says")
    hosts = next(m["id"] for m in sb.chats() if m["text"] == "host says")
    refused = await sb.request({"type": "delete_message", "message": hosts})
    assert refused["error"] == "only its author or a moderator can delete it"
    assert (await sb.request({"type": "delete_message", "message": ids[1]}))["type"] == "reply"


async def _count(sock: RoomSocket, n: int) -> bool:
    return len(sock.chats()) == n


async def test_a_trunk_speaks_only_for_users_it_seated(node_factory: NodeFactory) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    c = await node_factory("c", **FAST)
    alice = await a.user("alice")
    await b.user("bob")
    await b.user("dave")
    await b.user("erin")
    await c.user("carol")
    _, room = await alice.call("POST", "/api/rooms", {"title": "Guarded"})
    sa = await RoomSocket.open(alice.http, f"{a.url}/api/rooms/{room['id']}/ws")
    url = room["url"]
    for name in ("bob", "dave"):
        assert await signed_join(b, url, username=name) == 202
    assert await signed_join(c, url, username="carol") == 202
    trunk = await HostileTrunk.open(b, url)
    bob_uri, dave_uri = f"{b.url}/users/bob", f"{b.url}/users/dave"
    assert await trunk.seat({bob_uri: 1, dave_uri: 2}) == []

    assert (await trunk.request({**chat("from B"), "actor": bob_uri}))["type"] == "reply"
    got = await sa.wait_for(lambda m: m.get("type") == "chat")
    assert got["message"]["user"] == f"bob@{host_of(b.url)}"
    # another node's user (carol is in the room, through C)
    forged = await trunk.request({**chat("I am carol"), "actor": f"{c.url}/users/carol"})
    assert forged["error"] == f"{c.url}/users/carol is not a user of {host_of(b.url)}"
    assert forged["status"] == 403
    # the room node's own user
    forged = await trunk.request({**chat("I am alice"), "actor": f"{a.url}/users/alice"})
    assert forged["status"] == 403
    # one of B's users that B never seated, and one that does not exist
    erin = await trunk.request({**chat("I am erin"), "actor": f"{b.url}/users/erin"})
    assert erin["status"] == 403
    for kind in ({"type": "react", "reaction": "clap"}, {"type": "delete_message", "message": "m"}):
        refused = await trunk.request({**kind, "actor": f"{b.url}/users/erin"})
        assert refused["status"] == 403
    ghost = await trunk.request({**chat("boo"), "actor": f"{b.url}/users/ghost"})
    assert ghost["error"] == f"{b.url}/users/ghost has not joined this room"
    bad = await trunk.request({**chat("no actor")})
    assert bad["error"] == "actor must be a string"

    # chat off holds on the trunk path as on the socket
    assert (await sa.request({"type": "command", "action": "chat_off"}))["type"] == "reply"
    off = await trunk.request({**chat("sneaky"), "actor": bob_uri})
    assert off["error"] == "chat is off in this room"
    turned = await trunk.request({"type": "command", "action": "chat_on", "actor": bob_uri})
    assert turned["error"] == "only moderators can do that"
    assert (await sa.request({"type": "command", "action": "chat_speakers"}))["type"] == "reply"
    speakers = await trunk.request({**chat("sneaky"), "actor": bob_uri})
    assert speakers["error"] == "only people on stage may chat now"
    assert (await sa.request({"type": "command", "action": "chat_on"}))["type"] == "reply"

    # a removed user: the trunk keeps dave, but bob may no longer say anything
    removed = await sa.request(
        {"type": "command", "action": "remove", "user": f"bob@{host_of(b.url)}"}
    )
    assert removed["type"] == "reply"

    async def bob_refused() -> bool:
        answer = await trunk.request({**chat("I'm back"), "actor": bob_uri})
        return answer.get("status") == 403

    await eventually(bob_refused)
    assert (await trunk.request({**chat("dave ok"), "actor": dave_uri}))["type"] == "reply"
    await sa.wait_for(lambda m: m.get("type") == "chat" and m["message"]["text"] == "dave ok")
    assert sa.texts() == ["from B", "dave ok"]
    await trunk.close()


async def test_only_people_in_the_room_read_its_chat(node_factory: NodeFactory) -> None:
    node = await node_factory("a")
    room, sa, bob, sb = await local_room(node)
    assert (await sb.request(chat("inside only")))["type"] == "reply"
    await sa.wait_for(lambda m: m.get("type") == "chat")
    path = f"/api/rooms/{room['id']}"
    _, inside = await bob.call("GET", path)
    assert [m["text"] for m in inside["chat"]["messages"]] == ["inside only"]
    carol = await node.user("carol")  # signed in, never joined
    anonymous = await node.user()
    for reader in (carol, anonymous):
        status, view = await reader.call("GET", path)
        assert status == 200 and view["chat"]["messages"] == []
    removed = await sa.request({"type": "command", "action": "remove", "user": "bob"})
    assert removed["type"] == "reply"
    _, after = await bob.call("GET", path)
    assert after["chat"]["messages"] == []


async def test_chat_moderation_over_http_meets_the_same_rules(node_factory: NodeFactory) -> None:
    node = await node_factory("a")
    room, _sa, bob, sb = await local_room(node)
    path = f"/api/rooms/{room['id']}"
    status, body = await bob.call("POST", f"{path}/chat_off")
    assert (status, body["error"]) == (403, "only moderators can do that")
    status, body = await bob.call("POST", f"{path}/hide_messages", {"user": "alice"})
    assert (status, body["error"]) == (403, "only moderators can do that")
    alice = node.users[0]
    status, body = await alice.call("POST", f"{path}/chat_speakers")
    assert status == 200 and body["chat"]["mode"] == "speakers"
    await sb.wait_for(lambda m: m.get("type") == "chat_mode" and m["mode"] == "speakers")
    assert (await sb.request(chat("hi")))["error"] == "only people on stage may chat now"
    status, body = await alice.call("POST", f"{path}/hide_messages")
    assert (status, body["error"]) == (400, "hide_messages needs a 'user'")
