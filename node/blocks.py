"""Block and mute: what a user does about someone else.

A block removes follows both ways and is enforced by every rule that asks ``BlockStore``:
the room gate (joins, putting on stage), follows, the hallway. Blocking a remote person
tells their node (``hooks``: federation sends ``Block`` and ``Undo{Block}``). A mute only
hides someone's rooms from your own hallway; nobody else learns of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from node.accounts import AccountError, AccountService, handle
from node.clock import Clock
from node.store.blocks import BlockStore
from node.store.users import User

log = logging.getLogger(__name__)

MAX_BLOCKS = 10_000  # per user (docs/security.md)
MAX_MUTES = 10_000

#: Hears every block change of a local user: (blocker, blocked, "block" | "unblock").
BlockHook = Callable[[User, User, str], None]


class BlockService:
    def __init__(
        self,
        accounts: AccountService,
        blocks: BlockStore,
        clock: Clock,
        *,
        hooks: Sequence[BlockHook] = (),
    ) -> None:
        self.accounts = accounts
        self.blocks = blocks
        self.clock = clock
        self.hooks = tuple(hooks)

    def block(self, user: User, target: User) -> bool:
        """Block TARGET; False if already blocked. Follows both ways are removed."""
        exists = self.blocks.blocks(user.id, target.id)
        held = self.blocks.count(user.id)
        if not _may_add(user, target, "block", exists, held, MAX_BLOCKS):
            return False
        if not self.blocks.block(user.id, target.id, None, self.clock.now()):
            return False
        self.accounts.unfollow(user, target)
        self.accounts.follows.remove(target.id, user.id)
        log.info("blocks: %s blocked %s", handle(user), handle(target))
        for hook in self.hooks:
            hook(user, target, "block")
        return True

    def unblock(self, user: User, target: User) -> bool:
        """Hooks hear of it while the row (and the id of the Block it sent) still exists."""
        if not self.blocks.blocks(user.id, target.id):
            return False
        for hook in self.hooks:
            hook(user, target, "unblock")
        log.info("blocks: %s unblocked %s", handle(user), handle(target))
        return self.blocks.unblock(user.id, target.id)

    def mute(self, user: User, target: User) -> bool:
        exists = self.blocks.mutes(user.id, target.id)
        held = self.blocks.mute_count(user.id)
        if not _may_add(user, target, "mute", exists, held, MAX_MUTES):
            return False
        return self.blocks.mute(user.id, target.id, self.clock.now())

    def unmute(self, user: User, target: User) -> bool:
        return self.blocks.unmute(user.id, target.id)

    def blocked(self, user: User) -> list[User]:
        return self._users(self.blocks.blocked_ids(user.id))

    def muted(self, user: User) -> list[User]:
        return self._users(self.blocks.muted_ids(user.id))

    def hidden_hosts(self, viewer: User) -> set[str]:
        """Handles whose rooms the viewer's hallway leaves out (blocked either way, muted)."""
        return {handle(u) for u in self._users(sorted(self.blocks.hidden_from(viewer.id)))}

    def blocked_names(self, viewer: User) -> set[str]:
        """How the people the viewer blocked appear on hallway cards: handles, and the actor
        URIs that remote rooms' announcements name their speakers by."""
        handles = {handle(u) for u in self.blocked(viewer)}
        return handles | self.blocks.blocked_actor_uris(viewer.id)

    def _users(self, ids: list[int]) -> list[User]:
        found = self.accounts.users.many(ids)
        return [found[i] for i in ids if i in found]


def _may_add(user: User, target: User, what: str, exists: bool, held: int, limit: int) -> bool:
    """False when the block or mute is already there; refused for yourself or past LIMIT."""
    if user.id == target.id:
        raise AccountError("invalid", f"you cannot {what} yourself")
    if exists:
        return False
    if held >= limit:
        raise AccountError("conflict", f"you cannot {what} more than {limit} people")
    return True
