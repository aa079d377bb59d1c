"""Issue 6's whole story across two real nodes, each person in their own Chromium.

alice is on node A, bob on node B. bob follows alice through B (WebFinger, signed Follow,
Accept), sees her room in his hallway, and opens it through B: his browser only ever talks to
B (`/remote?url=` → `POST /api/remote-rooms` → `/api/remote-rooms/{alias}/ws`), B relays his
commands and audio to A over the trunk.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest

from federation.as2 import host_of
from tests.browser.browser_harness import Launch, Person, naming_failures, speech
from tests.support.audio import tone
from tests.support.network import AUDIO, eventually, follow_accepted
from tests.support.nodes import NodeFactory


@pytest.mark.timeout(120)
async def test_two_people_two_nodes_whole_story(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    a = await node_factory("a", **AUDIO)
    b = await node_factory("b", **AUDIO)
    alice_mic = speech(tmp_path / "alice.wav", "Hello from node A, welcome to the room. " * 3)
    bob_mic = tone(tmp_path / "bob.wav", 660, 3.0)
    alice = await Person.open(await launch(alice_mic), a.url, "alice")
    bob = await Person.open(await launch(bob_mic), b.url, "bob")
    await alice.signup()
    await bob.signup()
    a_host = host_of(a.url)

    # bob (on B) searches for @alice@A and follows her; the follow is accepted by A
    await bob.page.get_by_label("Search").fill(f"@alice@{a_host}")
    await bob.page.get_by_label("Search").press("Enter")
    await bob.page.get_by_role("heading", name="alice", exact=True).wait_for()
    await bob.page.get_by_text(f"@alice@{a_host}", exact=True).wait_for()
    await bob.button("Follow")
    # the profile looks again while the request is pending, until A's Accept arrives
    await bob.page.get_by_role("button", name="Unfollow", exact=True).wait_for(timeout=15_000)
    await bob.page.get_by_role("link", name="Hallway").click()
    await bob.page.get_by_role("heading", name="Hallway").wait_for()

    # alice starts an open room on A; it shows up in bob's hallway on B without a reload
    await alice.page.get_by_role("link", name="Start a room").first.click()
    await alice.page.get_by_label("Title").fill("Across the nodes")
    await alice.button("Start room")
    await alice.page.get_by_role("button", name="Mute", exact=True).wait_for()
    card_link = bob.page.get_by_role("link", name="Across the nodes")
    await card_link.wait_for(timeout=15_000)
    href = await card_link.get_attribute("href")
    assert href is not None and href.startswith("/remote?url="), href

    # bob opens it (through B), joins and hears alice
    await card_link.click()
    await bob.page.get_by_text(f"This room is on {a_host}").wait_for()
    await bob.button("Join")
    await bob.page.get_by_role("button", name="Raise hand", exact=True).wait_for()
    alias = await bob.page.evaluate("() => window.salonDebug.room.source.id")
    assert re.fullmatch(r"r[0-9a-f]{20}", alias), alias
    await bob.wait_hearing(timeout=20)

    # bob raises his hand; alice sees it and invites him; bob joins the stage
    await bob.button("Raise hand")
    await alice.page.get_by_role("heading", name=re.compile("Raised hands")).wait_for()
    await alice.button("Invite to speak")
    await bob.page.get_by_role("region", name="You're invited to speak").wait_for()
    await bob.button("Join as speaker")
    await bob.page.get_by_role("button", name="Mute", exact=True).wait_for()

    # alice hears bob (his audio goes browser → B → trunk → A → alice)
    await alice.wait_hearing(timeout=20)

    # alice mutes bob: his audio stops at alice
    bob_tile = alice.page.get_by_role("button", name=re.compile("^bob"))
    await bob_tile.click()
    await (
        alice.page.get_by_role("group", name=re.compile("^Actions for bob"))
        .get_by_role("button", name="Mute", exact=True)
        .click()
    )
    await bob.page.get_by_text("A moderator muted you.").wait_for()
    failures = await naming_failures(bob.page, "remote speaker's room view")
    failures += await naming_failures(alice.page, "moderator's room view")
    assert not failures, failures
    await alice.wait_silence(timeout=10)

    # alice ends the room; bob (on B) sees that it ended
    await alice.button("End room")
    await bob.page.get_by_text(re.compile("Room ended")).wait_for()
    await alice.page.get_by_text(re.compile("Room ended")).wait_for()
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)


@pytest.mark.timeout(90)
async def test_remote_room_rejection_and_reconnect(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    """A social room refuses bob with its reason; an open room survives B restarting:
    the client re-asks B to join, and restarts audio when its peer connection drops."""
    a = await node_factory("a", **AUDIO)
    b = await node_factory("b", **AUDIO)
    alice_api = await a.user("alice")
    bob = await Person.open(await launch(), b.url, "bob")
    await bob.signup()
    alice_mic = speech(tmp_path / "alice.wav", "Still here on node A, can you hear me? " * 3)
    alice = await Person.open(await launch(alice_mic), a.url, "alice")
    await alice.page.goto(a.url + "/")
    await alice.page.get_by_label("Username").fill("alice")
    await alice.page.get_by_label("Password").fill("password123")
    await alice.page.get_by_role("button", name="Sign in").click()
    await alice.page.get_by_role("heading", name="Hallway").wait_for()
    _, social = await alice_api.call(
        "POST", "/api/rooms", {"title": "Friends only", "join_mode": "social"}
    )
    _, open_room = await alice_api.call("POST", "/api/rooms", {"title": "Open door"})

    # a room link pasted into the search box opens the room through B
    await bob.page.get_by_label("Search").fill(social["url"])
    await bob.page.get_by_label("Search").press("Enter")
    await bob.page.wait_for_url(re.compile(r"/remote\?url="))
    await bob.button("Join")
    await bob.page.get_by_text(re.compile("You can't join this room: .*social room")).wait_for()

    # bob joins the open room (by its /remote link), then B restarts under him
    await alice.page.goto(f"{a.url}/rooms/{open_room['id']}")
    await alice.button("Join")
    await alice.page.get_by_role("button", name="Mute", exact=True).wait_for()
    await bob.page.goto(f"{b.url}/remote?url={quote(open_room['url'], safe='')}")
    await bob.button("Join")
    await bob.page.get_by_role("button", name="Raise hand", exact=True).wait_for()
    await bob.wait_hearing(timeout=15)
    await b.stop()
    await bob.page.get_by_text(re.compile("Reconnecting")).wait_for()
    await b.start()
    # the client re-asks B to join (POST /api/remote-rooms), B re-opens its trunk to A
    await bob.page.wait_for_function(
        "() => window.salonDebug.room.status === 'live'", timeout=20_000
    )
    await bob.wait_hearing(timeout=20)
    await bob.button("Raise hand")
    await bob.page.get_by_role("button", name="Lower hand", exact=True).wait_for()

    async def hand_on_a() -> bool:
        _, view = await alice_api.call("GET", f"/api/rooms/{open_room['id']}")
        return any(u.startswith("bob@") for u in view.get("hands", []))

    await eventually(hand_on_a, timeout=10)
    assert not bob.errors, bob.errors


async def test_remote_profile_and_unfollow_by_handle(node_factory: NodeFactory) -> None:
    """`GET /api/users/bob@host:port` (WebFinger when unknown) and `DELETE …/follow`."""
    a = await node_factory("a", **AUDIO)
    b = await node_factory("b", **AUDIO)
    alice = await a.user("alice")
    bob = await b.user("bob")
    handle = f"alice@{host_of(a.url)}"
    status, profile = await bob.call("GET", f"/api/users/{quote(handle, safe='')}")
    assert status == 200 and profile["handle"] == handle, profile
    await follow_accepted(bob, alice, a)
    status, body = await bob.call("DELETE", f"/api/users/{quote(handle, safe='')}/follow")
    assert status == 200 and body["user"]["followed_by_you"] is None, body
    status, body = await bob.call("DELETE", f"/api/users/{quote(handle, safe='')}/follow")
    assert status == 404, body
