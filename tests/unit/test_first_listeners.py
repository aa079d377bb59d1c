"""A coalesced room's view lists a first page of its audience (node/rooms/views.py)."""

from __future__ import annotations

from node.rooms.model import Participant, Role
from node.rooms.views import first_listeners


def listener(uid: int, joined: float) -> Participant:
    return Participant(user_id=uid, role=Role.LISTENER, joined_at=joined)


def test_followed_first_then_in_order_of_joining_and_always_the_viewer() -> None:
    audience = [listener(uid, joined=100.0 - uid) for uid in range(1, 11)]  # 10 joined first
    shown = first_listeners(audience, frozenset(), 3, None)
    assert [p.user_id for p in shown] == [10, 9, 8]
    shown = first_listeners(audience, frozenset({2, 5}), 3, None)
    assert [p.user_id for p in shown] == [5, 2, 10]
    shown = first_listeners(audience, frozenset({2, 5}), 3, viewer_id=1)
    assert [p.user_id for p in shown] == [5, 2, 10, 1]
    shown = first_listeners(audience, frozenset(), 3, viewer_id=9)  # already on the page
    assert [p.user_id for p in shown] == [10, 9, 8]
    assert first_listeners([], frozenset(), 3, viewer_id=4) == []
