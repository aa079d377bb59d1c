"""Remote identities as a hostile node would shape them: capitals, ``@`` and 300 000
characters in names, control characters in display names. The handle the room view shows
must be accepted by every moderation action, and so must the actor's URI."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from federation.as2 import host_of
from federation.service import FEDERATION
from node.handles import split_handle
from tests.security.fake_actor_server import FakeActorServer
from tests.support.network import FAST
from tests.support.nodes import ApiUser, Node, NodeFactory

_ids = itertools.count()


async def open_room(node_factory: NodeFactory, **settings: Any) -> tuple[Node, dict[str, Any]]:
    a = await node_factory("a", **FAST, **settings)
    alice = await a.user("alice")
    return a, await live_room(alice)


async def live_room(host: ApiUser) -> dict[str, Any]:
    status, room = await host.call("POST", "/api/rooms", {"title": "Open"})
    assert status in (200, 201), room
    status, body = await host.call("POST", f"/api/rooms/{room['id']}/join")
    assert status == 200, body
    return room


async def join(remote: FakeActorServer, node: Node, actor_id: str, room: dict[str, Any]) -> int:
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.url}/activities/join-{next(_ids)}",
        "type": "Join",
        "actor": actor_id,
        "object": room["url"],
    }
    status, _ = await remote.post(f"{node.url}/inbox", activity, key_id=f"{actor_id}#main-key")
    return status


async def shown(node: Node, room_id: str) -> dict[str, dict[str, Any]]:
    """The room view's participants by their shown handle."""
    _, view = await node.users[0].call("GET", f"/api/rooms/{room_id}")
    return {p["user"]: p for p in view["speakers"] + view["listeners"]}


async def act(node: Node, room_id: str, action: str, target: str) -> tuple[int, Any]:
    return await node.users[0].call("POST", f"/api/rooms/{room_id}/{action}", {"user": target})


async def test_capitalised_remote_name_is_moderated_by_shown_handle_and_uri(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a, room = await open_room(node_factory)
    mallory = remote.actor("Mallory")
    assert await join(remote, a, mallory, room) == 202
    handle = f"Mallory@{host_of(remote.url)}"
    assert handle in await shown(a, room["id"])
    status, body = await act(a, room["id"], "invite_to_speak", handle)
    assert status == 200, body
    status, body = await act(a, room["id"], "make_moderator", f"mAlLoRy@{host_of(remote.url)}")
    assert status == 200, body
    assert (await shown(a, room["id"]))[handle]["role"] == "moderator"
    status, body = await act(a, room["id"], "mute", mallory)  # by actor URI
    assert status == 200, body
    assert (await shown(a, room["id"]))[handle]["muted"] is True
    status, body = await act(a, room["id"], "remove", "@" + handle.lower())
    assert status == 200, body
    assert handle not in await shown(a, room["id"])
    # removed is removed: a fresh Join by the same actor is refused and changes nothing
    assert await join(remote, a, mallory, room) == 403
    assert set(await shown(a, room["id"])) == {"alice"}


async def test_at_sign_in_preferred_username_falls_back_to_the_uri(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a, room = await open_room(node_factory)
    host = host_of(remote.url)
    eve = remote.actor("eve", preferredUsername=f"alice@{host_of(a.url)}")  # poses as alice
    odd = remote.actor("odd", preferredUsername="ev il\u202e")
    assert await join(remote, a, eve, room) == 202
    assert await join(remote, a, odd, room) == 202
    people = await shown(a, room["id"])
    assert set(people) == {"alice", f"eve@{host}", f"odd@{host}"}
    assert people["alice"]["role"] == "host", "a remote name never reads as a local one"
    for handle in (f"eve@{host}", f"odd@{host}"):
        assert split_handle(handle) == (handle.split("@")[0], host)
        status, body = await act(a, room["id"], "remove", handle)
        assert status == 200, body
    assert set(await shown(a, room["id"])) == {"alice"}


async def test_unusable_uri_segment_gets_a_hashed_name(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a, room = await open_room(node_factory)
    weird = remote.actor("x" * 65, preferredUsername="")  # neither name nor segment fits
    assert await join(remote, a, weird, room) == 202
    (handle,) = [h for h in await shown(a, room["id"]) if h != "alice"]
    name, _ = split_handle(handle)
    assert name.startswith("u") and len(name) == 17
    status, body = await act(a, room["id"], "remove", handle)
    assert status == 200, body


async def test_huge_names_are_refused_or_cut(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    huge = "M" * 300_000
    # default actor_document_bytes: a 300 000-character document is refused at the door
    a, room = await open_room(node_factory)
    big = remote.actor("big", preferredUsername=huge, name=huge)
    before = a.app[FEDERATION].count("remote_actors") if a.app else 0
    assert await join(remote, a, big, room) == 401
    assert set(await shown(a, room["id"])) == {"alice"}
    assert a.app is not None and a.app[FEDERATION].count("remote_actors") == before
    # a node that accepts big documents still cuts what it keeps and shows
    b = await node_factory("b", **FAST, actor_document_bytes=1_000_000)
    alice_b = await b.user("alice")
    room_b = await live_room(alice_b)
    assert await join(remote, b, big, room_b) == 202
    _, view = await alice_b.call("GET", f"/api/rooms/{room_b['id']}")
    assert len(json.dumps(view)) < 5_000
    (person,) = [p for p in view["listeners"] if p["user"] != "alice"]
    assert person["user"] == f"big@{host_of(remote.url)}"
    assert len(person["display_name"]) == 100
    status, body = await act(b, room_b["id"], "remove", person["user"])
    assert status == 200, body


async def test_control_characters_leave_display_names(
    node_factory: NodeFactory, remote: FakeActorServer
) -> None:
    a, room = await open_room(node_factory)
    sly = remote.actor("sly", name="\u202eadmin\u200b\nreal\x00", summary="a" * 5000)
    assert await join(remote, a, sly, room) == 202
    person = (await shown(a, room["id"]))[f"sly@{host_of(remote.url)}"]
    assert person["display_name"] == "admin real"
    assert a.app is not None
    user = a.app[FEDERATION].users.by_actor_uri(sly)
    assert user is not None and len(user.bio) == 2000


def test_hosts_are_canonical() -> None:
    """IDNA (UTS #46) and case: one host has one spelling, in handles and in URIs."""
    assert host_of("https://BÜCHER.Example./users/a") == "xn--bcher-kva.example"
    assert host_of("https://ＢＵＣＨ.example/x") == "buch.example"
    assert split_handle("@Bob@BÜCHER.example") == ("Bob", "xn--bcher-kva.example")
    assert split_handle("bob@[::1]:8443") == ("bob", "[::1]:8443")
    assert split_handle("a@b@host.example") == ("a@b", "host.example")
    for bad in ("bob@exa mple", "bob@xn--.example\u0000", "bob@-"):
        with pytest.raises(ValueError):
            split_handle(bad)
