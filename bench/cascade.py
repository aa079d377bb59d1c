"""Cascade: a room on origin node A heard by listeners on M remote nodes through relay trunks.

Real federating nodes in this process (``tests.conftest.Node``: ``cli.app.build_app`` on
127.0.0.1, ``--testnet``, loopback ICE, fast delivery), real signed HTTP between them, the
real encrypted UDP trunk (media/relay.py) and real aiortc peer connections. A host bot on
A plays a click train (a 10 ms 1.5 kHz burst every 500 ms; bench/latency.py). Phases:

1. **relay**: L listeners on each of M remote nodes B1..BM join A's room *through their own
   node* (``POST /api/remote-rooms`` + ``/api/remote-rooms/{alias}/ws``). Over a window we
   count what A sends for them: the datagrams and bytes of A's ``OriginTrunk`` sockets
   (one trunk, one MIX stream per remote node), and what the M×L listeners receive.
   In the same window, a probe listener on A (local) and one on B1 (through the trunk)
   decode the click train: **hop latency** = median mouth-to-ear delay on B1 − on A (same
   clicks, same mixer tick). Per-packet check: the same RTP timestamp arrives at both
   probes' raw receive hooks; B1's arrival − A's arrival.
2. **remote join**: fresh users join A's room through a node that is not yet in the room
   (``cold``: signed Join + trunk set-up + WebRTC with their node) and through B1, whose
   trunk is already up (``warm``). Timed from ``POST /api/remote-rooms`` to the first RTP
   packet at the joiner's raw receive hook; each joiner then leaves (the trunk of the cold
   node closes with its last user before the next join).
3. **direct**: the remote listeners leave; the same number of listeners (M×L accounts on
   A) join A's room directly as WebRTC participants of A. Over a window we count A's
   downlink packets and bytes to them.

The M×L bulk listeners run in a worker process (``--worker``): they count packets at
aiortc's raw receive hook and never decode. Bytes are UDP payload bytes: for the trunk the
datagram (12-byte header + 16-byte MAC + 9-byte frame header + Opus), for WebRTC the SRTP
packet (RTP header + header extensions + Opus + 10-byte SRTP tag).

    .venv/bin/python bench/cascade.py --quick   # M=2, L=5; < 60 s
    .venv/bin/python bench/cascade.py           # M=3, L=10; < 3 min on 2 cores

The last line is one JSON object: origin_streams_relay, origin_streams_direct,
hop_latency_ms, remote_join_ms (mean of the cold joins), plus the figures behind them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import nacl.pwhash
from aiortc import RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RtpPacket

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import LineWorker, free_port  # noqa: E402
from latency import (  # noqa: E402
    LOOPBACK,
    RoomClient,
    TimedLoopTrack,
    click_train,
    delays_ms,
    onsets,
    timed_speaker,
)

from media.client import BotPeer  # noqa: E402

TICKS_PER_SECOND = 50
SRTP_TAG = 10  # AES_CM_128_HMAC_SHA1_80, aiortc's SRTP profile
PASSWORD = "bench-password-123"


# ---- listeners --------------------------------------------------------------------------------


class CountingPeer(BotPeer):
    """The bot client, receive-only, counting RTP packets at aiortc's raw hook (no decoding).

    Also stamps the first packet and, when ``stamps`` is on, the arrival time of every RTP
    timestamp (to compare the same packet at two listeners).
    """

    def __init__(self, *args: Any, decode: bool = False, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.decode = decode
        self.octets = 0
        self.first_packet: float | None = None
        self.stamps: dict[int, float] | None = None

    def _count_packets(self, transceiver: RTCRtpTransceiver) -> None:
        receiver = transceiver.receiver
        original = receiver._handle_rtp_packet

        async def count(packet: RtpPacket, arrival_time_ms: int) -> None:
            now = time.monotonic()
            if self.first_packet is None:
                self.first_packet = now
            if self.stamps is not None:
                self.stamps.setdefault(packet.timestamp, now)
            self.packets_received += 1
            self.octets += len(packet.payload)
            if self.decode:
                await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = count  # type: ignore[method-assign]

    def _on_track(self, track: MediaStreamTrack) -> None:
        if self.decode:
            super()._on_track(track)


class RoomSocket(RoomClient):
    """A room WebSocket (local or remote: same protocol) carrying a peer's signalling;
    the signalling pump is latency.RoomClient's."""

    def __init__(self, http: aiohttp.ClientSession, ws_url: str, token: str) -> None:
        super().__init__(http, "", {"Authorization": f"Bearer {token}"})
        self.ws_url = ws_url

    async def open(self) -> dict[str, Any]:
        self.ws = await self.http.ws_connect(self.ws_url, headers=self.headers)
        state = await self.ws.receive_json(timeout=10)
        if state.get("type") != "state":
            raise RuntimeError(f"{self.ws_url}: unexpected first message {state}")
        return dict(state)

    async def start(self, peer: BotPeer) -> None:
        self.peer = peer
        self._pump = asyncio.ensure_future(self._run())
        await peer.start()

    async def close(self, leave: bool = True) -> None:
        if self.peer is not None:
            await self.peer.close()
        if self.ws is not None and not self.ws.closed:
            if leave:
                with contextlib.suppress(ConnectionError):
                    await self.ws.send_json({"type": "command", "id": 1, "action": "leave"})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closed_by_node(), 5)
            await self.ws.close()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    async def _closed_by_node(self) -> None:
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._pump)


