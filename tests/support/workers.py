"""Media workers in tests: a real redis-server, real `salon media-worker` processes, and the
room scenario the worker tests share (a host speaking, listeners spread over workers, a
listener on a non-mixer worker raised to speaker)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from node.workers.audio import RoomPlacement, WorkerAudio
from tests.support.attacks import parts
from tests.support.audio import RATE, read_pcm, tone
from tests.support.cli import ENV, SALON, bot_room_url, creds, salon
from tests.support.network import eventually
from tests.support.nodes import Node, NodeFactory, free_port

SECRET = "test-worker-secret-0123456789abcdef"


def band_share(pcm: np.ndarray, hz: float, width: float = 15.0) -> float:
    """The share of the recording's spectral power within WIDTH Hz of HZ."""
    if len(pcm) == 0:
        return 0.0
    power = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm)))) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1 / RATE)
    total = float(np.sum(power)) or 1.0
    return float(np.sum(power[np.abs(freqs - hz) <= width])) / total


def worker_audio(node: Node) -> WorkerAudio:
    audio = parts(node).audio
    assert isinstance(audio, WorkerAudio)
    return audio


def placement(node: Node, room_id: str) -> RoomPlacement:
    return worker_audio(node).placements[room_id]


async def user_id(node: Node, name: str) -> str:
    user = parts(node).accounts.users.by_name(name)
    assert user is not None
    return str(user.id)


# ---- redis-server and media workers ---------------------------------------------------------


@dataclass
class Redis:
    process: subprocess.Popen[bytes]
    url: str
    port: int

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


async def start_redis(
    directory: Path, binds: Sequence[str] = ("127.0.0.1",), password: str = ""
) -> Redis:
    """A private redis-server on a free port (skips the test where Debian's is missing);
    reachable beyond loopback only with PASSWORD (Redis's protected mode)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", *binds, "--save", "", "--appendonly", "no",
         "--dir", str(directory), *(["--requirepass", password] if password else [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import redis.asyncio as aioredis

    client = aioredis.Redis(port=port, password=password or None)
    try:
        for _ in range(100):
            try:
                await client.ping()
                break
            except OSError:
                await asyncio.sleep(0.05)
            except Exception:  # redis.ConnectionError (a RedisError) before it listens
                await asyncio.sleep(0.05)
        else:
            process.kill()
            pytest.fail("redis-server did not start")
    finally:
        await client.aclose()
    auth = f":{password}@" if password else ""
    return Redis(process, f"redis://{auth}127.0.0.1:{port}/0", port)


def start_worker(
    node_url: str,
    redis_url: str,
    advertise: str = "127.0.0.1",
    prefix: Sequence[str] = (),
    secret: str = SECRET,
) -> subprocess.Popen[bytes]:
    """A `salon media-worker` process (PREFIX: e.g. ``ip netns exec NS``)."""
    env = {**ENV, "SALON_WORKER_SECRET": secret}
    return subprocess.Popen(
        [*prefix, *SALON, "media-worker", "--node", node_url, "--redis", redis_url,
         "--advertise", advertise, "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


async def workers_ready(node: Node, count: int) -> list[str]:
    audio = worker_audio(node)

    async def ready() -> list[str] | None:
        ids = [w.id for w in audio.pool.workers() if w.ready]
        return ids if len(ids) >= count else None

    found: list[str] = await eventually(ready, timeout=30)
    return found


async def node_on_workers(node_factory: NodeFactory, count: int, **settings: Any) -> Node:
    """A node (ICE on 127.0.0.1 unless SETTINGS say otherwise) with COUNT local media
    workers, once all of them are ready."""
    settings.setdefault("ice_addresses", ("127.0.0.1",))
    node = await node_factory(media_workers=count, **settings)
    await workers_ready(node, count)
    return node


@contextlib.contextmanager
def redis_workers(node: Node, redis: Redis, count: int) -> Iterator[None]:
    """COUNT `salon media-worker` processes for NODE through REDIS, killed on exit."""
    processes = [start_worker(node.url, redis.url) for _ in range(count)]
    try:
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait(10)


def kill_worker(node: Node, worker: str) -> None:
    """SIGKILL the worker's process."""
    os.kill(worker_pid(node, worker), signal.SIGKILL)


# ---- bots -------------------------------------------------------------------------------------


