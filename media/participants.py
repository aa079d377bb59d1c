"""The participants of one room on this node: their peer connections and who may speak.

An origin room (``RoomMedia``, media/engine.py) and a relay room (``RelayRoom``,
media/relay.py) carry audio differently — one mixes, the other forwards over a trunk — but
their participants are the same thing: one peer connection each, signalled by the same
offer/ice messages, cut at the node by the same can-speak decision. ``Participants`` is that
shared part, and each room composes it (neither room is a kind of the other), so a change
to how participants join, renegotiate or fail reaches both rooms through one class instead
of through overridden hooks.

The rooms learn what happens through two callbacks given to the constructor: ``on_answered``
(a participant has a negotiated connection: an origin starts its clock) and ``on_left`` (a
participant's connection is gone, or never was: an origin drops their mix-minus encoder and
stops its clock when nobody is left). A relay room's speakers' packets leave through an
``Upstream`` instead of a local jitter buffer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, ItemsView
from typing import TYPE_CHECKING, Protocol

from media.fanout import Downlink
from media.port import MediaPort
from media.session import ParticipantSession, Uplink
from media.signaling import Answer, Ice, Offer, Renegotiate, SignalError, parse_client_message

if TYPE_CHECKING:
    from media.engine import MediaConfig  # the engine composes us: no import cycle at run time

logger = logging.getLogger(__name__)

SendToParticipant = Callable[[str, dict], None]
#: Seconds between two offers from new peer connections of one participant: a reconnecting
#: client needs one; a client sending them in a loop would make the node build and tear
#: down a peer connection (certificate, sockets) per message.
NEW_PEER_INTERVAL = 1.0
Forward = Callable[[int, int, bytes], None]  # (sequence, timestamp, payload) of one packet


class Upstream(Protocol):
    """Where a relay room sends its speakers' packets instead of mixing them (the origin)."""

    def forward_for(self, participant: str) -> Forward: ...


async def _nothing_left(participant: str) -> None:
    """Default ``on_left``: a room with no clock has nothing to stop."""


