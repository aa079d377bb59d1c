"""A large audience in real Chromium: the count from the node's `audience` messages, and
"Show listeners" paging through everyone (GET /api/rooms/{id}/listeners).

The node coalesces above 2 participants here, so a handful of listeners is "large".
"""

from __future__ import annotations

import re

import pytest

from tests.browser.browser_harness import Launch, Person
from tests.support.nodes import NodeFactory

pytestmark = pytest.mark.timeout(120)


async def test_large_audience_count_and_paged_listeners(
    node_factory: NodeFactory, launch: Launch
) -> None:
    node = await node_factory(
        ice_addresses=("127.0.0.1",), audience_coalesce_above=2, listeners_page_max=200
    )
    alice = await node.user("alice")
    status, room = await alice.call("POST", "/api/rooms", {"title": "Crowded"})
    assert status == 201, room
    host_ws = await alice.ws(room["id"])
    assert (await host_ws.receive_json(timeout=10))["type"] == "state"
    listeners = [await node.user(f"l{i}") for i in range(4)]
    for user in listeners:
        status, _ = await user.call("POST", f"/api/rooms/{room['id']}/join")
        assert status == 200

    browser = await launch()
    bob = await Person.open(browser, node.url, "bob")
    await bob.signup()
    await bob.page.goto(room["url"])
    await bob.page.get_by_role("heading", name="Crowded").wait_for()
    await bob.button("Join")
    await bob.page.get_by_role("button", name="Raise hand", exact=True).wait_for()
    audience = bob.page.get_by_role("heading", name=re.compile(r"^Listeners"))
    await audience.filter(has_text="(5)").wait_for()  # l0-l3 and bob

    # more people arrive: the count follows from `audience` messages, not per-person events
    late = await node.user("late")
    status, _ = await late.call("POST", f"/api/rooms/{room['id']}/join")
    assert status == 200
    await audience.filter(has_text="(6)").wait_for()

    await bob.button("Show listeners")
    for name in ("l0", "l1", "l2", "l3", "late", "bob"):
        await bob.page.get_by_role("button", name=re.compile(f"^{name}\\b")).first.wait_for()
    await bob.page.get_by_role("button", name="Hide listeners", exact=True).wait_for()
    assert not await bob.page.get_by_role("button", name="More listeners").count()
    await bob.button("Hide listeners")
    await bob.page.get_by_role("button", name="Show listeners", exact=True).wait_for()
    assert not bob.errors, bob.errors
    await host_ws.close()
