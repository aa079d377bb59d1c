"""Replays of recorded rooms: who may play one, its page data, delete and trim.

The recorder (issue #14's other half) writes ``<replay_dir>/<room_id>.ogg`` and its sidecar
``<room_id>.json`` and keeps the ``replays`` row; this service serves them. Who may play a
replay is the room's own rule, applied after the room ended: open rooms to anyone, social
rooms to people the host or a moderator follows, closed rooms to the invited; never to
people the host blocked or the room banned. The host may delete or trim (by Ogg page, no
re-encode: media/ogg.py); every change tells the observers (federation sends an ``Update``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from media import ogg
from media.peaks import peaks as decode_peaks
from node.accounts import handle
from node.clock import Clock
from node.replay_library import ReplayLibrary
from node.rooms.model import JoinMode, Room, RoomRuleError, RoomStatus
from node.store.blocks import BlockStore
from node.store.follows import FollowStore
from node.store.replays import Replay, ReplayStore
from node.store.users import User, UserStore

log = logging.getLogger(__name__)

ROOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
NO_REPLAY = "this room has no replay"
NOT_HOST = "only the room's host may change its replay"


class ReplayObserver(Protocol):
    def replay_changed(self, room: Room) -> None:
        """A replay became ready, was trimmed or was deleted."""


@dataclass(frozen=True)
class ReplayConfig:
    replay_dir: Path
    base_url: str
    peaks_buckets: int = 1000
    hallway_days: float = 7.0
    hallway_cards: int = 20


@dataclass(frozen=True)
class Playable:
    room: Room
    replay: Replay
    audio: Path


class ReplayService:
    def __init__(
        self,
        store: ReplayStore,
        rooms: RoomLookup,
        users: UserStore,
        follows: FollowStore,
        blocks: BlockStore,
        config: ReplayConfig,
        clock: Clock,
        observers: Sequence[ReplayObserver] = (),
    ) -> None:
        self.store = store
        self.rooms = rooms
        self.users = users
        self.follows = follows
        self.blocks = blocks
        self.config = config
        self.clock = clock
        self.observers = list(observers)
        self.library = ReplayLibrary(store, config.replay_dir)
        self._locks: dict[str, asyncio.Lock] = {}
        self._peak_tasks: dict[str, asyncio.Task[None]] = {}

    # ---- files ---------------------------------------------------------------------
    def path(self, room_id: str, suffix: str) -> Path:
        if not ROOM_ID.fullmatch(room_id):
            raise RoomRuleError("not_found", NO_REPLAY)
        return self.config.replay_dir / f"{room_id}{suffix}"

    def sidecar(self, room_id: str) -> dict[str, Any]:
        try:
            data = json.loads(self.path(room_id, ".json").read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # ---- who may play --------------------------------------------------------------
    def may_play(self, room: Room, viewer: User | None) -> bool:
        if viewer is not None and viewer.id == room.host_id:
            return True
        if room.join_mode is not JoinMode.OPEN and viewer is None:
            return False
        if viewer is not None:
            if viewer.id in room.bans or self.blocks.blocked_among({room.host_id}, {viewer.id}):
                return False
            if viewer.domain is not None and viewer.suspended:
                return False
        if room.join_mode is JoinMode.SOCIAL:
            assert viewer is not None
            return self.follows.followed_by_any(viewer.id, room.moderator_ids())
        if room.join_mode is JoinMode.CLOSED:
            assert viewer is not None
            return viewer.id in room.invites
        return True

    def playable(self, room_id: str, viewer: User | None) -> Playable:
        """The replay VIEWER may play; one refusal for every reason (nothing leaks)."""
        audio = self.path(room_id, ".ogg")
        room = self.rooms.get(room_id)
        replay = self.store.get(room_id)
        if (
            room is None
            or replay is None
            or not replay.ready
            or room.status is not RoomStatus.ENDED
            or not self.may_play(room, viewer)
        ):
            raise RoomRuleError("not_found", NO_REPLAY)
        return Playable(room, replay, audio)

    # ---- what clients see ------------------------------------------------------------
    def urls(self, room_id: str, duration: float) -> dict[str, Any]:
        room_url = f"{self.config.base_url}/rooms/{room_id}"
        return {
            "url": f"{room_url}/replay",
            "audio": f"{room_url}/replay.ogg",
            "duration": round(duration, 3),
        }

    def room_fields(self, room: Room, viewer: User | None) -> dict[str, Any] | None:
        """The room view's ``replay`` entry: ended rooms with a ready replay VIEWER may play."""
        if room.status is not RoomStatus.ENDED or not self.may_play(room, viewer):
            return None
        replay = self.store.get(room.id)
        if replay is None or not replay.ready:
            return None
        return self.urls(room.id, replay.duration)

    async def document(self, room_id: str, viewer: User | None) -> dict[str, Any]:
        found = self.playable(room_id, viewer)
        room, replay = found.room, found.replay
        side = self.sidecar(room_id)
        host = self.users.get(room.host_id)
        data: dict[str, Any] = {
            "room": room.id,
            "title": room.title,
            "host": handle(host) if host else None,
            "started_at": room.started_at,
            "ended_at": room.ended_at,
            **self.urls(room.id, replay.duration),
            "download": f"{self.config.base_url}/rooms/{room.id}/replay.ogg?download=1",
            "speakers": clean_spans(side.get("speakers")),
            "chapters": clean_chapters(side.get("chapters")),
            "trim": {"start": replay.trim_start, "end": replay.trim_end},
            "peaks": self.cached_peaks(room.id),
            "can_edit": viewer is not None and viewer.id == room.host_id,
        }
        chat = side.get("chat")
        if isinstance(chat, list) and chat:
            data["chat"] = [m for m in chat if isinstance(m, dict)]
        if data["peaks"] is None:
            self.compute_peaks(room.id)
        return data

    def cached_peaks(self, room_id: str) -> list[float] | None:
        try:
            cached = json.loads(self.path(room_id, ".peaks.json").read_text("utf-8"))
            return [float(v) for v in cached] if isinstance(cached, list) else None
        except (OSError, ValueError, TypeError):
            return None

    def compute_peaks(self, room_id: str) -> None:
        """Decode the replay once in the background (an hour takes seconds) and keep the
        waveform in ``<room_id>.peaks.json``; until then the page gets ``peaks: null``."""
        if room_id in self._peak_tasks:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (a CLI command): the first page view starts it
        task = loop.create_task(self._decode_peaks(room_id), name=f"replay-peaks-{room_id}")
        self._peak_tasks[room_id] = task
        task.add_done_callback(lambda _: self._peak_tasks.pop(room_id, None))

    async def _decode_peaks(self, room_id: str) -> None:
        async with self._lock(room_id):  # after a running trim; a delete makes it moot
            replay = self.store.get(room_id)
            if replay is None or not replay.ready or self.cached_peaks(room_id) is not None:
                return
            audio, buckets = self.path(room_id, ".ogg"), self.config.peaks_buckets
            try:
                values = await asyncio.to_thread(decode_peaks, audio, buckets, replay.duration)
            except (OSError, ValueError) as exc:  # av.error.FFmpegError subclasses OSError
                log.warning("replay [%s]: cannot decode peaks: %s", room_id, exc)
                values = []  # drawn as no waveform; not retried on every view
            _write_atomic(self.path(room_id, ".peaks.json"), json.dumps(values).encode())

    async def close(self) -> None:
        for task in list(self._peak_tasks.values()):
            task.cancel()
        await asyncio.gather(*self._peak_tasks.values(), return_exceptions=True)

    def cards(self, viewer: User) -> list[dict[str, Any]]:
        """Hallway cards of recent replays by the viewer and the people they follow."""
        hosts = self.follows.following_ids(viewer.id) | {viewer.id}
        since = self.clock.now() - self.config.hallway_days * 86400
        cards = []
        users = None
        for replay in self.store.ready_of(hosts, since, self.config.hallway_cards):
            room = self.rooms.get(replay.room_id)
            if room is None or not self.may_play(room, viewer):
                continue
            users = users or self.users.many(list(hosts))
            host = users.get(replay.host_id)
            cards.append(
                {
                    "id": room.id,
                    "url": f"{self.config.base_url}/rooms/{room.id}",
                    "title": room.title,
                    "status": "ended",
                    "host": handle(host) if host else None,
                    "ended_at": room.ended_at,
                    "replay": self.urls(room.id, replay.duration),
                }
            )
        return cards

    # ---- the host's changes ---------------------------------------------------------
    def _own(self, room_id: str, actor: User) -> Playable:
        found = self.playable(room_id, actor)
        if found.room.host_id != actor.id:
            raise RoomRuleError("forbidden", NOT_HOST)
        return found

    async def delete(self, room_id: str, actor: User) -> None:
        async with self._lock(room_id):
            found = self._own(room_id, actor)
            try:
                self.library.delete(room_id)
            except RoomRuleError:
                raise RoomRuleError("not_found", NO_REPLAY) from None
        log.info("replay [%s]: deleted by %s", room_id, actor.username)
        self._changed(found.room)

    async def remove(self, room_id: str, reason: str) -> bool:
        """Delete a replay whoever hosted it (operator commands, retention): row, files,
        and an ``Update`` without the attachment. False if there was none to delete."""
        async with self._lock(room_id):
            if not ROOM_ID.fullmatch(room_id):
                return False
            try:
                self.library.delete(room_id)
            except RoomRuleError:
                return False
        log.info("replay [%s]: deleted (%s)", room_id, reason)
        room = self.rooms.get(room_id)
        if room is not None:
            self._changed(room)
        return True

    def remove_files(self, room_id: str) -> None:
        self.library.remove_files(room_id)

    async def sweep(self, retention_days: float) -> int:
        """The retention sweep: replays that ended more than RETENTION_DAYS ago go through
        ``remove`` (files, row, ``Update``); 0 keeps them all. Returns how many."""
        if retention_days <= 0:
            return 0
        count = 0
        for replay in self.store.expired(self.clock.now() - retention_days * 86400):
            count += await self.remove(replay.room_id, "retention")
        return count

    async def trim(self, room_id: str, actor: User, start: object, end: object) -> None:
        """Keep [START, END) seconds of the current file, rounded out to Ogg pages."""
        begin, stop = _seconds(start, "start"), _seconds(end, "end")
        async with self._lock(room_id):
            found = self._own(room_id, actor)
            if not begin < stop or begin >= found.replay.duration:
                raise RoomRuleError(
                    "invalid", "trim needs 0 ≤ start < end and start before the replay's end"
                )
            try:
                kept_from, kept_to, size, duration = await asyncio.to_thread(
                    _trim_file, found.audio, begin, stop
                )
            except (OSError, ogg.OggError) as exc:
                raise RoomRuleError("conflict", f"cannot trim this replay: {exc}") from None
            self._shift_sidecar(room_id, kept_from, kept_to, duration)
            self.path(room_id, ".peaks.json").unlink(missing_ok=True)
            old = found.replay
            self.store.set_trim(
                room_id,
                old.trim_start + kept_from,
                old.trim_start + kept_to,
                size=size,
                duration=duration,
            )
        log.info("replay [%s]: trimmed to %.2f-%.2f s", room_id, kept_from, kept_to)
        self.compute_peaks(room_id)
        self._changed(found.room)

    def _shift_sidecar(self, room_id: str, start: float, end: float, duration: float) -> None:
        side = self.sidecar(room_id)

        def inside(t: object) -> bool:
            return isinstance(t, int | float) and start <= t < end

        side["duration"] = duration
        side["speakers"] = [
            {**s, "start": max(0.0, s["start"] - start), "end": min(end, s["end"]) - start}
            for s in clean_spans(side.get("speakers"))
            if s["end"] > start and s["start"] < end
        ]
        side["chapters"] = [
            {**c, "at": c["at"] - start}
            for c in clean_chapters(side.get("chapters"))
            if inside(c["at"])
        ]
        chat = side.get("chat")
        if isinstance(chat, list):
            side["chat"] = [
                {**m, "at": m["at"] - start}
                for m in chat
                if isinstance(m, dict) and inside(m.get("at"))
            ]
        _write_atomic(self.path(room_id, ".json"), json.dumps(side).encode())

    def finished(self, room_id: str) -> None:
        """The recorder calls this when a replay became ready (federation announces it)."""
        room = self.rooms.get(room_id)
        if room is not None:
            self.compute_peaks(room_id)
            self._changed(room)

    def _changed(self, room: Room) -> None:
        for observer in self.observers:
            observer.replay_changed(room)

    def _lock(self, room_id: str) -> asyncio.Lock:
        lock = self._locks.get(room_id)
        if lock is None:
            if len(self._locks) > 1000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[room_id] = asyncio.Lock()
        return lock


