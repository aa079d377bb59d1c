"""What a room view says about blocks, for the one person reading it.

Moderators see a shield (``blocked_by_moderator``) on participants some moderator of the
room has blocked; anyone sees ``blocked_on_stage``: the people on stage they blocked, so
the client can warn before they join. Nobody learns who blocked them.
"""

from __future__ import annotations

from typing import Any

from node.accounts import handle
from node.rooms.gate import Gate
from node.rooms.model import Participant, Room
from node.store.users import User


def mark_blocks(
    data: dict[str, Any],
    room: Room,
    viewer: User,
    gate: Gate,
    users: dict[int, User],
    speakers: list[Participant] | None = None,
) -> None:
    """Add the block marks to the room view DATA built for VIEWER (SPEAKERS: the room's,
    when the caller has them already)."""
    on_stage = room.speakers() if speakers is None else speakers
    stage = {p.user_id for p in on_stage} - {viewer.id}
    data["blocked_on_stage"] = sorted(
        handle(users[uid]) for uid in gate.blocked_by(viewer.id, stage) if uid in users
    )
    if viewer.id not in room.moderator_ids():
        return
    shielded = {
        handle(users[uid])
        for uid in gate.blocked_by_moderators(room, set(room.participants))
        if uid in users
    }
    for entry in (*data["speakers"], *data["listeners"]):
        entry["blocked_by_moderator"] = entry["user"] in shielded
