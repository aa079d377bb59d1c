"""Room recording (issue #14): starts and stops each room's recorder, keeps the speaker
timeline and chapter marks, writes the sidecar JSON at room end, enforces quotas.

The audio path is media/recorder.py (fed the encode-once listener mix on the media thread,
written on its own thread). This service lives on the event loop and sees the room through
RoomService events:

- a live room with ``record`` on starts recording (at creation, at start, when the host
  turns it on, after a restart); turning it off stops appending — the file stays open (no
  EOS) and turning it on again resumes the same file, the time it was off becoming silence;
- ``room_ended`` finishes the file (EOS), writes ``<room_id>.json`` atomically and marks the
  store row ``ready`` — before ChatService drops the room's chat (observers run first);
- a recorder that stops by itself (quota, disk full) turns the room's ``record`` off with
  an event naming the reason; the room goes on.

After a restart the store row says ``recording``: if the room is live again with ``record``
on the recorder resumes the same file (the downtime becomes silence); otherwise the file is
finished where it ends and the row marked ``ready``. Speakers and chapters are kept in
memory: the sidecar of a room recorded across a restart lists only those after it.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from media.recorder import QuotaReached, Recorder, finish_file
from node.accounts import handle
from node.replay_library import ReplayLibrary
from node.rooms.model import Room, RoomEvent, RoomRuleError, RoomStatus
from node.rooms.service import RoomService
from node.settings import Settings
from node.store.replays import Replay, ReplayStore
from node.store.users import User, UserStore
from node.text import check_text

log = logging.getLogger(__name__)

MERGE_GAP = 1.0  # seconds: two turns of one speaker closer than this are one span
MARK_TITLE_CHARS = 200
MAX_MARKS = 500
QUOTA_FLOOR = 65_536  # bytes: less quota left than this cannot start a recording
PRE_SKIP = 312  # libopus' lookahead at 48 kHz; the live encoder's value is used when known


class SpeakerTimeline:
    """Spans per speaker from the mixer's level reports (pure; times in file seconds)."""

    def __init__(self, merge_gap: float = MERGE_GAP) -> None:
        self.merge_gap = merge_gap
        self._open: dict[str, float] = {}
        self.spans: list[dict[str, Any]] = []

    def levels(self, at: float, speaking: set[str]) -> None:
        for user in list(self._open):
            if user not in speaking:
                self._close(user, at)
        for user in speaking:
            self._open.setdefault(user, at)

    def _close(self, user: str, at: float) -> None:
        start = self._open.pop(user)
        for span in reversed(self.spans):
            if span["user"] == user:
                if start - span["end"] <= self.merge_gap:
                    span["end"] = round(at, 2)
                    return
                break
        self.spans.append({"user": user, "start": round(start, 2), "end": round(at, 2)})

    def finish(self, at: float) -> list[dict[str, Any]]:
        for user in list(self._open):
            self._close(user, at)
        return sorted(self.spans, key=lambda s: (s["start"], s["user"]))


@dataclass
class Recording:
    room_id: str
    recorder: Recorder
    started: float  # wall time the file's clock starts at
    timeline: SpeakerTimeline = field(default_factory=SpeakerTimeline)
    chapters: list[dict[str, Any]] = field(default_factory=list)


class RecordedMedia(Protocol):
    """What a recording needs from a room's media: the local mixer (media/engine.py
    ``RoomMedia``) or, with media workers, a trunk from the mixer worker
    (media/trunk_tap.py ``TrunkTap``)."""

    @property
    def pre_skip(self) -> int: ...

    def set_recorder(self, recorder: Recorder | None) -> None: ...


