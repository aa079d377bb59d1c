"""Chat and reactions in the room service, with a fake clock (no sleeping): history for
late joiners, rate limits, coalesced reactions, blocks, moderation and the room's end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.accounts import AccountService
from node.clock import FakeClock
from node.errors import DomainError
from node.rooms.drafts import RoomDraft
from node.rooms.gate import Gate, OpenDomains
from node.rooms.model import JoinMode, RoomRuleError
from node.rooms.service import RoomService
from node.rooms.subscription import Subscription
from node.store.blocks import BlockStore
from node.store.db import open_database
from node.store.follows import FollowStore
from node.store.users import User, UserStore
from tests.support.nodes import make_settings

pytestmark = pytest.mark.timeout(30)


class World:
    def __init__(self, path: Path, **overrides: object) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.clock = FakeClock()
        self.settings = make_settings(path, **overrides)
        self.db = open_database(path / "salon.db")
        self.accounts = AccountService(self.db, self.settings, self.clock)
        self.blocks = BlockStore(self.db)
        gate = Gate(FollowStore(self.db), UserStore(self.db), OpenDomains(), self.blocks)
        self.rooms = RoomService(self.db, self.settings, self.clock, gate)

    def user(self, name: str) -> User:
        return self.accounts.users.create(name, "x", self.clock.now())


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "w", chat_history=3, ws_queue_size=64)


def drain(sub: Subscription) -> list[dict[str, Any]]:
    out = []
    while not sub.queue.empty():
        item = sub.queue.get_nowait()
        if item is not None:
            out.append(item)
    return out


def of_type(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("type") == kind]


def open_room(world: World) -> tuple[str, User, User, Subscription, Subscription]:
    alice, bob = world.user("alice"), world.user("bob")
    room = world.rooms.create(alice, RoomDraft("Room", "", JoinMode.OPEN, None))
    sa = world.rooms.connect(room.id, alice)
    sb = world.rooms.connect(room.id, bob)
    drain(sa)
    drain(sb)
    return room.id, alice, bob, sa, sb


async def test_chat_reaches_everyone_and_late_joiners_get_the_last_n(world: World) -> None:
    room_id, alice, bob, sa, sb = open_room(world)
    room = world.rooms.get(room_id)
    sent = world.rooms.chat.post(room, bob, "  hello <b>all</b>  ")
    message = sent["message"]
    assert message["user"] == "bob" and message["text"] == "hello <b>all</b>"
    assert message["at"] == pytest.approx(world.clock.now())
    for sub in (sa, sb):
        assert of_type(drain(sub), "chat") == [sent]
    for i in range(4):
        world.clock.advance(2.0)  # within chat_messages_per_second
        world.rooms.chat.post(room, alice, f"m{i}")
    carol = world.user("carol")
    world.rooms.connect(room_id, carol)
    view = world.rooms.view(room, carol)["chat"]
    assert view["mode"] == "on" and [m["text"] for m in view["messages"]] == ["m1", "m2", "m3"]
    assert view["reactions"] == ["clap", "laugh", "heart", "plus_one", "fire", "hundred"]
    ids = [m["message"]["id"] for m in of_type(drain(sa), "chat")]
    assert len(set(ids)) == 4  # ids are the node's, unique


async def test_chat_rate_limit_refuses_without_a_trace(world: World) -> None:
    room_id, _alice, bob, sa, _sb = open_room(world)
    room = world.rooms.get(room_id)
    for i in range(world.settings.chat_messages_burst):
        world.rooms.chat.post(room, bob, f"m{i}")
    with pytest.raises(RoomRuleError) as err:
        world.rooms.chat.post(room, bob, "one too many")
    assert err.value.message == "too many chat messages; slow down"
    assert len(of_type(drain(sa), "chat")) == world.settings.chat_messages_burst
    world.clock.advance(1 / world.settings.chat_messages_per_second)
    world.rooms.chat.post(room, bob, "later")


async def test_reactions_are_coalesced_and_bounded(world: World) -> None:
    room_id, alice, bob, sa, _sb = open_room(world)
    room = world.rooms.get(room_id)
    for _ in range(3):
        world.rooms.chat.react(room, bob, "clap")
    world.rooms.chat.react(room, bob, "heart")
    world.rooms.chat.react(room, alice, "laugh")
    assert of_type(drain(sa), "reactions") == []  # nothing before the window ends
    world.rooms.chat.flush_reactions(room_id)  # what the window's timer calls
    batches = of_type(drain(sa), "reactions")
    assert batches == [
        {"type": "reactions", "reactions": {"bob": ["clap", "heart"], "alice": ["laugh"]}}
    ]
    world.rooms.chat.flush_reactions(room_id)
    assert drain(sa) == []  # an empty window sends nothing
    for _ in range(world.settings.reactions_burst - 4):
        world.rooms.chat.react(room, bob, "fire")
    with pytest.raises(RoomRuleError) as err:
        world.rooms.chat.react(room, bob, "fire")
    assert err.value.message == "too many reactions; slow down"
    with pytest.raises(DomainError) as err:
        world.rooms.chat.react(room, bob, "explode")
    assert err.value.message.startswith("reaction must be one of clap, laugh")


async def test_reaction_window_names_a_bounded_number_of_people(tmp_path: Path) -> None:
    world = World(tmp_path / "w", reactions_batch_users=5)
    alice = world.user("alice")
    room = world.rooms.create(alice, RoomDraft("Room", "", JoinMode.OPEN, None))
    sa = world.rooms.connect(room.id, alice)
    fans = [world.user(f"fan{i}") for i in range(12)]
    for fan in fans:
        world.rooms.connect(room.id, fan)
    drain(sa)
    for fan in fans:
        world.rooms.chat.react(room, fan, "clap")
    world.rooms.chat.flush_reactions(room.id)
    [batch] = of_type(drain(sa), "reactions")
    assert len(batch["reactions"]) == 5


async def test_blocked_authors_are_not_shown_to_their_blockers(world: World) -> None:
    room_id, alice, bob, sa, _sb = open_room(world)
    carol = world.user("carol")
    sc = world.rooms.connect(room_id, carol)
    room = world.rooms.get(room_id)
    world.blocks.block(carol.id, bob.id, None, world.clock.now())
    world.rooms.chat.post(room, bob, "can you see me")
    assert of_type(drain(sc), "chat") == []
    assert len(of_type(drain(sa), "chat")) == 1
    assert world.rooms.view(room, carol)["chat"]["messages"] == []
    assert len(world.rooms.view(room, alice)["chat"]["messages"]) == 1
    # a user the host blocked (after joining) cannot chat at all
    world.blocks.block(alice.id, carol.id, None, world.clock.now())
    with pytest.raises(RoomRuleError) as err:
        world.rooms.chat.post(room, carol, "hi")
    assert (
        err.value.message
        == "you cannot chat here: a host or moderator of this room has blocked you"
    )


async def test_moderation_commands_and_the_rooms_end(world: World) -> None:
    room_id, alice, bob, sa, sb = open_room(world)
    room = world.rooms.get(room_id)
    sent = world.rooms.chat.post(room, bob, "spam")
    with pytest.raises(RoomRuleError) as err:
        world.rooms.act(room_id, bob, "chat_off")
    assert err.value.message == "only moderators can do that"
    world.rooms.act(room_id, alice, "chat_off")
    assert of_type(drain(sb), "chat_mode") == [{"type": "chat_mode", "mode": "off", "by": "alice"}]
    with pytest.raises(RoomRuleError) as err:
        world.rooms.chat.post(room, alice, "even the host")
    assert err.value.message == "chat is off in this room"
    world.rooms.act(room_id, alice, "chat_on")
    world.rooms.act(room_id, alice, "remove", "bob")
    with pytest.raises(RoomRuleError) as err:
        world.rooms.chat.post(room, bob, "still here?")
    assert err.value.message == "join the room first"
    world.rooms.act(room_id, alice, "hide_messages", "bob")
    assert of_type(drain(sa), "chat_deleted") == [
        {"type": "chat_deleted", "ids": [sent["message"]["id"]]}
    ]
    with pytest.raises(RoomRuleError) as err:
        world.rooms.act(room_id, alice, "hide_messages", "nobody")
    assert err.value.message == "no user named 'nobody'"
    with pytest.raises(RoomRuleError) as err:
        world.rooms.act(room_id, alice, "chat_off", "bob")
    assert err.value.message == "chat_off takes no 'user'"
    world.rooms.chat.post(room, alice, "bye")
    world.rooms.act(room_id, alice, "end")
    assert world.rooms.chat._chats == {}  # the chat went with the room
    with pytest.raises(RoomRuleError):
        world.rooms.chat.post(world.rooms.get(room_id), alice, "after the end")