class RoomLookup(Protocol):
    def get(self, room_id: str) -> Room | None:
        """Any room of this node, ended ones included (node/store/rooms.py)."""


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RoomRuleError("invalid", f"{name} must be a number of seconds")
    if value < 0 or value > 366 * 86400:
        raise RoomRuleError("invalid", f"{name} must be between 0 and the replay's length")
    return float(value)


def _trim_file(path: Path, start: float, end: float) -> tuple[float, float, int, float]:
    data = path.read_bytes()
    trimmed, kept_from, kept_to = ogg.trim(data, start, end)
    _write_atomic(path, trimmed)
    return kept_from, kept_to, len(trimmed), ogg.read_opus(trimmed).duration


def _write_atomic(path: Path, data: bytes) -> None:
    """Write a sibling file, flush it to disk, then rename over PATH (readers see the old
    file or the new one, never half of one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def clean_spans(raw: object) -> list[dict[str, Any]]:
    out = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("user"), str):
            continue
        start, end = _number(item.get("start")), _number(item.get("end"))
        if start is not None and end is not None and end > start:
            out.append({"user": item["user"], "start": start, "end": end})
    return out


def clean_chapters(raw: object) -> list[dict[str, Any]]:
    out = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("title"), str):
            continue
        at = _number(item.get("at"))
        if at is not None and at >= 0:
            out.append({"at": at, "title": item["title"][:200]})
    return out
