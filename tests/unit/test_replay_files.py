"""Ogg pages, trims by page and byte ranges: pure functions, exact values."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from federation.events import Audio, Event, format_duration, parse_duration
from media import ogg
from media.peaks import peaks
from node.settings import SettingsError, load_settings
from node.store.db import open_database
from node.store.replays import ReplayStore
from node.store.users import UserStore
from node.web.byteranges import ByteRange, Unsatisfiable, if_range_allows, parse_range
from tests.support.replays import two_tones


def pyav_opus(seconds: float) -> bytes:
    """An Ogg Opus file made by FFmpeg's muxer and libopus: the CRC reference."""
    out = io.BytesIO()
    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48_000, layout="mono")
        for i in range(int(seconds * 50)):
            t = (i * 960 + np.arange(960)) / 48_000
            frame = av.AudioFrame.from_ndarray(
                (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :], format="flt",
                layout="mono",
            )  # fmt: skip
            frame.sample_rate = 48_000
            frame.pts = i * 960
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def decoded_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        return sum(f.samples for f in container.decode(audio=0)) / 48_000


def test_crc_matches_pages_written_by_ffmpeg() -> None:
    data = pyav_opus(2.0)
    pages = list(ogg.parse_pages(data))  # raises on any CRC mismatch
    assert len(pages) >= 3
    stream = ogg.read_opus(data)
    assert stream.duration == pytest.approx(2.0, abs=0.03)


def test_crc_catches_a_flipped_bit() -> None:
    data = bytearray(two_tones(1.0))
    data[-5] ^= 0x01
    with pytest.raises(ogg.OggError, match="bad CRC"):
        list(ogg.parse_pages(bytes(data)))


def test_truncated_file_reads_up_to_the_last_whole_page() -> None:
    data = two_tones(2.0)
    whole = ogg.read_opus(data)
    cut = ogg.read_opus(data[: len(data) - 100])
    assert len(cut.audio) == len(whole.audio) - 1


def test_written_file_decodes_with_the_right_duration() -> None:
    data = two_tones(2.0)
    assert ogg.read_opus(data).duration == 4.0
    assert decoded_seconds(data) == pytest.approx(4.0, abs=0.01)


def test_trim_keeps_headers_rebases_granules_and_renumbers() -> None:
    data = two_tones(10.0)
    trimmed, kept_from, kept_to = ogg.trim(data, 5.0, 15.0)
    assert (kept_from, kept_to) == (5.0, 15.0)  # pages of 50 packets = 1 s
    stream = ogg.read_opus(trimmed)
    assert stream.duration == 10.0
    assert [p.body[:8] for p in stream.headers] == [b"OpusHead", b"OpusTags"]
    pages = list(ogg.parse_pages(trimmed))
    assert [p.sequence for p in pages] == list(range(len(pages)))
    assert pages[2].granule == 312 + 50 * 960
    assert pages[-1].flags & ogg.EOS and not pages[-2].flags & ogg.EOS
    assert decoded_seconds(trimmed) == pytest.approx(10.0, abs=0.01)


def test_trim_rounds_out_to_pages_and_an_open_end_keeps_the_rest() -> None:
    data = two_tones(10.0)
    _, kept_from, kept_to = ogg.trim(data, 2.5, 3.2)
    assert (kept_from, kept_to) == (2.0, 4.0)
    trimmed, kept_from, kept_to = ogg.trim(data, 19.5, None)
    assert (kept_from, kept_to) == (19.0, 20.0)
    assert ogg.read_opus(trimmed).duration == 1.0


@pytest.mark.parametrize(("start", "end"), [(-1.0, 5.0), (5.0, 5.0), (30.0, 40.0)])
def test_trim_refuses_empty_spans(start: float, end: float) -> None:
    with pytest.raises(ogg.OggError):
        ogg.trim(two_tones(10.0), start, end)


def test_not_opus_is_refused() -> None:
    with pytest.raises(ogg.OggError, match="no Ogg page"):
        ogg.read_opus(b"RIFF" + b"\0" * 100)


def test_peaks_follow_the_audio(tmp_path: Path) -> None:
    data = ogg.write_opus([])  # headers only: silence
    path = tmp_path / "a.ogg"
    path.write_bytes(two_tones(2.0))
    values = peaks(path, 100, 4.0)
    assert len(values) == 100 and 0.4 < max(values) <= 1.0
    assert ogg.read_opus(data).duration == 0.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-100", ByteRange(900, 999)),
        ("bytes=-5000", ByteRange(0, 999)),
        ("bytes=500-99999999999999999999", ByteRange(500, 999)),
        ("bytes=999-999", ByteRange(999, 999)),
        (None, None),
        ("bytes=5-1", None),  # invalid: ignored, the whole file is sent
        ("bytes=0-1,5-9", None),  # several ranges: ignored
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=" + "9" * 40 + "-", None),
    ],
)
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 1000)


