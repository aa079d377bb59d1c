"""Accounts: sign-up, sign-in, sessions, API tokens, profiles and local follows.

The web API and the CLI both call this service, so a rule lives in one place.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from node.auth import (
    USERNAME_RE,
    AttemptLimiter,
    AuthError,
    address_key,
    check_password,
    check_username,
    dummy_verify,
    hash_password,
    new_token,
    token_hash,
    verify_password,
)
from node.clock import Clock
from node.errors import DomainError
from node.settings import Settings
from node.store.blocks import BlockStore
from node.store.db import Database
from node.store.follows import FollowStore
from node.store.rooms import RoomStore
from node.store.users import NameTaken, Session, SessionStore, User, UserStore

log = logging.getLogger(__name__)

MAX_DISPLAY_NAME = 100
MAX_BIO = 2000
SIGNUP_WINDOW = 3600.0
BLOCKED_FOLLOW = "you cannot follow this person: one of you has blocked the other"


class AccountError(DomainError):
    """A request about accounts that cannot be done."""


@dataclass(frozen=True)
class SignedIn:
    user: User
    token: str
    session: Session


FollowHook = Callable[[User, User, str], None]
CreatedHook = Callable[[User], Awaitable[object]]


class AccountService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        follow_hooks: Sequence[FollowHook] = (),
        created_hooks: Sequence[CreatedHook] = (),
    ) -> None:
        """FOLLOW_HOOKS hear every follow decision and CREATED_HOOKS every new account:
        federation sends Follow/Accept/Undo and makes keys through them. Created hooks
        are awaited, so slow work (key generation) can leave the event loop."""
        self.users = UserStore(db)
        self.sessions = SessionStore(db)
        self.follows = FollowStore(db)
        self.blocks = BlockStore(db)
        self.settings = settings
        self.clock = clock
        self.limiter = AttemptLimiter(
            clock, settings.signin_attempts, float(settings.signin_window_seconds)
        )
        self.signups = AttemptLimiter(clock, settings.signup_per_ip_per_hour, SIGNUP_WINDOW)
        self.follow_hooks = tuple(follow_hooks)
        self.created_hooks = tuple(created_hooks)

    # ---- accounts ------------------------------------------------------------------
    async def create_user(self, username: object, password: object, is_admin: bool = False) -> User:
        try:
            name = check_username(username)
            secret = check_password(password)
        except AuthError as exc:
            raise AccountError("invalid", str(exc)) from None
        if self.users.by_name(name) is not None:
            raise AccountError("conflict", f"the username {name!r} is taken")
        hashed = await hash_password(secret)
        try:
            user = self.users.create(name, hashed, self.clock.now(), is_admin=is_admin)
        except NameTaken as exc:
            raise AccountError("conflict", str(exc)) from None
        log.info("accounts: created user %s", name)
        for hook in self.created_hooks:
            await hook(user)
        return user

    async def signup(self, username: object, password: object, ip: str) -> User:
        """Sign-up from the web: at most ``signup_per_ip_per_hour`` attempts per address
        (0 = no limit), counted before any work so concurrent requests cannot slip by."""
        if not self.settings.open_registration:
            raise AccountError("forbidden", "registration is closed on this node")
        if self.settings.signup_per_ip_per_hour > 0:
            keys = [address_key(ip)]
            wait = self.signups.retry_after(keys)
            if wait is not None:
                raise AccountError(
                    "rate_limited", "too many sign-ups from your address; try again later", wait
                )
            self.signups.record(keys)
        return await self.create_user(username, password)

    async def signin(
        self, username: object, password: object, ip: str, kind: str, label: str = ""
    ) -> SignedIn:
        """Check a password, at most ``signin_attempts`` per window per address and account.

        The attempt is counted before the (threaded, slow) password check, so attempts in
        flight count too; a success un-counts itself from the address and clears the
        account's failures. A name no account could have is counted by address only, so
        junk names cannot grow the table.
        """
        if not isinstance(username, str) or not isinstance(password, str):
            raise AccountError("invalid", "username and password must be strings")
        ip_key = address_key(ip)
        user_key = f"user:{username}" if USERNAME_RE.fullmatch(username) else None
        keys = [ip_key] if user_key is None else [ip_key, user_key]
        wait = self.limiter.retry_after(keys)
        if wait is not None:
            raise AccountError("rate_limited", "too many failed sign-ins; try again later", wait)
        stamp = self.limiter.record(keys)
        user = self.users.by_name(username) if user_key is not None else None
        stored = self.users.password_hash(user.id) if user else None
        if user is None or stored is None:
            await dummy_verify(password)
            ok = False
        else:
            ok = await verify_password(stored, password)
        if not ok or user is None or user_key is None:
            raise AccountError("unauthorized", "wrong username or password")
        if user.suspended:
            raise AccountError("forbidden", "this account is suspended by the node's operator")
        self.limiter.forgive([ip_key], stamp)
        self.limiter.clear(user_key)
        return self.open_session(user, kind, label)

    def open_session(self, user: User, kind: str, label: str = "") -> SignedIn:
        token = new_token()
        now = self.clock.now()
        expires = now + self.settings.session_days * 86400 if kind == "cookie" else None
        hashed = token_hash(token)
        self.sessions.create(
            hashed, user.id, kind, secrets.token_urlsafe(24), now, expires, label=label
        )
        session = self.sessions.get(hashed)
        assert session is not None
        return SignedIn(user=user, token=token, session=session)

    def authenticate(self, token: str) -> tuple[User, Session] | None:
        session = self.sessions.get(token_hash(token))
        if session is None:
            return None
        if session.expires_at is not None and session.expires_at < self.clock.now():
            self.sessions.delete(session.token_hash)
            return None
        user = self.users.get(session.user_id)
        if user is None or user.suspended:
            return None
        return user, session

    def signout(self, session: Session) -> None:
        self.sessions.delete(session.token_hash)

    def remove_user(self, username: str) -> None:
        """Delete an account with its sessions, follows, seats and the rooms it hosted.

        Refused while the user hosts a scheduled or live room: end those first, so no
        listener loses a room without a word.
        """
        user = self.users.by_name(username)
        if user is None:
            raise AccountError("not_found", f"no user named {username!r}")
        hosting = RoomStore(self.users.db).active_hosted_by(user.id)
        if hosting:
            raise AccountError(
                "conflict",
                f"{username} hosts {len(hosting)} active room(s) ({', '.join(hosting)}); "
                "end them first",
            )
        self.users.delete(user.id)

    def update_profile(self, user: User, changes: dict[str, object]) -> User:
        allowed = {"display_name", "bio", "locked"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise AccountError("invalid", f"unknown field(s): {', '.join(unknown)}")
        display_name = changes.get("display_name")
        bio = changes.get("bio")
        locked = changes.get("locked")
        if display_name is not None and (
            not isinstance(display_name, str) or len(display_name) > MAX_DISPLAY_NAME
        ):
            raise AccountError(
                "invalid", f"display_name must be a string of at most {MAX_DISPLAY_NAME}"
            )
        if bio is not None and (not isinstance(bio, str) or len(bio) > MAX_BIO):
            raise AccountError("invalid", f"bio must be a string of at most {MAX_BIO} characters")
        if locked is not None and not isinstance(locked, bool):
            raise AccountError("invalid", "locked must be true or false")
        return self.users.update_profile(
            user.id,
            display_name=display_name.strip() if isinstance(display_name, str) else None,
            bio=bio if isinstance(bio, str) else None,
            locked=locked if isinstance(locked, bool) else None,
        )

    def by_name(self, username: str) -> User:
        """A local user, or a known remote one by ``bob@host[:port]``."""
        if "@" in username:
            name, _, domain = username.lstrip("@").partition("@")
            user = self.users.by_handle(name, domain.lower())
        else:
            user = self.users.by_name(username)
        if user is None:
            raise AccountError("not_found", f"no user named {username!r}")
        return user

    # ---- follows -------------------------------------------------------------------
    def follow(self, follower: User, followee: User) -> str:
        """Follow; a locked account's follow stays 'pending' until approved."""
        if follower.id == followee.id:
            raise AccountError("invalid", "you cannot follow yourself")
        if self.blocks.between(follower.id, followee.id):
            raise AccountError("forbidden", BLOCKED_FOLLOW)
        current = self.follows.state(follower.id, followee.id)
        if current is not None:
            return current
        # A remote follow stays pending until the remote side's Accept arrives.
        state = "pending" if followee.locked or not followee.is_local else "accepted"
        self.follows.put(follower.id, followee.id, state, self.clock.now())
        self._notify(follower, followee, "follow")
        return state

    def unfollow(self, follower: User, followee: User) -> bool:
        removed = self.follows.remove(follower.id, followee.id)
        if removed:
            self._notify(follower, followee, "unfollow")
        return removed

    def approve(self, followee: User, follower: User) -> None:
        if self.follows.state(follower.id, followee.id) != "pending":
            raise AccountError("not_found", "no pending follow request from that user")
        self.follows.put(follower.id, followee.id, "accepted", self.clock.now())
        self._notify(follower, followee, "accept")

    def reject(self, followee: User, follower: User) -> None:
        if self.follows.state(follower.id, followee.id) != "pending":
            raise AccountError("not_found", "no pending follow request from that user")
        self.follows.remove(follower.id, followee.id)
        self._notify(follower, followee, "reject")

    def _notify(self, follower: User, followee: User, what: str) -> None:
        for hook in self.follow_hooks:
            hook(follower, followee, what)

    def profile(self, user: User, viewer: User | None) -> dict[str, object]:
        followers, following = self.follows.counts(user.id)
        data: dict[str, object] = {
            "username": user.username,
            "handle": handle(user),
            "display_name": user.display_name or user.username,
            "bio": user.bio,
            "locked": user.locked,
            "followers_count": followers,
            "following_count": following,
            "local": user.is_local,
        }
        if viewer is not None and viewer.id != user.id:
            data["followed_by_you"] = self.follows.state(viewer.id, user.id)
            data["follows_you"] = self.follows.state(user.id, viewer.id) == "accepted"
            data["blocked_by_you"] = self.blocks.blocks(viewer.id, user.id)
            data["muted_by_you"] = self.blocks.mutes(viewer.id, user.id)
        return data


def handle(user: User) -> str:
    """The name clients show: ``alice`` on this node, ``bob@other.example`` otherwise."""
    return user.username if user.domain is None else f"{user.username}@{user.domain}"
