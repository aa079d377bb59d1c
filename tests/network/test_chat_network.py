"""Three real nodes: bob@B and carol@C chat and react in alice@A's room through their own
nodes and relay trunks; A decides (deletes, chat off, hidden users) and everyone sees it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.chat import RoomSocket
from tests.support.network import FAST, acct, eventually
from tests.support.nodes import ApiUser, Node, NodeFactory

pytestmark = pytest.mark.timeout(120)


async def remote_socket(user: ApiUser, room_url: str) -> RoomSocket:
    status, joined = await user.call("POST", "/api/remote-rooms", {"url": room_url})
    assert status == 200, joined
    return await RoomSocket.open(user.http, f"{user.base}/api/remote-rooms/{joined['id']}/ws")


def chat(text: str) -> dict[str, Any]:
    return {"type": "chat", "text": text}


def is_chat(text: str) -> Any:
    return lambda m: m.get("type") == "chat" and m["message"]["text"] == text


async def test_chat_and_reactions_across_three_nodes(node_factory: NodeFactory) -> None:
    a: Node = await node_factory("a", **FAST)
    b: Node = await node_factory("b", **FAST)
    c: Node = await node_factory("c", **FAST)
    alice, bob, carol = await a.user("alice"), await b.user("bob"), await c.user("carol")
    dave = await b.user("dave")
    status, room = await alice.call("POST", "/api/rooms", {"title": "Chatty"})
    assert status == 201, room
    url = room["url"]
    sa = await RoomSocket.open(alice.http, f"{a.url}/api/rooms/{room['id']}/ws")
    assert sa.state["chat"] == {
        "mode": "on",
        "messages": [],
        "reactions": ["clap", "laugh", "heart", "plus_one", "fire", "hundred"],
    }
    sb = await remote_socket(bob, url)
    sc = await remote_socket(carol, url)
    bob_at, carol_at, alice_at = acct(bob, b), acct(carol, c), acct(alice, a)

    # bob chats through B: everyone sees it, named as each node names bob
    assert (await sb.request(chat("hello from B")))["type"] == "reply"
    from_bob = (await sa.wait_for(is_chat("hello from B")))["message"]
    assert from_bob["user"] == bob_at
    assert (await sc.wait_for(is_chat("hello from B")))["message"]["user"] == bob_at
    assert (await sb.wait_for(is_chat("hello from B")))["message"]["user"] == "bob"
    assert (await sc.request(chat("carol here")))["type"] == "reply"
    assert (await sa.request(chat("welcome, both")))["type"] == "reply"
    for sock in (sa, sb, sc):
        await sock.wait_for(is_chat("welcome, both"))
    assert (await sb.wait_for(is_chat("welcome, both")))["message"]["user"] == alice_at

    # reactions from B and C reach all three, coalesced, with canonical names
    assert (await sb.request({"type": "react", "reaction": "heart"}))["type"] == "reply"
    assert (await sc.request({"type": "react", "reaction": "clap"}))["type"] == "reply"
    for sock, names in ((sa, (bob_at, carol_at)), (sb, ("bob", carol_at)), (sc, (bob_at, "carol"))):

        async def both(sock: RoomSocket = sock, names: tuple[str, str] = names) -> bool:
            seen = sock.reactions()
            return seen.get(names[0]) == {"heart"} and seen.get(names[1]) == {"clap"}

        await sock.wait_for(lambda m, both=both: m.get("type") == "reactions")
        await eventually(both, timeout=20)

    # a late joiner on B gets the history in its first state
    sd = await remote_socket(dave, url)
    history = [(m["user"], m["text"]) for m in sd.state["chat"]["messages"]]
    assert history == [
        ("bob", "hello from B"),
        (carol_at, "carol here"),
        (alice_at, "welcome, both"),
    ]

    # alice (the host, on A) deletes bob's message: gone on B and C too
    answer = await sa.request({"type": "delete_message", "message": from_bob["id"]})
    assert answer["type"] == "reply", answer
    for sock in (sb, sc, sd):
        await sock.wait_for(lambda m: m.get("type") == "chat_deleted")
        assert "hello from B" not in sock.texts()
    replay = await sa.request({"type": "delete_message", "message": from_bob["id"]})
    assert replay["error"] == "no such chat message"

    # chat off: nobody may chat, remote users included; the mode reaches everyone
    assert (await sa.request({"type": "command", "action": "chat_off"}))["type"] == "reply"
    for sock in (sb, sc):
        await sock.wait_for(lambda m: m.get("type") == "chat_mode" and m["mode"] == "off")
    for sock in (sa, sb, sc):
        refused = await sock.request(chat("anyone?"))
        assert refused["error"] == "chat is off in this room"
    # bob may not turn it back on from B
    refused = await sb.request({"type": "command", "action": "chat_on"})
    assert refused["error"] == "only moderators can do that"
    assert (await sa.request({"type": "command", "action": "chat_on"}))["type"] == "reply"
    await sc.wait_for(lambda m: m.get("type") == "chat_mode" and m["mode"] == "on")

    # dave (on B) blocks carol (on C): B does not pass her messages to him, only to bob
    status, body = await dave.call("POST", f"/api/users/{carol_at}/block")
    assert status == 200, body
    assert (await sc.request(chat("last word")))["type"] == "reply"
    await sb.wait_for(is_chat("last word"))
    assert "last word" not in sd.texts()  # B hands a message to all its sockets at once
    _, dave_view = await dave.call("GET", f"/api/remote-rooms/{sd.state['id']}")
    assert carol_at not in {m["user"] for m in dave_view["chat"]["messages"]}
    _, bob_view = await bob.call("GET", f"/api/remote-rooms/{sb.state['id']}")
    assert "last word" in [m["text"] for m in bob_view["chat"]["messages"]]

    # carol is removed and her messages hidden: they disappear everywhere
    removed = await sa.request({"type": "command", "action": "remove", "user": carol_at})
    assert removed["type"] == "reply", removed
    hidden = await sa.request({"type": "command", "action": "hide_messages", "user": carol_at})
    assert hidden["type"] == "reply", hidden

    async def carol_gone() -> bool:
        return all(not any(m["user"] == carol_at for m in sock.chats()) for sock in (sa, sb, sd))

    await eventually(carol_gone, timeout=20)
    _, fresh = await dave.call("GET", f"/api/remote-rooms/{sd.state['id']}")
    assert [m["text"] for m in fresh["chat"]["messages"]] == ["welcome, both"]
    for sock in (sa, sb, sc, sd):
        await sock.close()