def test_content_range_and_if_range() -> None:
    assert ByteRange(0, 99).content_range(1000) == "bytes 0-99/1000"
    assert if_range_allows(None, '"a"', "x")
    assert if_range_allows('"a"', '"a"', "x") and not if_range_allows('"b"', '"a"', "x")
    assert not if_range_allows('W/"a"', '"a"', "x")
    assert if_range_allows("Mon, 30 Nov 2026 10:00:00 GMT", '"a"', "Mon, 30 Nov 2026 10:00:00 GMT")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("replay_peaks_buckets", "5", "replay_peaks_buckets"),
        ("replay_hallway_cards", "-1", "replay_hallway_cards"),
        ("replay_proxy_bytes", "100", "replay_proxy_bytes"),
    ],
)
def test_replay_settings_are_checked(tmp_path: Path, key: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(tmp_path, environ={f"SALON_{key.upper()}": value})


def test_replay_dir_defaults_to_the_data_dir(tmp_path: Path) -> None:
    assert load_settings(tmp_path, environ={}).replay_path == tmp_path / "replays"
    moved = load_settings(tmp_path, environ={"SALON_REPLAY_DIR": "/srv/replays"})
    assert moved.replay_path == Path("/srv/replays")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT20S", 20.0), ("PT1H2M3.5S", 3723.5), ("P1DT1S", 86401.0), ("PT90M", 5400.0)],
)
def test_xsd_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "d") == seconds
    assert parse_duration(format_duration(seconds), "d") == seconds


def test_trim_never_starts_or_ends_inside_a_packet() -> None:
    """A 600-byte packet spread over two pages: a trim keeps it whole or not at all."""
    stream = ogg.read_opus(two_tones(2.0))
    head, tags = stream.headers
    big = bytes(range(256)) * 2 + bytes(88)  # 600 bytes: lacing 255, 255, 90
    small = stream.audio[0].packets[0]
    pages = [
        head,
        tags,
        ogg.Page(0, 312 + 960, 1, 2, bytes([len(small), 255]), small + big[:255]),
        ogg.Page(ogg.CONTINUED, 312 + 1920, 1, 3, bytes([255, 90, len(small)]), big[255:] + small),
        ogg.Page(0, 312 + 2880, 1, 4, bytes([len(small)]), small),
    ]
    data = b"".join(p.serialize() for p in pages)
    # ending inside page 2: page 3 is kept too, so that the big packet is whole
    trimmed, _, kept_to = ogg.trim(data, 0.0, 0.015)
    assert kept_to == 1920 / 48_000
    assert [p.sequence for p in ogg.parse_pages(trimmed)] == [0, 1, 2, 3]
    # starting inside the big packet: the trim starts at the next clean page
    trimmed, kept_from, _ = ogg.trim(data, 0.025, None)
    kept = list(ogg.parse_pages(trimmed))[2:]
    assert kept_from == 1920 / 48_000 and len(kept) == 1 and not kept[0].flags & ogg.CONTINUED


def test_replay_store_lifecycle(tmp_path: Path) -> None:
    db = open_database(tmp_path / "salon.db")
    users = UserStore(db)
    alice = users.create("alice", "x", 0.0)
    db.execute(
        "INSERT INTO rooms (id, host_id, title, description, join_mode, status, invite_token,"
        " created_at, seq) VALUES ('r1', ?, 'T', '', 'open', 'ended', 't', 0, 0)",
        (alice.id,),
    )
    store = ReplayStore(db)
    store.begin("r1", alice.id, "T", 10.0)
    assert store.get("r1").status == "recording"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        store.finish("r1", status="deleted", size=1, duration=1.0, ended=11.0)
    store.finish("r1", status="ready", size=1000, duration=20.0, ended=30.0)
    replay = store.get("r1")
    assert replay is not None and replay.ready and replay.ended == 30.0
    assert store.used_bytes(alice.id) == 1000 and [r.room_id for r in store.for_host(alice.id)] == [
        "r1"
    ]
    assert (
        store.ready_of({alice.id}, 29.0, 10) == [replay]
        and store.ready_of({alice.id}, 31.0, 10) == []
    )
    store.set_trim("r1", 5.0, 15.0, size=500, duration=10.0)
    assert (store.get("r1").trim_start, store.get("r1").bytes) == (5.0, 500)  # type: ignore[union-attr]
    assert [r.room_id for r in store.expired(31.0)] == ["r1"] and store.expired(30.0) == []
    assert store.mark_deleted("r1") is True and store.mark_deleted("r1") is False
    assert store.used_bytes(alice.id) == 0 and store.for_host(alice.id) == []
    assert store.get("r1").status == "deleted"  # type: ignore[union-attr]


def test_event_with_audio_round_trips() -> None:
    data = {
        "id": "https://a.example/rooms/r1",
        "type": "Event",
        "name": "Talk",
        "attributedTo": "https://a.example/users/alice",
        "status": "ended",
        "speakers": [],
        "attachment": [
            {"type": "Image", "url": "https://a.example/i.png"},
            {
                "type": "Audio",
                "mediaType": "audio/ogg",
                "url": "https://a.example/rooms/r1/replay.ogg",
                "duration": "PT2712.5S",
                "name": "Talk",
            },
        ],
    }
    event = Event.parse(data)
    assert event.attachments == (
        Audio(url="https://a.example/rooms/r1/replay.ogg", duration=2712.5, name="Talk"),
    )
    out = event.serialize(context=False)
    assert out["attachment"] == [data["attachment"][1]]  # type: ignore[index]
    assert Event.parse(out) == event
    link = {"type": "Audio", "url": {"type": "Link", "href": "https://a.example/a.opus",
                                     "mediaType": "audio/opus"}}  # fmt: skip
    assert Audio.parse(link) == Audio(url="https://a.example/a.opus", media_type="audio/opus")