async def tone_host(
    node: Node,
    tmp: Path,
    title: str,
    *options: str,
    seconds: int,
    tone_seconds: float = 2.0,
    ice_address: str = "127.0.0.1",
) -> tuple[asyncio.subprocess.Process, str, str]:
    """alice's `salon bot host` on NODE playing a looped 440 Hz tone for SECONDS (OPTIONS:
    more bot options): (the process, the room URL, the room id)."""
    host = await salon(
        "bot", "host", *creds(node, "alice", ice_address), "--title", title,
        "--play", str(tone(tmp / "440.wav", 440, seconds=tone_seconds)), *options,
        "--seconds", str(seconds),
    )  # fmt: skip
    try:
        url = await bot_room_url(host)
    except BaseException:
        host.kill()
        await host.wait()
        raise
    return host, url, url.rsplit("/", 1)[-1]


async def listen_bot(
    node: Node,
    url: str,
    name: str,
    seconds: int,
    *options: str,
    record: Path | None = None,
    ice_address: str = "127.0.0.1",
) -> asyncio.subprocess.Process:
    """NAME's `salon bot listen` on NODE in the room at URL for SECONDS (RECORD: a WAV of
    what it hears there)."""
    recording = ("--record", str(record)) if record is not None else ()
    return await salon(
        "bot", "listen", url, *creds(node, name, ice_address), *options, *recording,
        "--seconds", str(seconds),
    )  # fmt: skip


async def outcome(bot: asyncio.subprocess.Process, stop: bool = False) -> dict[str, Any]:
    """A bot's summary (the JSON of its last line) once it exited cleanly (STOP: send it
    SIGINT first, as Ctrl-C would)."""
    if stop:
        bot.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(bot.communicate(), 40 if stop else 60)
    assert bot.returncode == 0, err.decode()[-2000:]
    found: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return found


def hears_again(path: Path, hz: float = 440, share: float = 0.3) -> None:
    """The recording at PATH has no quiet run over 3 s (the issue's bound after a failure)
    and ends hearing HZ."""
    heard = read_pcm(path)
    assert longest_quiet(heard) <= 3.0
    assert band_share(heard[-RATE * 3 :], hz) > share


# ---- the shared room scenario ----------------------------------------------------------------


@dataclass
class SpreadRoom:
    room_id: str
    mixer: str
    where: dict[str, str]  # username → worker at the end
    heard: dict[str, np.ndarray]  # username → their recording
    outcomes: dict[str, dict[str, Any]]


async def wait_placed(node: Node, room_id: str, name: str) -> str:
    """The worker NAME's session in ROOM_ID is placed on (waits until it is)."""
    uid = await user_id(node, name)

    async def placed() -> str | None:
        found = worker_audio(node).placements.get(room_id)
        return None if found is None else found.where.get(uid)

    worker: str = await eventually(placed, timeout=20)
    return worker


async def spread_room(
    node: Node, tmp: Path, listeners: Sequence[str], ice_address: str = "127.0.0.1"
) -> SpreadRoom:
    """alice hosts and plays 440 Hz; erin (placed first, so on a non-mixer worker) raises
    her hand, is invited and plays 880 Hz; LISTENERS join at once and record (every bot
    offers ICE_ADDRESS as its host candidate)."""
    for name in ("alice", "erin", *listeners):
        await node.user(name)
    host, room_url, room_id = await tone_host(
        node, tmp, "Workers", "--auto-invite", "--record", str(tmp / "alice.wav"),
        seconds=30, tone_seconds=3, ice_address=ice_address,
    )  # fmt: skip
    await wait_placed(node, room_id, "alice")
    erin = await listen_bot(
        node, room_url, "erin", 16, "--raise-hand",
        "--play", str(tone(tmp / "880.wav", 880, seconds=3)), ice_address=ice_address,
    )  # fmt: skip
    await wait_placed(node, room_id, "erin")
    bots = {}
    for name in listeners:
        bots[name] = await listen_bot(
            node, room_url, name, 12, record=tmp / f"{name}.wav", ice_address=ice_address
        )
    for name in listeners:
        await wait_placed(node, room_id, name)
    found = placement(node, room_id)
    assert found.mixer is not None
    where = {}
    for name in ("alice", "erin", *listeners):
        where[name] = found.where[await user_id(node, name)]
    outcomes = {name: await outcome(bot) for name, bot in {**bots, "erin": erin}.items()}
    outcomes["alice"] = await outcome(host, stop=True)
    heard = {name: read_pcm(tmp / f"{name}.wav") for name in ("alice", *listeners)}
    return SpreadRoom(room_id, found.mixer, where, heard, outcomes)


