"""A Fedify actor follows alice; when her recorded room ends with its replay ready, the
``Update`` it receives parses with ``@fedify/fedify``'s vocabulary as an ``Event`` with an
``Audio`` attachment (url, ``audio/ogg``, an xsd:duration of 20 s); after the host
deletes the replay, the next ``Update`` parses without it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from federation import keys
from tests.interop.conftest import Captured, FakeRemote, run_tool
from tests.support.nodes import Node
from tests.support.replays import ended_room_with_replay

pytestmark = pytest.mark.timeout(90)


async def update_with_audio(remote: FakeRemote, timeout: float = 10.0) -> Captured:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for post in remote.posts("Update"):
            if json.loads(post.body)["object"].get("attachment"):
                return post
        await asyncio.sleep(0.05)
    raise AssertionError(f"no Update with an attachment: {remote.posts('Update')}")


async def test_fedify_parses_the_replay_attachment(
    fedify: list[str], salon: Node, remote: FakeRemote
) -> None:
    fedi = remote.add("fedi")
    follow = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.base}/activities/follow-1",
        "type": "Follow",
        "actor": remote.actor_id("fedi"),
        "object": f"{salon.url}/users/alice",
    }
    sent = await run_tool(
        fedify,
        {
            "op": "sign-and-send",
            "url": f"{salon.url}/users/alice/inbox",
            "body": json.dumps(follow),
            "keyId": keys.rsa_key_id(remote.actor_id("fedi")),
            "privateKeyPem": fedi.rsa_private_pem,
            "spec": "draft-cavage-http-signatures-12",
        },
    )
    assert sent["status"] == 202, sent
    await remote.wait_post("Accept")
    alice = await salon.user()
    await alice.signin("alice")
    room = await ended_room_with_replay(salon, alice)
    update = await update_with_audio(remote)
    parsed: dict[str, Any] = await run_tool(
        fedify, {"op": "attachments", "body": update.body.decode()}
    )
    assert parsed["type"] == "Update" and parsed["object"] == "Event", parsed
    [audio] = parsed["attachments"]
    assert audio["type"] == "Audio"
    assert audio["url"] == f"{salon.url}/rooms/{room}/replay.ogg"
    assert audio["mediaType"] == "audio/ogg"
    assert audio["duration"] == "PT20S" and audio["seconds"] == 20
    assert audio["name"] == "Tones"

    # the host deletes it: the next Update's Event has no attachment, as fedify reads it
    seen = len(remote.posts("Update"))
    assert (await alice.call("DELETE", f"/api/rooms/{room}/replay"))[0] == 200
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(remote.posts("Update")) == seen:
        assert loop.time() < deadline, "no Update after the delete"
        await asyncio.sleep(0.05)
    after = remote.posts("Update")[-1]
    parsed = await run_tool(fedify, {"op": "attachments", "body": after.body.decode()})
    assert parsed["object"] == "Event" and parsed["attachments"] == []