async def listen(http: aiohttp.ClientSession, ws_url: str, token: str, **kw: Any) -> RoomSocket:
    """Join through ws_url with a CountingPeer and wait until its connection is up."""
    sock = RoomSocket(http, ws_url, token)
    await sock.open()
    peer = CountingPeer(sock.send_signal, ice_addresses=LOOPBACK, speak=False, **kw)
    await sock.start(peer)
    await peer.wait_connected(15)
    return sock


# ---- the worker process: the M×L bulk listeners ---------------------------------------------


async def worker() -> None:
    logging.basicConfig(level=logging.WARNING)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    socks: dict[str, RoomSocket] = {}

    def reply(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def join(key: str, ws_url: str, token: str) -> None:
        socks[key] = await listen(http, ws_url, token)

    async with aiohttp.ClientSession() as http:
        while line := await reader.readline():
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "join":
                results = await asyncio.gather(
                    *(join(k, u, t) for k, u, t in cmd["listeners"]), return_exceptions=True
                )
                reply({"errors": [repr(r) for r in results if isinstance(r, BaseException)]})
            elif op == "counts":
                peers = [s.peer for s in socks.values() if isinstance(s.peer, CountingPeer)]
                reply(
                    {
                        "packets": [p.packets_received for p in peers],
                        "octets": [p.octets for p in peers],
                    }
                )
            elif op == "close":
                await asyncio.gather(*(s.close(leave=cmd["leave"]) for s in socks.values()))
                socks.clear()
                reply({})
            else:
                break
    reply({})


class Worker(LineWorker):
    """The main process's handle on the bulk-listener worker."""

    name = "the listener worker"

    async def join(self, listeners: list[tuple[str, str, str]], batch: int = 10) -> None:
        for i in range(0, len(listeners), batch):
            answer = await self.call(op="join", listeners=listeners[i : i + batch])
            if answer["errors"]:
                raise RuntimeError(f"listeners failed to join: {answer['errors']}")

    async def counts(self) -> tuple[list[int], list[int]]:
        answer = await self.call(op="counts")
        return list(answer["packets"]), list(answer["octets"])


# ---- nodes ----------------------------------------------------------------------------------


def cheap_passwords() -> None:
    """Accounts are set-up, not what is measured: libsodium's minimum argon2id cost."""
    import node.auth

    def hash_password_sync(password: str) -> str:
        argon = nacl.pwhash.argon2id
        raw = argon.str(password.encode(), opslimit=argon.OPSLIMIT_MIN, memlimit=argon.MEMLIMIT_MIN)
        return raw.decode("ascii")

    node.auth.hash_password_sync = hash_password_sync


def seat_messages(node: Any) -> int:
    """The trunk control channel's `users` → `seats` exchanges handled by NODE's trunks."""
    from cli.app import NODE

    return int(node.app[NODE].trunks.seat_messages)


@dataclass
class Account:
    name: str
    id: int
    token: str


@dataclass
class Cluster:
    nodes: dict[str, Any] = field(default_factory=dict)  # name → tests.conftest.Node

    async def add(self, name: str, data: Path) -> Any:
        from tests.conftest import Node, make_settings
        from tests.support.network import FAST

        settings = make_settings(
            data / name,
            port=free_port(),
            **FAST,
            ice_addresses=LOOPBACK,
            reconnect_grace_seconds=3.0,
            room_empty_grace_seconds=600.0,
        )
        node = await Node(settings).start()
        self.nodes[name] = node
        return node

    async def stop(self) -> None:
        for node in reversed(list(self.nodes.values())):
            with contextlib.suppress(Exception):
                await node.stop()


async def account(node: Any, name: str) -> Account:
    from node.web.http import ACCOUNTS

    accounts = node.app[ACCOUNTS]
    user = await accounts.create_user(name, PASSWORD)
    return Account(name, user.id, accounts.open_session(user, "bearer").token)


async def remote_join(http: aiohttp.ClientSession, node: Any, who: Account, room_url: str) -> str:
    """POST /api/remote-rooms on the user's own node; returns the room WebSocket URL."""
    async with http.post(
        node.url + "/api/remote-rooms",
        json={"url": room_url},
        headers={"Authorization": f"Bearer {who.token}"},
    ) as response:
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"remote join of {who.name}: HTTP {response.status} {body}")
    return f"{node.url}/api/remote-rooms/{body['id']}/ws"