def assert_everyone_heard(room: SpreadRoom, listeners: Sequence[str]) -> None:
    assert room.where["alice"] == room.mixer, "speakers are placed on the mixer worker"
    assert room.where["erin"] != room.mixer, "erin listens on another worker than the mixer"
    assert room.outcomes["erin"]["role"] == "speaker"
    for name in listeners:
        pcm = room.heard[name]
        assert room.outcomes[name]["packets_received"] >= 400, name  # ≥ 8 s of 20 ms packets
        assert band_share(pcm, 440) > 0.05, f"{name} hears alice (440 Hz)"
        assert band_share(pcm, 880) > 0.05, f"{name} hears erin (880 Hz) raised on a relay"
    assert band_share(room.heard["alice"], 880) > 0.05, "alice hears erin"


# ---- a room to break: failover and drain -------------------------------------------------


@dataclass
class Crowd:
    room_id: str
    host: asyncio.subprocess.Process
    bots: dict[str, asyncio.subprocess.Process]
    where: dict[str, str]  # username → worker when everyone had joined

    async def outcomes(self) -> dict[str, dict[str, Any]]:
        found = {name: await outcome(bot) for name, bot in self.bots.items()}
        found["alice"] = await outcome(self.host, stop=True)
        return found


async def crowd(node: Node, tmp: Path, listeners: Sequence[str], seconds: int = 14) -> Crowd:
    """alice hosts, playing 440 Hz; LISTENERS join at once (placed over the workers by
    load) and record SECONDS seconds."""
    for name in ("alice", *listeners):
        await node.user(name)
    host, room_url, room_id = await tone_host(node, tmp, "Failover", seconds=60, tone_seconds=3)
    where = {"alice": await wait_placed(node, room_id, "alice")}
    bots = {}
    for name in listeners:
        bots[name] = await listen_bot(node, room_url, name, seconds, record=tmp / f"{name}.wav")
    for name in listeners:
        where[name] = await wait_placed(node, room_id, name)
    return Crowd(room_id, host, bots, where)


async def hearing(node: Node, worker: str, packets: int = 200) -> None:
    """Wait until WORKER has sent PACKETS packets to its listeners (audio flows there)."""
    audio = worker_audio(node)

    async def sent() -> bool:
        state = audio.pool.get(worker)
        return state is not None and int(state.load.get("packets_sent", 0)) >= packets

    await eventually(sent, timeout=20)


def worker_pid(node: Node, worker: str) -> int:
    """WORKER's process id (from its hello), to kill it."""
    state = worker_audio(node).pool.get(worker)
    assert state is not None and state.pid > 0
    return state.pid


async def drain_worker(node: Node, worker: str) -> None:
    """`salon admin worker drain WORKER` as the node's admin root (made on first use)."""
    accounts = parts(node).accounts
    if accounts.users.by_name("root") is None:
        await accounts.create_user("root", "password123", is_admin=True)
    drain = await salon(
        "admin", "worker", "drain", worker, "--node", node.url,
        "--user", "root", "--password", "password123",
    )  # fmt: skip
    out, err = await drain.communicate()
    assert drain.returncode == 0, err.decode()
    assert out.decode().startswith(f"draining {worker}"), out.decode()


def tail_share(path: Path, hz: float, seconds: float = 3.0) -> float:
    """The share of HZ in the last SECONDS of a recording (heard again after a break)."""
    pcm = read_pcm(path)
    return band_share(pcm[-int(RATE * seconds) :], hz)


def longest_quiet(pcm: np.ndarray, frame: int = 960, floor: float = 300.0) -> float:
    """Seconds of the longest run of quiet 20 ms frames after the first loud one (a gap in
    the sound itself, which a count of packets cannot see: a mixer sends silence too)."""
    frames = pcm[: len(pcm) // frame * frame].reshape(-1, frame)
    loud = np.sqrt(np.mean(frames**2, axis=1)) > floor
    if not loud.any():
        return float("inf")
    longest = run = 0
    for is_loud in loud[int(np.argmax(loud)) :]:
        run = 0 if is_loud else run + 1
        longest = max(longest, run)
    return longest * frame / RATE
