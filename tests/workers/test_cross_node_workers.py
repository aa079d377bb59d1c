"""A cross-node room where both nodes use media workers (issue 15).

A's room is mixed on one of A's workers; B's trunk to it goes to that worker (the UDP end
A hands out is the worker's address), and B carries its users with a relay on one of B's
own workers. B's speaker is heard on A, and A's host on B."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from tests.support.audio import read_pcm, tone
from tests.support.cli import bot_room_url, creds, salon
from tests.support.network import AUDIO, eventually
from tests.support.nodes import NodeFactory
from tests.support.workers import band_share, longest_quiet, worker_audio, workers_ready


@pytest.mark.timeout(180)
async def test_origin_and_remote_nodes_both_on_workers(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    a = await node_factory("a", **AUDIO, media_workers=2)
    b = await node_factory("b", **AUDIO, media_workers=2)
    await workers_ready(a, 2)
    await workers_ready(b, 2)
    await a.user("alice")
    await a.user("carol")
    await b.user("bob")
    host = await salon(
        "bot",
        "host",
        *creds(a, "alice"),
        "--title",
        "Across workers",
        "--auto-invite",
        "--play",
        str(tone(tmp_path / "440.wav", 440)),
        "--record",
        str(tmp_path / "alice.wav"),
        "--seconds",
        "30",
    )
    url = await bot_room_url(host)
    room_id = url.rsplit("/", 1)[-1]
    carol = await salon(
        "bot",
        "listen",
        url,
        *creds(a, "carol"),
        "--record",
        str(tmp_path / "carol.wav"),
        "--seconds",
        "12",
    )
    bob = await salon(
        "bot",
        "listen",
        url,
        *creds(b, "bob"),
        "--raise-hand",
        "--play",
        str(tone(tmp_path / "880.wav", 880)),
        "--record",
        str(tmp_path / "bob.wav"),
        "--seconds",
        "10",
    )
    remote = worker_audio(b)

    async def relayed() -> bool:
        return bool(remote.remote_relays)

    await eventually(relayed, timeout=20)
    (relay,) = remote.remote_relays.values()
    assert relay.worker in {w.id for w in remote.pool.workers()}  # B's relay on B's worker
    mixer = worker_audio(a).placements[room_id].mixer
    state = worker_audio(a).pool.get(mixer or "")
    assert state is not None
    # neither node's own process carries the room's media: the workers do
    assert worker_audio(a).engine.rooms() == [] and worker_audio(b).engine.rooms() == []
    for name, proc in (("bob", bob), ("carol", carol)):
        _, err = await proc.communicate()
        assert proc.returncode == 0, (name, err.decode()[-2000:])
    host.send_signal(2)
    _, err = await host.communicate()
    assert host.returncode == 0, err.decode()[-2000:]
    three = 48000 * 3
    assert band_share(read_pcm(tmp_path / "alice.wav"), 880) > 0.05, "A's host hears B's bob"
    at_carol = read_pcm(tmp_path / "carol.wav")[-three:]
    assert band_share(at_carol, 440) > 0.05 and band_share(at_carol, 880) > 0.05
    at_bob = read_pcm(tmp_path / "bob.wav")[-three:]
    assert band_share(at_bob, 440) > 0.3 and band_share(at_bob, 880) < 0.02  # mix-minus


@pytest.mark.timeout(180)
async def test_a_remote_listener_follows_the_origin_mixer_when_its_worker_dies(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    """A's mixer worker is killed: the room's mixer opens on A's other worker, A closes B's
    trunk with 1012 and B opens it again, to the new mixer's address: bob on B hears A's
    host again within the issue's 3 s."""
    a = await node_factory("a", **AUDIO, media_workers=2)
    b = await node_factory("b", **AUDIO)
    await workers_ready(a, 2)
    await a.user("alice")
    await b.user("bob")
    host = await salon(
        "bot",
        "host",
        *creds(a, "alice"),
        "--title",
        "Across a failover",
        "--play",
        str(tone(tmp_path / "440.wav", 440)),
        "--seconds",
        "40",
    )
    url = await bot_room_url(host)
    room_id = url.rsplit("/", 1)[-1]
    bob = await salon(
        "bot",
        "listen",
        url,
        *creds(b, "bob"),
        "--record",
        str(tmp_path / "bob.wav"),
        "--seconds",
        "16",
    )
    audio = worker_audio(a)

    async def trunked() -> bool:
        return bool(audio.origin_trunks.get(room_id))

    await eventually(trunked, timeout=20)
    await asyncio.sleep(3)  # bob hears the room for a while
    mixer = audio.placements[room_id].mixer
    state = audio.pool.get(mixer or "")
    assert state is not None
    os.kill(state.pid, signal.SIGKILL)
    _, err = await bob.communicate()
    assert bob.returncode == 0, err.decode()[-2000:]
    assert audio.placements[room_id].mixer not in (None, mixer)
    host.send_signal(2)
    await host.communicate()
    heard = read_pcm(tmp_path / "bob.wav")
    assert longest_quiet(heard) <= 3.0
    assert band_share(heard[-48000 * 3 :], 440) > 0.3


@pytest.mark.timeout(180)
async def test_a_remote_rooms_relay_moves_when_its_worker_dies(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    """B carries bob's place in A's room on one of B's workers; that worker is killed: the
    relay moves to B's other worker, B opens its trunk to A again and bob reconnects —
    he hears A's host again within 3 s."""
    a = await node_factory("a", **AUDIO)
    b = await node_factory("b", **AUDIO, media_workers=2)
    await workers_ready(b, 2)
    await a.user("alice")
    await b.user("bob")
    host = await salon(
        "bot",
        "host",
        *creds(a, "alice"),
        "--title",
        "Relay failover",
        "--play",
        str(tone(tmp_path / "440.wav", 440)),
        "--seconds",
        "40",
    )
    url = await bot_room_url(host)
    bob = await salon(
        "bot",
        "listen",
        url,
        *creds(b, "bob"),
        "--record",
        str(tmp_path / "bob.wav"),
        "--seconds",
        "16",
    )
    remote = worker_audio(b)

    async def relayed() -> bool:
        return bool(remote.remote_relays)

    await eventually(relayed, timeout=20)
    await asyncio.sleep(3)
    (relay,) = remote.remote_relays.values()
    old = relay.worker
    state = remote.pool.get(old)
    assert state is not None
    os.kill(state.pid, signal.SIGKILL)
    out, err = await bob.communicate()
    assert bob.returncode == 0, err.decode()[-2000:]
    assert relay.worker != old
    assert json.loads(out.decode().strip().splitlines()[-1])["moves"] == 1
    host.send_signal(2)
    await host.communicate()
    heard = read_pcm(tmp_path / "bob.wav")
    assert longest_quiet(heard) <= 3.0
    assert band_share(heard[-48000 * 3 :], 440) > 0.3