def room_media(origin: Any, room_id: str) -> Any:
    from cli.app import NODE

    return origin.app[NODE].audio.engine.get(room_id)


def live_remote_rooms(node: Any) -> int:
    from cli.app import NODE

    return len(node.app[NODE].remote_rooms.open_rooms())


async def until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# ---- measurements -------------------------------------------------------------------------------


class TrunkMeter:
    """Counts the datagrams and bytes A's trunk sockets send (A's egress to remote nodes)."""

    def __init__(self, trunks: list[Any]) -> None:
        self.trunks = trunks
        self.octets = [0] * len(trunks)
        for i, trunk in enumerate(trunks):
            sock, send = trunk.sock, trunk.sock.send

            def counted(data: bytes, addr: Any, i: int = i, send: Any = send) -> None:
                self.octets[i] += len(data)
                send(data, addr)

            sock.send = counted

    def snapshot(self) -> tuple[list[int], list[int]]:
        return [t.packets_sent for t in self.trunks], list(self.octets)


def downlink_snapshot(media: Any, ids: list[int]) -> tuple[list[int], list[int]]:
    """Packets and UDP bytes A wrote to these participants (SRTP packet size)."""
    packets, octets = [], []
    for uid in ids:
        session = media.session(str(uid))
        downlink = session.downlink if session is not None else None
        if downlink is None:
            packets.append(0)
            octets.append(0)
            continue
        overhead = (
            12 + len(downlink.ext_head) + int(downlink.has_level) + len(downlink.ext_tail)
        ) + SRTP_TAG
        packets.append(downlink.packets)
        octets.append(downlink.octets + downlink.packets * overhead)
    return packets, octets


def delta(after: list[int], before: list[int]) -> list[int]:
    return [a - b for a, b in zip(after, before, strict=True)]


def click_delays(track: TimedLoopTrack, peer: BotPeer, since: float) -> list[float]:
    emitted = [t for t in track.click_times() if t >= since - 0.5]
    return delays_ms(emitted, onsets(peer.chunks, since))