class RecordingService:
    """A RoomObserver; one per node (cli/app.py builds it)."""

    def __init__(
        self,
        settings: Settings,
        rooms: RoomService,
        store: ReplayStore,
        users: UserStore,
        media: Callable[[str], RecordedMedia | None],
        existing_media: Callable[[str], RecordedMedia | None],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.rooms = rooms
        self.store = store
        self.users = users
        self._media = media  # get or create a room's media (starting a recording)
        self._existing = existing_media  # only if it exists (stopping)
        self._wall = wall
        self.dir = settings.replay_path
        self.library = ReplayLibrary(store, self.dir)
        self._host = urlsplit(settings.base_url).netloc
        self._active: dict[str, Recording] = {}
        self._marks: dict[str, list[dict[str, Any]]] = {}  # kept across an off/on toggle
        self._timelines: dict[str, SpeakerTimeline] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # called with the room id when a replay becomes ready (cli/app.py adds
        # ReplayService.finished: the federation Update, the peaks decode)
        self.ready_listeners: list[Callable[[str], None]] = []
        rooms.record_check = self.check
        rooms.level_listeners.append(self.levels)

    # ---- policy --------------------------------------------------------------------------

    def check(self, host_id: int) -> None:
        """May HOST start a recording now? RoomRuleError (403/409) when not."""
        if not self.settings.recording_allowed:
            raise RoomRuleError("forbidden", "recording is turned off on this node")
        quota = self.settings.replay_quota_bytes_per_user
        used = self.store.used_bytes(host_id)
        # a recording stopped by the quota ends within one flush of it: what is left below
        # QUOTA_FLOOR (or half a tiny quota) counts as reached
        if quota and quota - used < min(QUOTA_FLOOR, quota // 2):
            raise RoomRuleError(
                "conflict",
                f"replay quota reached: {used} of {quota} bytes used; delete a replay first",
            )

    def path(self, room_id: str) -> Path:
        return self.library.audio(room_id)

    def sidecar(self, room_id: str) -> Path:
        return self.library.sidecar(room_id)

    # ---- the room's life -----------------------------------------------------------------

    def load(self) -> None:
        """After a (re)start: resume or finish what a crash left ``recording``."""
        self._loop = asyncio.get_running_loop()
        for replay in self.store.recording():
            room = self.rooms.live(replay.room_id)
            if room is not None and room.record:
                self._start(room)
            else:
                self._finish_stale(replay)

    def room_event(self, room: Room, event: RoomEvent) -> None:
        if event.kind == "room_ended":
            self._end(room)
        elif event.kind in ("room_created", "room_started", "recording"):
            if room.status is RoomStatus.LIVE and room.record:
                self._start(room)
            elif not room.record:
                self._pause(room.id, "stopped")

    def _start(self, room: Room) -> None:
        if room.id in self._active:
            return
        media = self._media(room.id)
        if media is None:
            return  # no media engine on this node
        try:  # the quota may have filled up since the host asked (a scheduled room)
            self.check(room.host_id)
        except RoomRuleError as exc:
            log.info("recording: %s not started: %s", room.id, exc.message)
            reason = "quota" if exc.code == "conflict" else "forbidden"
            self.rooms.set_recording(room.id, False, reason)
            return
        existing = self.store.get(room.id)
        resume = (
            existing is not None
            and existing.status in ("recording", "ready")
            and self.path(room.id).exists()
        )
        started = existing.started if resume and existing is not None else self._wall()
        quota = self.settings.replay_quota_bytes_per_user
        others = self.store.used_bytes(room.host_id) - (existing.bytes if existing else 0)
        limit = max(1, quota - others) if quota else 0
        try:
            recorder = Recorder(
                self.path(room.id),
                media.pre_skip,
                flush_seconds=self.settings.replay_flush_seconds,
                max_bytes=limit,
                on_stopped=lambda reason: self._stopped_from_thread(room.id, reason),
                clock=self._wall,
                started=started,
                resume=resume,
            )
        except QuotaReached:
            self.rooms.set_recording(room.id, False, "quota")
            return
        except (OSError, ValueError) as exc:
            log.error("recording: %s cannot start: %s", room.id, exc)
            full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
            self.rooms.set_recording(room.id, False, "disk_full" if full else "error")
            return
        self.store.begin(room.id, room.host_id, room.title, started)
        rec = Recording(room.id, recorder, started)
        rec.timeline = self._timelines.setdefault(room.id, SpeakerTimeline())
        rec.chapters = self._marks.setdefault(room.id, [])
        self._active[room.id] = rec
        media.set_recorder(recorder)
        log.info("recording: %s started (%s)", room.id, "resumed" if resume else "new file")

    def _pause(self, room_id: str, reason: str) -> None:
        rec = self._active.pop(room_id, None)
        if rec is None:
            return
        media = self._existing(room_id)
        if media is not None:
            media.set_recorder(None)
        rec.recorder.stop(reason, final=False)
        self.store.progress(room_id, rec.recorder.bytes, rec.recorder.duration)

    def _stopped_from_thread(self, room_id: str, reason: str) -> None:
        loop = self._loop
        if reason in ("stopped", "finished") or loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._stopped, room_id, reason)

    def _stopped(self, room_id: str, reason: str) -> None:
        """The recorder gave up (quota, disk_full, error): tell the room, go on without it."""
        rec = self._active.pop(room_id, None)
        if rec is None:
            return
        media = self._existing(room_id)
        if media is not None:
            media.set_recorder(None)
        self.store.progress(room_id, rec.recorder.bytes, rec.recorder.duration)
        log.warning("recording: %s stopped: %s", room_id, reason)
        self.rooms.set_recording(room_id, False, reason)

    def _end(self, room: Room) -> None:
        rec = self._active.pop(room.id, None)
        replay = self.store.get(room.id)
        if rec is None and (replay is None or replay.status != "recording"):
            return
        ended = self._wall()
        if rec is not None:
            media = self._existing(room.id)
            if media is not None:
                media.set_recorder(None)
            rec.recorder.stop("finished", final=True)
            size, duration = rec.recorder.bytes, rec.recorder.duration
        else:
            size, duration = finish_file(self.path(room.id), PRE_SKIP)
        started = replay.started if replay is not None else ended - duration
        chat = self._chat(room, started)
        timeline = self._timelines.pop(room.id, SpeakerTimeline())
        chapters = self._marks.pop(room.id, [])
        try:
            self._write_sidecar(room.id, duration, timeline.finish(duration), chapters, chat)
            self.store.finish(room.id, size, duration, ended)
        except OSError as exc:
            log.error("recording: %s: sidecar not written: %s", room.id, exc)
            self.store.finish(room.id, size, duration, ended, status="failed")
            return
        self._ready(room.id)

    def _ready(self, room_id: str) -> None:
        for listener in self.ready_listeners:
            try:
                listener(room_id)
            except Exception:  # a listener's bug must not lose the replay
                log.exception("recording: %s: ready listener failed", room_id)

    def _finish_stale(self, replay: Replay) -> None:
        path = self.path(replay.room_id)
        try:
            size, duration = finish_file(path, PRE_SKIP) if path.exists() else (0, 0.0)
            self._write_sidecar(replay.room_id, duration, [], [], [])
            status = "ready" if size else "failed"
        except OSError as exc:
            log.error("recording: %s cannot be finished: %s", replay.room_id, exc)
            size, duration, status = 0, 0.0, "failed"
        self.store.finish(replay.room_id, size, duration, self._wall(), status=status)
        log.info("recording: %s finished after a restart (%s)", replay.room_id, status)
        if status == "ready":
            self._ready(replay.room_id)

    def _chat(self, room: Room, started: float) -> list[dict[str, Any]]:
        """The room's chat as the room view shows it, ``at`` in seconds from the start."""
        messages = self.rooms.chat.transcript(room.id)
        out = []
        for message in messages:
            at = message.get("at")
            at = round(max(0.0, at - started), 2) if isinstance(at, (int, float)) else 0.0
            out.append({**message, "at": at})
        return out

    def _write_sidecar(
        self,
        room_id: str,
        duration: float,
        speakers: list[dict[str, Any]],
        chapters: list[dict[str, Any]],
        chat: list[dict[str, Any]],
    ) -> None:
        data = {
            "duration": round(duration, 3),
            "speakers": speakers,
            "chapters": sorted(chapters, key=lambda c: c["at"]),
            "chat": chat,
        }
        target = self.sidecar(room_id)
        tmp = target.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as handle_:
            json.dump(data, handle_, ensure_ascii=False)
            handle_.flush()
            os.fsync(handle_.fileno())
        os.replace(tmp, target)

    # ---- speakers and chapters -----------------------------------------------------------

    def levels(self, room_id: str, levels: dict[int, float]) -> None:
        rec = self._active.get(room_id)
        if rec is None:
            return
        users = self.users.many([u for u, v in levels.items() if v > 0])
        speaking = {self._full_handle(users[u]) for u in users}
        rec.timeline.levels(rec.recorder.elapsed(), speaking)

    def _full_handle(self, user: User) -> str:
        """``alice@host:port`` for everyone (the sidecar outlives this node's name)."""
        name = handle(user)
        return name if "@" in name else f"{name}@{self._host}"

    def mark(self, room_id: str, actor: User, raw_title: object) -> dict[str, Any]:
        """A chapter mark at the recording's current time (host and moderators)."""
        room = self.rooms.get(room_id)
        if actor.id not in room.moderator_ids():
            raise RoomRuleError("forbidden", "only the host and moderators can mark chapters")
        rec = self._active.get(room_id)
        if rec is None:
            raise RoomRuleError("conflict", "the room is not being recorded")
        title = check_text(raw_title, "title", MARK_TITLE_CHARS).strip()
        if not title:
            raise RoomRuleError("invalid", "title is required")
        if len(rec.chapters) >= MAX_MARKS:
            raise RoomRuleError("conflict", f"a recording holds at most {MAX_MARKS} chapters")
        chapter = {"at": round(rec.recorder.elapsed(), 2), "title": title}
        rec.chapters.append(chapter)
        return chapter

    # ---- operator ------------------------------------------------------------------------

    def sweep(self) -> None:
        """Bring the rows of running recordings up to date (quotas count them); the
        retention sweep is ``ReplayService.sweep`` (it also tells federation)."""
        for room_id, rec in self._active.items():
            self.store.progress(room_id, rec.recorder.bytes, rec.recorder.duration)

    def close(self) -> None:
        """The node shuts down: stop appending (no EOS: a restart resumes or finishes)."""
        for room_id in list(self._active):
            self._pause(room_id, "stopped")
