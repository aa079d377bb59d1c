"""Blocks across nodes, in Mastodon's shape.

Out: a local user's block of a remote person becomes ``Block`` (``object`` = their actor)
delivered to their inbox, and an unblock ``Undo{Block}`` (``BlockBridge``, a hook of
``node.blocks.BlockService``). In: a remote person's ``Block`` of one of our users is
stored as a block row (so the gate, follows and hallway honour it) and removes follows
between the two; ``Undo{Block}`` removes it (``BlockHandlers``). A ``Block`` naming
anything but one of our users stores nothing.
"""

from __future__ import annotations

import logging

from federation.activities import Actor, Block, Undo
from federation.actors import ActorDirectory
from federation.as2 import ActivityError, Reference
from federation.identity import Urls
from federation.outbox import Publisher
from federation.store.actors import FollowActivityStore, RemoteActorStore
from node.clock import Clock
from node.store.blocks import BlockStore
from node.store.follows import FollowStore
from node.store.users import User, UserStore

log = logging.getLogger(__name__)


class BlockBridge:
    """Sends ``Block``/``Undo{Block}`` when a local user blocks or unblocks a remote one."""

    def __init__(
        self,
        urls: Urls,
        actors: RemoteActorStore,
        follow_activities: FollowActivityStore,
        blocks: BlockStore,
        publisher: Publisher,
    ) -> None:
        self.urls = urls
        self.actors = actors
        self.follow_activities = follow_activities
        self.blocks = blocks
        self.publisher = publisher

    def __call__(self, blocker: User, blocked: User, what: str) -> None:
        if not blocker.is_local or blocked.is_local:
            return
        remote = self.actors.actor_by_user(blocked.id)
        if remote is None:
            log.warning("blocks: no actor document for %s@%s", blocked.username, blocked.domain)
            return
        me = self.urls.actor(blocker.username)
        if what == "block":
            self.follow_activities.forget_follow_activity(blocked.id, blocker.id)
            block = Block(
                id=self.urls.new_activity_id(),
                actor=me,
                object=remote.actor_uri,
                to=(remote.actor_uri,),
            )
            self.blocks.set_activity(blocker.id, blocked.id, block.id)
            self.publisher.publish(block.serialize(), blocker, [remote.inbox], public=False)
        elif what == "unblock":
            undo = Undo(
                id=self.urls.new_activity_id(),
                actor=me,
                object=Block(id=self._sent_id(blocker, blocked), actor=me, object=remote.actor_uri),
                to=(remote.actor_uri,),
            )
            self.publisher.publish(undo.serialize(), blocker, [remote.inbox], public=False)

    def _sent_id(self, blocker: User, blocked: User) -> str:
        """The id of the Block we sent (a block made before federation knew them: a
        stable fragment id; receivers match an Undo by actor and object anyway)."""
        sent = self.blocks.activity_of(blocker.id, blocked.id)
        return sent or f"{self.urls.actor(blocker.username)}#blocks/{blocked.id}"


class BlockHandlers:
    """A remote person's ``Block`` of one of our users, and its ``Undo``."""

    def __init__(
        self,
        urls: Urls,
        users: UserStore,
        follows: FollowStore,
        follow_activities: FollowActivityStore,
        actors: RemoteActorStore,
        blocks: BlockStore,
        directory: ActorDirectory,
        clock: Clock,
    ) -> None:
        self.urls = urls
        self.users = users
        self.follows = follows
        self.follow_activities = follow_activities
        self.actors = actors
        self.blocks = blocks
        self.directory = directory
        self.clock = clock

    def undoes_block(self, activity: Undo) -> bool:
        target = activity.object
        if isinstance(target, Reference):
            return self.blocks.by_activity(target.id) is not None
        return isinstance(target, Block)

    def block(self, activity: Block, actor: Actor) -> str:
        blocked = self._ours(activity.object)
        if blocked is None:
            return "Block of an object that is not one of our users ignored"
        document = self.directory.document(actor.id) or actor.serialize()
        blocker_id = self.directory.remember(actor, document)
        if not self.blocks.block(blocker_id, blocked.id, activity.id, self.clock.now()):
            self.blocks.set_activity(blocker_id, blocked.id, activity.id)
            return "already blocked"
        for follower, followee in ((blocker_id, blocked.id), (blocked.id, blocker_id)):
            self.follows.remove(follower, followee)
            self.follow_activities.forget_follow_activity(follower, followee)
        return "block stored"

    def undo(self, activity: Undo, actor: Actor) -> str:
        target = activity.object
        remote = self.actors.actor_by_uri(actor.id)
        if remote is None:
            return "Undo of an unknown block ignored"
        if isinstance(target, Block):
            if target.actor != actor.id:
                raise ActivityError("Undo.object.actor must be the Undo's actor")
            blocked = self._ours(target.object)
            pair = (remote.user_id, blocked.id) if blocked else None
        else:
            pair = self.blocks.by_activity(target.id)
        if pair is None:
            return "Undo of an unknown block ignored"
        if pair[0] != remote.user_id:
            raise ActivityError(f"{actor.id} cannot undo a block of someone else")
        removed = self.blocks.unblock(*pair)
        return "block undone" if removed else "Undo of an unknown block ignored"

    def _ours(self, uri: str) -> User | None:
        username = self.urls.username_of(uri)
        return self.users.by_name(username) if username else None
