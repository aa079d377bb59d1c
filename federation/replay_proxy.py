"""Other nodes' replays, played through the user's own node.

An ended remote room whose ``Event`` carries an ``Audio`` attachment gets a replay card in
the hallways of the people following its host. The browser never talks to the origin: it
asks this node for the replay's data and for byte ranges of its audio, and this node makes
one GET per request, signed with the user's own key (so that the origin can apply a social
room's rule to them), through the safe client — no private addresses outside testnet, no
redirects, at most ``replay_proxy_bytes`` per answer. The origin therefore sees this
node's address, never the listener's (docs/federation.md §5.3).
Only URLs this node stored from the host's own announcement are fetched, so the endpoint is
no open proxy.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from federation.as2 import ActivityError, host_of, same_host
from federation.events import Audio, audio_attachments
from federation.fetch import FetchError, SafeClient
from federation.identity import Signers
from federation.inbox import SignatureRejected, SignedRequests
from federation.store.actors import RemoteActorStore
from federation.store.policies import DomainPolicies
from federation.store.rooms import RemoteRoomRow, RemoteRoomStore
from node.accounts import handle
from node.clock import Clock
from node.replays import clean_chapters, clean_spans
from node.rooms.model import RoomRuleError
from node.store.follows import FollowStore
from node.store.users import User, UserStore
from node.web.byteranges import ByteRange, Unsatisfiable, parse_range
from node.web.http import current_user

log = logging.getLogger(__name__)

NO_REMOTE_REPLAY = "no such replay"
MAX_PEAKS = 10_000


class RemoteReplays:
    def __init__(
        self,
        rooms: RemoteRoomStore,
        users: UserStore,
        follows: FollowStore,
        client: SafeClient,
        signers: Signers,
        clock: Clock,
        *,
        hallway_days: float,
        hallway_cards: int,
        proxy_bytes: int,
    ) -> None:
        self.rooms = rooms
        self.users = users
        self.follows = follows
        self.client = client
        self.signers = signers
        self.clock = clock
        self.hallway_days = hallway_days
        self.hallway_cards = hallway_cards
        self.proxy_bytes = proxy_bytes

    def _audio(self, row: RemoteRoomRow) -> Audio | None:
        try:
            found = audio_attachments(row.document.get("attachment"))
        except ActivityError:
            return None
        for audio in found:
            if audio.media_type.startswith("audio/") and same_host(audio.url, row.uri):
                return audio
        return None

    def _may_see(self, row: RemoteRoomRow, host: User | None, viewer: User) -> bool:
        """The viewer follows the host; for a social room the host also follows the viewer
        (the origin checks that again on the signed GET: docs/federation.md §5.3)."""
        if host is None or host.limited or host.suspended:
            return False
        mode = row.document.get("joinMode")
        if mode not in ("open", "social") or self.follows.state(viewer.id, host.id) != "accepted":
            return False
        return mode == "open" or self.follows.state(host.id, viewer.id) == "accepted"

    def cards(self, viewer: User) -> list[dict[str, Any]]:
        following = self.follows.following_ids(viewer.id)
        since = self.clock.now() - self.hallway_days * 86400
        rows = self.rooms.ended_rooms_of(following, since, self.hallway_cards)
        hosts = self.users.many(sorted({r.host_id for r in rows}))
        cards = []
        for row in rows:
            host = hosts.get(row.host_id)
            audio = self._audio(row)
            if audio is None or not self._may_see(row, host, viewer):
                continue
            assert host is not None
            page = f"/remote-replay?url={quote(row.uri, safe='')}"
            cards.append(
                {
                    "id": row.uri,
                    "url": row.document.get("url") or row.uri,
                    "title": row.document.get("name", ""),
                    "status": "ended",
                    "host": handle(host),
                    "remote": True,
                    "node": host.domain,
                    "replay": {
                        "url": page,
                        "audio": _audio_path(row.uri),
                        "duration": audio.duration,
                    },
                }
            )
        return cards

    def find(self, viewer: User, uri: object) -> tuple[RemoteRoomRow, Audio]:
        if not isinstance(uri, str) or len(uri) > 2000:
            raise RoomRuleError("invalid", "url must be the room's URL")
        row = self.rooms.room(uri)
        audio = None if row is None else self._audio(row)
        if (
            row is None
            or audio is None
            or not self._may_see(row, self.users.get(row.host_id), viewer)
        ):
            raise RoomRuleError("not_found", NO_REMOTE_REPLAY)
        return row, audio

    async def document(self, viewer: User, uri: object) -> dict[str, Any]:
        """The origin's replay data (timeline, chapters, peaks), audio through us."""
        row, audio = self.find(viewer, uri)
        parts = urlsplit(row.uri)
        api = f"{parts.scheme}://{parts.netloc}/api{parts.path}/replay"
        try:
            origin = await self.client.get_json(
                api, self.signers.user(viewer), accept="application/json"
            )
        except FetchError as exc:
            raise _refusal(exc) from None
        peaks = origin.get("peaks")
        chat = origin.get("chat")
        host = self.users.get(row.host_id)
        data: dict[str, Any] = {
            "room": row.uri,
            "title": row.document.get("name", ""),
            "host": handle(host) if host else None,
            "url": f"/remote-replay?url={quote(row.uri, safe='')}",
            "audio": _audio_path(row.uri),
            "download": None,
            "duration": audio.duration or origin.get("duration"),
            "speakers": clean_spans(origin.get("speakers")),
            "chapters": clean_chapters(origin.get("chapters")),
            "peaks": None
            if not isinstance(peaks, list)  # the origin is still decoding it
            else [
                float(v)
                for v in peaks[:MAX_PEAKS]
                if isinstance(v, int | float) and not isinstance(v, bool)
            ],
            "can_edit": False,
            "remote": True,
        }
        if isinstance(chat, list):
            data["chat"] = [
                {"user": str(m.get("user", ""))[:200], "text": str(m.get("text", ""))[:2000],
                 "at": m.get("at")}
                for m in chat[:500]
                if isinstance(m, dict) and isinstance(m.get("at"), int | float)
            ]  # fmt: skip
        return data

    async def audio(self, viewer: User, uri: object, range_header: str | None) -> web.Response:
        row, audio = self.find(viewer, uri)
        wanted = _clamp(range_header, self.proxy_bytes)
        try:
            answer = await self.client.get_range(
                audio.url, self.signers.user(viewer), wanted, self.proxy_bytes
            )
        except FetchError as exc:
            log.info("replay proxy [%s]: %s", row.uri, exc)
            raise _refusal(exc) from None
        headers = {
            **answer.headers,
            "Accept-Ranges": "bytes",
            "Cache-Control": "private, no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        if answer.status == 416:
            return web.json_response(
                {"error": "range not satisfiable"}, status=416, headers=headers
            )
        return web.Response(
            status=answer.status, body=answer.body, headers=headers, content_type="audio/ogg"
        )


def _refusal(exc: FetchError) -> RoomRuleError:
    """The origin's own refusal (deleted, or not for this user) is ours; the rest is 502."""
    if exc.status in (401, 403, 404, 410):
        return RoomRuleError("not_found", NO_REMOTE_REPLAY)
    return RoomRuleError("unreachable", "the replay's node did not answer")


def _audio_path(uri: str) -> str:
    return f"/api/remote-replay/audio?url={quote(uri, safe='')}"


def _clamp(header: str | None, cap: int) -> str:
    """The range to ask the origin for: the client's, at most CAP bytes long. Without
    a size, a suffix range is passed on as asked (the origin caps nothing; we do)."""
    huge = 1 << 62
    try:
        wanted = parse_range(header, huge)
    except Unsatisfiable:
        wanted = None
    if header and header.strip().startswith("bytes=-") and wanted is not None:
        length = min(wanted.length, cap)
        return f"bytes=-{length}"
    wanted = wanted or ByteRange(0, huge - 1)
    return f"bytes={wanted.start}-{wanted.start + min(wanted.length, cap) - 1}"


class ReplayViewers:
    """The origin's side: the remote user who signed a GET of a replay (their node asks
    for them), so that a social room's rule can be applied to them. An unsigned request,
    a bad signature, a refused domain or an actor this node never stored is anonymous."""

    def __init__(
        self,
        signed: SignedRequests,
        actors: RemoteActorStore,
        users: UserStore,
        policies: DomainPolicies,
    ) -> None:
        self.signed = signed
        self.actors = actors
        self.users = users
        self.policies = policies

    async def viewer(self, request: web.Request) -> User | None:
        if "Signature" not in request.headers and "Signature-Input" not in request.headers:
            return None
        signed = self.signed.request("GET", request.raw_path, request.headers.items(), b"")
        try:
            actor = await self.signed.actor(signed, None)
        except SignatureRejected as exc:
            log.info("replay: signed GET refused: %s", exc)
            return None
        if self.policies.refused(host_of(actor.id)):
            return None
        row = self.actors.actor_by_uri(actor.id)
        return None if row is None else self.users.get(row.user_id)


routes = web.RouteTableDef()
REMOTE_REPLAYS = web.AppKey("remote_replay_proxy", RemoteReplays)


@routes.get("/api/remote-replay")
async def remote_replay(request: web.Request) -> web.Response:
    replays = request.app[REMOTE_REPLAYS]
    data = await replays.document(current_user(request), request.query.get("url"))
    return web.json_response(data)


@routes.get("/api/remote-replay/audio")
async def remote_replay_audio(request: web.Request) -> web.Response:
    replays = request.app[REMOTE_REPLAYS]
    return await replays.audio(
        current_user(request), request.query.get("url"), request.headers.get("Range")
    )