class Participants:
    """One room's participant sessions on this node and the node's can-speak decisions."""

    def __init__(
        self,
        room_id: str,
        config: MediaConfig,
        send: SendToParticipant,
        port: MediaPort,
        *,
        upstream: Upstream | None = None,
        on_answered: Callable[[str], None] = lambda participant: None,
        on_left: Callable[[str], Awaitable[None]] = _nothing_left,
    ) -> None:
        self.room_id = room_id
        self._config = config
        self._send = send
        self._port = port
        self._upstream = upstream
        self._on_answered = on_answered
        self._on_left = on_left
        self._sessions: dict[str, ParticipantSession] = {}
        self._can_speak: dict[str, bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._replaced: set[asyncio.Task[None]] = set()  # old sessions being closed
        self._new_peer_at: dict[str, float] = {}  # participant → monotonic time
        self.closed = False

    # ---- the node's interface -------------------------------------------------------------

    async def signal(self, participant: str, message: dict) -> None:
        """Handle one client → node signalling message; SignalError on bad input."""
        if self.closed:
            raise SignalError("room media is closed")
        parsed = parse_client_message(message)
        if isinstance(parsed, Offer):
            await self._offer(participant, parsed)
        else:
            await self._ice(participant, parsed)

    def set_can_speak(self, participant: str, allowed: bool) -> None:
        """Node's decision; False cuts the participant's audio at the node immediately."""
        before = self._can_speak.get(participant, False)
        self._can_speak[participant] = allowed
        session = self._sessions.get(participant)
        if not allowed and session is not None:
            session.reset_uplink()
        if session is not None and before != allowed and session.negotiated_direction:
            # Ask the client for a fresh offer so the uplink is (de)negotiated; the cut above
            # does not wait for it.
            self._send(participant, Renegotiate(can_speak=allowed).serialize())

    async def remove(self, participant: str) -> None:
        """Close that participant's peer connection and forget the node's speak decision."""
        self._can_speak.pop(participant, None)
        self._new_peer_at.pop(participant, None)
        await self._close_session(participant)

    async def close(self) -> None:
        """Refuse new signalling, remove everyone, and end the failure-handling tasks."""
        self.closed = True
        for name in list(self._sessions):
            await self.remove(name)
        await asyncio.gather(*self._replaced, return_exceptions=True)  # let them finish
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- what the mixer, the fan-out and the relay ask ----------------------------------------

    def may_speak(self, participant: str) -> bool:
        return self._can_speak.get(participant, False)

    # The mixer may call these from the node's tick thread while the loop changes the dicts:
    # each iterates a copy made by one C-level call (``list(d.items())``), never the dict.

    def allowed_speakers(self) -> list[str]:
        """Everyone the node lets speak, in decision order (with or without a session here)."""
        return [name for name, allowed in list(self._can_speak.items()) if allowed]

    def __contains__(self, participant: object) -> bool:
        """Whether PARTICIPANT has a peer connection (session) in this room on this node."""
        return participant in self._sessions

    @property
    def empty(self) -> bool:
        """Nobody has a peer connection here (an origin may stop its clock)."""
        return not self._sessions

    def names(self) -> list[str]:
        return list(self._sessions)

    def counts(self) -> tuple[int, int]:
        """(sessions, sessions of participants allowed to speak); any thread may ask."""
        sessions = self._sessions
        speaking = sum(1 for n, a in list(self._can_speak.items()) if a and n in sessions)
        return len(sessions), speaking

    def session(self, participant: str) -> ParticipantSession | None:
        return self._sessions.get(participant)

    def sessions(self) -> ItemsView[str, ParticipantSession]:
        """A read-only live view (the fan-out copies it with ``list`` before iterating)."""
        return self._sessions.items()

    def speaking_uplinks(self) -> list[tuple[str, Uplink]]:
        """The uplinks of participants allowed to speak, in join order (the mix order)."""
        allowed = self._can_speak.get
        return [(n, s.uplink) for n, s in list(self._sessions.items()) if allowed(n, False)]

    def has_downlinks(self) -> bool:
        return any(s.downlink is not None for s in list(self._sessions.values()))

    def listener_downlinks(self) -> list[Downlink]:
        """Downlinks of everyone who may not speak: they hear the room's mix."""
        allowed = self._can_speak.get
        return [
            s.downlink
            for n, s in self._sessions.items()
            if s.downlink is not None and not allowed(n, False)
        ]

    def downlink_of(self, participant: str) -> Downlink | None:
        session = self._sessions.get(participant)
        return session.downlink if session is not None else None

    # ---- signalling ---------------------------------------------------------------------------

    async def _offer(self, participant: str, offer: Offer) -> None:
        old = self._sessions.get(participant)
        # A new session when there is none, when the node closed it, or when the offer
        # comes from a new peer connection of the client (new ICE credentials: it
        # reconnected within the room's grace period, a bot after a 4008 close, a reloaded
        # page; aiortc cannot restart ICE). It replaces the old one only once it answered,
        # so a bad offer never breaks a working session. The speak decision is kept.
        created = old is None or old.pc.signalingState == "closed" or old.is_new_peer(offer.sdp)
        if created and old is not None:
            now = time.monotonic()
            if now - self._new_peer_at.get(participant, -NEW_PEER_INTERVAL) < NEW_PEER_INTERVAL:
                raise SignalError("offer: a new peer connection at most once a second")
            self._new_peer_at[participant] = now
        session = self._new_session(participant) if created else old
        assert session is not None
        self._sessions[participant] = session  # trickled candidates go to the new one
        try:
            sdp = await session.answer(offer.sdp)
        except SignalError:
            if old is None:
                await self.remove(participant)  # a failed first offer leaves nothing
            elif session is not old:
                if self._sessions.get(participant) is session:  # (not removed meanwhile)
                    self._sessions[participant] = old
                await session.close()
            raise
        self._on_answered(participant)
        logger.info(
            "media [%s] %s %s (%s)",
            self.room_id,
            participant,
            "joined" if created else "renegotiated",
            session.negotiated_direction,
        )
        self._send(participant, Answer(sdp=sdp).serialize())
        if old is not None and session is not old:
            # closing a peer connection whose client is gone can take a while (DTLS and
            # ICE shutdown): never hold the answer, or this handler, for it
            task = asyncio.ensure_future(old.close())
            self._replaced.add(task)
            task.add_done_callback(self._replaced.discard)

    def _new_session(self, participant: str) -> ParticipantSession:
        upstream = self._upstream
        return ParticipantSession(
            self.room_id,
            participant,
            self._port,
            self._config.ice_addresses,
            may_speak=lambda: self._can_speak.get(participant, False),
            on_failed=self._connection_failed,
            forward=upstream.forward_for(participant) if upstream is not None else None,
            protect=self._config.loss_protection,
        )

    async def _ice(self, participant: str, message: Ice) -> None:
        session = self._sessions.get(participant)
        if session is None:
            raise SignalError("ice: no media session for this participant (send an offer first)")
        await session.add_ice(message)

    async def _close_session(self, participant: str) -> None:
        """Close the peer connection but keep the speak decision (ICE failure: may re-offer)."""
        session = self._sessions.pop(participant, None)
        if session is not None:
            await session.close()
            logger.info("media [%s] %s left", self.room_id, participant)
        await self._on_left(participant)

    def _connection_failed(self, participant: str) -> None:
        session = self._sessions.get(participant)
        if session is None or session.pc.connectionState not in ("failed", "closed"):
            return  # a session already replaced by a newer peer connection ended: not ours
        logger.info("media [%s] %s connection ended; closing it", self.room_id, participant)
        task = asyncio.ensure_future(self._close_session(participant))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
