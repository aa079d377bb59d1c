"""media/recorder.py with an injected clock (gaps → silence, resume, quota) and the speaker
timeline of node/recording.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from media.ogg import EOS, SILENT_FRAME, parse_pages
from media.recorder import Recorder, finish_file
from node.recording import SpeakerTimeline

pytestmark = pytest.mark.timeout(30)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def packets(path: Path) -> list[bytes]:
    return [p for page in list(parse_pages(path.read_bytes()))[2:] for p in page.packets]


def test_gap_becomes_silence_and_granules_follow_wall_time(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "r.ogg"
    rec = Recorder(path, 312, clock=clock, flush_seconds=60)
    for _ in range(10):
        rec.push(b"\xfc\x01\x02")
        clock.now += 0.02
    clock.now += 1.0  # the mixer stopped for a second
    rec.push(b"\xfc\x03\x04")
    clock.now += 0.02
    rec.stop(final=True)
    got = packets(path)
    assert got[:10] == [b"\xfc\x01\x02"] * 10
    assert got[10:60] == [SILENT_FRAME] * 50
    assert got[60] == b"\xfc\x03\x04"
    pages = list(parse_pages(path.read_bytes()))
    assert pages[-1].flags & EOS and pages[-1].granule == 312 + len(got) * 960


def test_resume_after_off_fills_the_time_it_was_off(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "r.ogg"
    started = clock.now
    rec = Recorder(path, 312, clock=clock, started=started, flush_seconds=60)
    for _ in range(5):
        rec.push(b"\xfc\x01")
        clock.now += 0.02
    rec.stop(final=False)
    assert not list(parse_pages(path.read_bytes()))[-1].flags & EOS
    clock.now += 2.0
    again = Recorder(path, 312, clock=clock, started=started, resume=True, flush_seconds=60)
    again.push(b"\xfc\x02")
    again.stop(final=True)
    got = packets(path)
    assert got[-1] == b"\xfc\x02" and abs(len(got) * 0.02 - 2.1) <= 0.04
    assert len({p.serial for p in parse_pages(path.read_bytes())}) == 1


def test_quota_stops_with_a_playable_end(tmp_path: Path) -> None:
    reasons: list[str] = []
    clock = Clock()
    path = tmp_path / "q.ogg"
    rec = Recorder(
        path, 312, clock=clock, max_bytes=400, on_stopped=reasons.append, flush_seconds=0.01
    )
    for _ in range(200):
        rec.push(b"\xfc" + b"x" * 20)
        clock.now += 0.02
    rec.stop()
    assert reasons == ["quota"]
    pages = list(parse_pages(path.read_bytes()))
    assert pages[-1].flags & EOS and path.stat().st_size <= 400 + 64


def test_finish_file_cuts_a_torn_page(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "t.ogg"
    rec = Recorder(path, 312, clock=clock, flush_seconds=60)
    for _ in range(20):
        rec.push(b"\xfc\x01")
        clock.now += 0.02
    rec.stop(final=False)
    with open(path, "ab") as handle:
        handle.write(b"OggS\0\0garbage")  # a crash in the middle of a page
    size, duration = finish_file(path, 312)
    assert size == path.stat().st_size and abs(duration - 0.4) < 1e-9
    assert list(parse_pages(path.read_bytes()))[-1].flags & EOS


def test_speaker_timeline_merges_short_pauses() -> None:
    timeline = SpeakerTimeline(merge_gap=1.0)
    timeline.levels(0.0, {"a@h"})
    timeline.levels(2.0, set())
    timeline.levels(2.5, {"a@h", "b@h"})  # a pauses 0.5 s: one span
    timeline.levels(4.0, {"b@h"})
    timeline.levels(6.0, {"a@h"})  # a again after 2 s: a new span
    assert timeline.finish(7.0) == [
        {"user": "a@h", "start": 0.0, "end": 4.0},
        {"user": "b@h", "start": 2.5, "end": 6.0},
        {"user": "a@h", "start": 6.0, "end": 7.0},
    ]