def describe(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: none"
    return (
        f"{name}: n={len(values)} median {statistics.median(values):.1f} ms "
        f"(min {min(values):.1f}, max {max(values):.1f})"
    )


# ---- the run ----------------------------------------------------------------------------------


@dataclass
class Config:
    remotes: int
    listeners: int
    window: float
    direct_window: float
    joins: int


async def timed_join(
    http: aiohttp.ClientSession, node: Any, who: Account, room_url: str
) -> tuple[dict[str, float], RoomSocket]:
    times: dict[str, float] = {}
    t0 = time.monotonic()
    ws_url = await remote_join(http, node, who, room_url)
    times["post"] = (time.monotonic() - t0) * 1000
    sock = RoomSocket(http, ws_url, who.token)
    await sock.open()
    times["ws"] = (time.monotonic() - t0) * 1000
    peer = CountingPeer(sock.send_signal, ice_addresses=LOOPBACK, speak=False)
    await sock.start(peer)
    await asyncio.wait_for(peer.answered.wait(), 10)
    times["answer"] = (time.monotonic() - t0) * 1000
    await peer.wait_connected(15)
    times["connected"] = (time.monotonic() - t0) * 1000
    await until(lambda: peer.first_packet is not None, 10, "the first packet")
    assert peer.first_packet is not None
    times["first_packet"] = (peer.first_packet - t0) * 1000
    return times, sock


def join_summary(name: str, runs: list[dict[str, float]]) -> dict[str, float]:
    steps = ("post", "ws", "answer", "connected")
    means = {k: statistics.mean(r[k] for r in runs) for k in steps}
    firsts = [r["first_packet"] for r in runs]
    means["first_packet"] = statistics.mean(firsts)
    means["worst"] = max(firsts)
    print(
        f"  {name} ({len(runs)} joins, mean ms from POST): POST answered {means['post']:.0f}, "
        f"WebSocket state {means['ws']:.0f}, answer {means['answer']:.0f}, "
        f"ICE+DTLS up {means['connected']:.0f}, "
        f"first packet {means['first_packet']:.0f} (worst {means['worst']:.0f})"
    )
    return means


@contextlib.asynccontextmanager
async def resources() -> AsyncIterator[tuple[Path, Cluster, Worker]]:
    cluster = Cluster()
    worker_proc = await Worker.start(__file__)
    with tempfile.TemporaryDirectory(prefix="salon-cascade-") as tmp:
        try:
            yield Path(tmp), cluster, worker_proc
        finally:
            await worker_proc.stop()
            await cluster.stop()


async def run(cfg: Config) -> dict[str, Any]:
    cheap_passwords()
    m, n = cfg.remotes, cfg.listeners
    async with resources() as (tmp, cluster, bulk), aiohttp.ClientSession() as http:
        # ---- set-up: A, B1..BM, J (cold joins); accounts ----
        a = await cluster.add("a", tmp)
        remotes = [await cluster.add(f"b{i + 1}", tmp) for i in range(m)]
        j = await cluster.add("j", tmp)
        alice = await account(a, "alice")
        probe_a = await account(a, "probea")
        direct = [await account(a, f"direct{i}") for i in range(m * n)]
        fans = [[await account(b, f"fan{k}") for k in range(n)] for b in remotes]
        probe_b = await account(remotes[0], "probeb")
        cold_users = [await account(j, f"cold{i}") for i in range(cfg.joins)]
        warm_users = [await account(remotes[0], f"warm{i}") for i in range(cfg.joins)]

        async with http.post(
            a.url + "/api/rooms",
            json={"title": "cascade"},
            headers={"Authorization": f"Bearer {alice.token}"},
        ) as response:
            room = await response.json()
            if response.status != 201:
                raise RuntimeError(f"create room: HTTP {response.status} {room}")
        room_id, room_url = str(room["id"]), str(room["url"])

        host = RoomSocket(http, f"{a.url}/api/rooms/{room_id}/ws", alice.token)
        await host.open()
        speaker = BotPeer(host.send_signal, ice_addresses=LOOPBACK, speak=True)
        track = timed_speaker(speaker, click_train())
        await host.start(speaker)
        await speaker.wait_connected(15)
        media = room_media(a, room_id)
        print(f"nodes: A + {m} remote + 1 for cold joins; room {room_url}")

        # ---- phase 1: relay ----
        started = time.monotonic()
        for b, node_fans in zip(remotes, fans, strict=True):
            specs = [
                (f"{b.url}#{f.name}", await remote_join(http, b, f, room_url), f.token)
                for f in node_fans
            ]
            await bulk.join(specs)
        print(
            f"{m}×{n} remote listeners joined through their nodes in "
            f"{time.monotonic() - started:.1f} s"
        )
        ear_a = await listen(http, f"{a.url}/api/rooms/{room_id}/ws", probe_a.token, decode=True)
        ear_b = await listen(
            http,
            await remote_join(http, remotes[0], probe_b, room_url),
            probe_b.token,
            decode=True,
        )
        trunks = list(media.trunks)
        if len(trunks) != m:
            raise RuntimeError(f"expected {m} trunks on A, found {len(trunks)}")
        meter = TrunkMeter(trunks)
        await asyncio.sleep(1.5)  # jitter buffers settle

        peer_a, peer_b = ear_a.peer, ear_b.peer
        assert isinstance(peer_a, CountingPeer) and isinstance(peer_b, CountingPeer)
        peer_a.stamps, peer_b.stamps = {}, {}
        ear_start = (peer_a.packets_received, peer_a.octets)
        t_p, t_o = meter.snapshot()
        l_p, _ = await bulk.counts()
        seats_before = seat_messages(a)
        since = time.monotonic()
        await asyncio.sleep(cfg.window)
        elapsed = time.monotonic() - since
        seat_rate = (seat_messages(a) - seats_before) / elapsed
        t_p2, t_o2 = meter.snapshot()
        l_p2, _ = await bulk.counts()
        relay_opus = (peer_a.octets - ear_start[1]) / max(1, peer_a.packets_received - ear_start[0])
        await asyncio.sleep(0.5)  # the last click's flight
        stamps_a, stamps_b = dict(peer_a.stamps), dict(peer_b.stamps)
        peer_a.stamps = peer_b.stamps = None

        relay_pps = sum(delta(t_p2, t_p)) / elapsed
        relay_bps = sum(delta(t_o2, t_o)) / elapsed
        relay_streams = len(trunks)
        got = delta(l_p2, l_p)
        relay_listener_pps = [g / elapsed for g in got]
        print("relay (A → one trunk per remote node → B fan-out):")
        print(
            f"  A's egress for the remote listeners: {relay_streams} streams "
            f"(trunks), {relay_pps:.1f} packets/s, {relay_bps / 1000:.1f} kB/s "
            f"({relay_bps / relay_pps:.0f} B/datagram; the mix's Opus payload: "
            f"{relay_opus:.0f} B)"
        )
        print(
            f"  trunk control channel: {seat_rate:.0f} `users`/`seats` exchanges/s "
            f"over {relay_streams} trunks (nothing changed: should be 0)"
        )
        print(
            f"  {len(got)} remote listeners received {statistics.mean(relay_listener_pps):.1f} "
            f"packets/s each (min {min(relay_listener_pps):.1f})"
        )

        local = click_delays(track, peer_a, since)
        relayed = click_delays(track, peer_b, since)
        if not local or not relayed:
            raise RuntimeError("no clicks detected at a probe listener")
        hop = statistics.median(relayed) - statistics.median(local)
        per_packet = [stamps_b[ts] - stamps_a[ts] for ts in stamps_a if ts in stamps_b]
        per_packet_ms = sorted(d * 1000 for d in per_packet)
        print("latency, same clicks from A's speaker:")
        print("  " + describe("listener on A (local)", local))
        print("  " + describe("listener on B1 (through the trunk)", relayed))
        print(f"  one relay hop adds {hop:.1f} ms (goal ≤ 10 ms)")
        packet_median = statistics.median(per_packet_ms) if per_packet_ms else float("nan")
        packet_p95 = per_packet_ms[int(0.95 * (len(per_packet_ms) - 1))] if per_packet_ms else 0.0
        print(
            f"  same RTP packet at the raw receive hook, B1 − A: median {packet_median:.2f} ms, "
            f"p95 {packet_p95:.2f} ms ({len(per_packet_ms)} packets)"
        )

        # ---- phase 2: remote joins ----
        trunks_before = len(media.trunks)
        cold: list[dict[str, float]] = []
        for who in cold_users:
            if live_remote_rooms(j) or len(media.trunks) != trunks_before:
                raise RuntimeError("the previous cold join did not close its trunk")
            times, sock = await timed_join(http, j, who, room_url)
            cold.append(times)
            await sock.close(leave=True)
            await until(
                lambda: not live_remote_rooms(j) and len(media.trunks) == trunks_before,
                10,
                "the cold node's trunk to close",
            )
            await asyncio.sleep(0.2)
        warm: list[dict[str, float]] = []
        for who in warm_users:
            times, sock = await timed_join(http, remotes[0], who, room_url)
            warm.append(times)
            await sock.close(leave=True)
            await asyncio.sleep(0.2)
        print("remote join, POST /api/remote-rooms → first audio packet at the joiner:")
        cold_means = join_summary("cold: the joiner's node opens its trunk", cold)
        warm_means = join_summary("warm: the trunk is already up", warm)

        # ---- phase 3: direct ----
        await bulk.call(op="close", leave=True)
        await ear_b.close(leave=True)
        await ear_a.close(leave=True)
        await until(lambda: not media.trunks, 15, "the trunks to close")
        started = time.monotonic()
        await bulk.join([(d.name, f"{a.url}/api/rooms/{room_id}/ws", d.token) for d in direct])
        print(f"{m * n} direct listeners joined A in {time.monotonic() - started:.1f} s")
        await asyncio.sleep(1.0)
        ids = [d.id for d in direct]
        d_p, d_o = downlink_snapshot(media, ids)
        l_p, l_o = await bulk.counts()
        since = time.monotonic()
        await asyncio.sleep(cfg.direct_window)
        elapsed = time.monotonic() - since
        d_p2, d_o2 = downlink_snapshot(media, ids)
        l_p2, l_o2 = await bulk.counts()
        direct_opus = sum(delta(l_o2, l_o)) / max(1, sum(delta(l_p2, l_p)))
        sent = delta(d_p2, d_p)
        direct_pps = sum(sent) / elapsed
        direct_bps = sum(delta(d_o2, d_o)) / elapsed
        direct_streams = sum(1 for s in sent if s > 0)
        direct_listener_pps = [g / elapsed for g in delta(l_p2, l_p)]
        print("direct (every listener a WebRTC participant of A):")
        print(
            f"  A's egress for the same listeners: {direct_streams} streams, "
            f"{direct_pps:.1f} packets/s, {direct_bps / 1000:.1f} kB/s "
            f"({direct_bps / direct_pps:.0f} B/packet; Opus payload {direct_opus:.0f} B)"
        )
        print(
            f"  listeners received {statistics.mean(direct_listener_pps):.1f} packets/s each "
            f"(min {min(direct_listener_pps):.1f})"
        )
        await bulk.call(op="close", leave=False)
        await host.close(leave=False)

    ratio_streams = direct_streams / relay_streams
    ratio_bytes = direct_bps / relay_bps if relay_bps else float("nan")
    print(
        f"origin egress, direct / relay: streams {ratio_streams:.1f}×, "
        f"packets {direct_pps / relay_pps:.1f}×, bytes {ratio_bytes:.1f}× (L = {n})"
    )
    print(f"remote join (cold) {cold_means['first_packet']:.0f} ms (goal < 1000 ms)")
    return {
        "origin_streams_relay": relay_streams,
        "origin_streams_direct": direct_streams,
        "hop_latency_ms": round(hop, 1),
        "remote_join_ms": round(cold_means["first_packet"], 1),
        "remote_join_warm_ms": round(warm_means["first_packet"], 1),
        "remote_join_worst_ms": round(max(cold_means["worst"], warm_means["worst"]), 1),
        "hop_packet_ms": round(packet_median, 2),
        "hop_packet_p95_ms": round(packet_p95, 2),
        "local_latency_ms": round(statistics.median(local), 1),
        "relayed_latency_ms": round(statistics.median(relayed), 1),
        "clicks": min(len(local), len(relayed)),
        "origin_pps_relay": round(relay_pps, 1),
        "origin_pps_direct": round(direct_pps, 1),
        "origin_kbps_relay": round(relay_bps * 8 / 1000, 1),
        "origin_kbps_direct": round(direct_bps * 8 / 1000, 1),
        "egress_ratio": round(ratio_bytes, 2),
        "opus_bytes_relay_phase": round(relay_opus, 1),
        "opus_bytes_direct_phase": round(direct_opus, 1),
        "remote_listener_pps": round(min(relay_listener_pps), 1),
        "direct_listener_pps": round(min(direct_listener_pps), 1),
        "trunk_control_msgs_per_s": round(seat_rate),
        "remote_nodes": m,
        "listeners_per_node": n,
        "joins": len(cold) + len(warm),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="M=2, L=5, short windows; < 60 s")
    parser.add_argument("--remotes", type=int, default=None, help="M remote nodes")
    parser.add_argument("--listeners", type=int, default=None, help="L listeners per node")
    parser.add_argument("--joins", type=int, default=None, help="cold and warm joins each")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(worker())
        return
    logging.basicConfig(level=logging.ERROR)
    cfg = Config(
        remotes=args.remotes or (2 if args.quick else 3),
        listeners=args.listeners or (5 if args.quick else 10),
        window=6.0 if args.quick else 15.0,
        direct_window=4.0 if args.quick else 8.0,
        joins=args.joins or (4 if args.quick else 8),
    )
    started = time.monotonic()
    result = asyncio.run(run(cfg))
    print(f"total {time.monotonic() - started:.0f}s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
