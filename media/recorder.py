"""Records a room's listener mix to an Ogg Opus file, off the media thread.

The mixer hands every tick's encoded ``main`` packet (the same bytes the listeners get: no
second encoder) to ``Recorder.push``, which only appends to a deque — no I/O on the media
thread. A writer thread wakes every ``flush_seconds``, turns the packets into Ogg pages
(media/ogg.py) and appends them to the file, so a ``kill -9`` leaves a playable file up to the
last page written.

The file's clock is the room's wall time since the recording started: each packet carries
its tick time, and when ticks are missing (the mixer stopped because nobody was connected,
the node paused) the writer inserts 20 ms silent frames so the granule positions stay
continuous. A stop (host, quota, disk full) finishes the stream with an EOS page.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from media.ogg import SILENT_FRAME, OggOpusStream, valid_length, valid_pages

logger = logging.getLogger(__name__)

TICK = 0.02
SLACK_TICKS = 3  # a late tick is not a gap; more than this many missing ticks are filled

# why a recording stopped: "stopped" (asked), "quota" (byte limit), "disk_full", "error"
OnStopped = Callable[[str], None]


class Recorder:
    def __init__(
        self,
        path: Path,
        pre_skip: int,
        *,
        flush_seconds: float = 0.5,
        max_bytes: int = 0,
        on_stopped: OnStopped | None = None,
        clock: Callable[[], float] = time.time,
        started: float | None = None,
        resume: bool = False,
    ) -> None:
        self.path = path
        self.flush_seconds = flush_seconds
        self.max_bytes = max_bytes  # 0 = no limit
        self._on_stopped = on_stopped
        self._clock = clock
        self._queue: deque[tuple[float, bytes]] = deque()
        self._wake = threading.Event()
        self._stop_reason: str | None = None
        self._final = True
        self._closed = threading.Event()
        self.bytes = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        head = b""
        if resume and path.exists():
            data = path.read_bytes()
            keep = valid_length(data)
            self._stream = OggOpusStream.resume(data[:keep], pre_skip)
            self._fd = os.open(path, os.O_WRONLY)
            os.ftruncate(self._fd, keep)
            os.lseek(self._fd, keep, os.SEEK_SET)
            self.bytes = keep
        else:
            self._stream = OggOpusStream(int.from_bytes(os.urandom(4), "big"), pre_skip)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            head = self._stream.headers()
        # the file's time zero: STARTED (a resumed file: the time between its end and now
        # becomes silence), else now minus what the file already holds
        self._start = started if started is not None else clock() - self._stream.duration
        self._thread = threading.Thread(target=self._run, name=f"recorder {path.name}", daemon=True)
        if head:
            try:
                self._write(head)
            except BaseException:
                os.close(self._fd)
                raise
        self._thread.start()

    # ---- the media thread ------------------------------------------------------------------

    def push(self, packet: bytes) -> None:
        """One tick's encoded mix (called on the media thread; never blocks, no I/O)."""
        if self._stop_reason is None:
            self._queue.append((self._clock(), packet))

    # ---- any thread ------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._stop_reason is None

    @property
    def duration(self) -> float:
        return self._stream.duration

    def elapsed(self) -> float:
        """Seconds of the file's clock now (what a chapter mark made now points at)."""
        return max(0.0, self._clock() - self._start)

    def stop(self, reason: str = "stopped", final: bool = True) -> None:
        """Write what is queued (and silence up to now) and end the thread; FINAL adds the
        EOS page, else the stream stays open for ``resume`` (turning recording back on)."""
        if self._stop_reason is None:
            self._stop_reason = reason
            self._final = final
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)

    # ---- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            stopping = self._stop_reason is not None
            try:
                self._drain(fill_to_now=stopping)
                if stopping and self._final:
                    self._write(self._stream.finish())
            except OSError as exc:
                reason = "disk_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "error"
                if reason == "error":
                    logger.error("recorder %s: %s", self.path, exc)
                self._fail(reason)
                return
            except QuotaReached:
                self._fail("quota")
                return
            if stopping:
                self._close()
                return

    def _drain(self, fill_to_now: bool) -> None:
        stream = self._stream
        out: list[bytes] = []
        while self._queue:
            at, packet = self._queue.popleft()
            self._fill(out, at)
            out.append(stream.add(packet))
        if fill_to_now:
            self._fill(out, self._clock())
        out.append(stream.pages())
        self._write(b"".join(out))

    def _fill(self, out: list[bytes], at: float) -> None:
        """Silent frames for the ticks missing before time AT (the file keeps wall time)."""
        stream = self._stream
        expected = round((at - self._start) / TICK)
        if expected - stream.packets > SLACK_TICKS:
            for _ in range(expected - stream.packets):
                out.append(stream.add(SILENT_FRAME))

    def _write(self, data: bytes) -> None:
        if not data:
            return
        if self.max_bytes and self.bytes + len(data) > self.max_bytes:
            raise QuotaReached
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            self.bytes += written
            view = view[written:]

    def _fail(self, reason: str) -> None:
        """Stop on an error: end the stream with what fits (an EOS page is ~30 bytes)."""
        self._stop_reason = reason
        self._queue.clear()
        try:
            if not self._stream.finished:
                last = self._stream.finish()
                os.write(self._fd, last)
                self.bytes += len(last)
        except OSError:
            pass  # the file still plays up to its last whole page
        self._close()

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._closed.set()
        if self._on_stopped is not None and self._stop_reason is not None:
            self._on_stopped(self._stop_reason)


class QuotaReached(Exception):
    """The next write would pass ``max_bytes`` (raised by the constructor for the headers)."""


def finish_file(path: Path, pre_skip: int) -> tuple[int, float]:
    """Close a file a crash left open: drop a torn page, add EOS. Returns (bytes, seconds)."""
    data = path.read_bytes()
    keep = valid_length(data)
    try:
        stream = OggOpusStream.resume(data[:keep], pre_skip)
    except ValueError:  # already finished (or not an Ogg stream at all)
        return keep, 0.0 if keep == 0 else _duration(data[:keep], pre_skip)
    tail = stream.finish()
    with open(path, "r+b") as handle:
        handle.truncate(keep)
        handle.seek(keep)
        handle.write(tail)
    return keep + len(tail), stream.duration


def _duration(data: bytes, pre_skip: int) -> float:
    last = 0
    for item in valid_pages(data):
        last = item.granule
    return max(0, last - pre_skip) / 48_000
