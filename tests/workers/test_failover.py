"""Failover and drain (issue 15), with real worker processes killed by SIGKILL.

- a listener worker dies: its listeners are told to reconnect, are placed on other
  workers and hear audio again within 3 s (the issue's bound; measured as the longest gap
  between two packets a bot received);
- the mixer worker dies: the room's mixer opens on another worker, the other workers'
  relays are re-keyed to it, and everyone hears the host again within 3 s;
- `salon admin worker drain ID`: its listeners move make-before-break, with no gap over
  1 s, and no new session is placed there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.audio import read_pcm
from tests.support.network import eventually
from tests.support.nodes import Node, NodeFactory
from tests.support.workers import (
    SECRET,
    Redis,
    crowd,
    drain_worker,
    hearing,
    kill_worker,
    longest_quiet,
    node_on_workers,
    redis_workers,
    tail_share,
    worker_audio,
    workers_ready,
)

LISTENERS = ("bob", "carol", "dave", "frank", "gina")


@pytest.mark.timeout(180)
async def test_listeners_of_a_killed_worker_hear_again_within_3_s(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = await node_on_workers(node_factory, 3)
    await _kill_a_listener_worker(node, tmp_path)


@pytest.mark.timeout(180)
async def test_a_redis_worker_killed_is_noticed_by_its_heartbeat(
    node_factory: NodeFactory, tmp_path: Path, redis_server: Redis
) -> None:
    """Redis workers are not the node's children: only the expired heartbeat key tells."""
    node = await node_factory(
        ice_addresses=("127.0.0.1",), redis_url=redis_server.url, worker_secret=SECRET
    )
    with redis_workers(node, redis_server, 3):
        await workers_ready(node, 3)
        await _kill_a_listener_worker(node, tmp_path)


async def _kill_a_listener_worker(node: Node, tmp_path: Path) -> None:
    room = await crowd(node, tmp_path, LISTENERS)
    mixer = room.where["alice"]
    victim = next(w for n, w in room.where.items() if w != mixer)
    moved = [n for n, w in room.where.items() if w == victim]
    await hearing(node, victim)
    kill_worker(node, victim)
    outcomes = await room.outcomes()
    print("longest gaps:", {n: o["longest_gap"] for n, o in outcomes.items()}, "moved:", moved)
    for name in LISTENERS:
        outcome = outcomes[name]
        if name in moved:
            assert outcome["moves"] == 1, name
            assert outcome["longest_gap"] <= 3.0, (name, outcome["gaps"])
            assert longest_quiet(read_pcm(tmp_path / f"{name}.wav")) <= 3.0, name
        else:
            assert outcome["moves"] == 0, name
        assert tail_share(tmp_path / f"{name}.wav", 440) > 0.05, f"{name} hears the host"


@pytest.mark.timeout(180)
async def test_the_room_survives_its_mixer_worker(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = await node_on_workers(node_factory, 3)
    room = await crowd(node, tmp_path, LISTENERS)
    mixer = room.where["alice"]
    await hearing(node, mixer)
    kill_worker(node, mixer)
    outcomes = await room.outcomes()
    print("longest gaps:", {n: o["longest_gap"] for n, o in outcomes.items()})
    assert outcomes["alice"]["moves"] == 1  # the host's session moved with the mixer
    placement = worker_audio(node).placements.get(room.room_id)
    assert placement is None or placement.mixer != mixer
    for name in LISTENERS:
        assert outcomes[name]["longest_gap"] <= 3.0, (name, outcomes[name]["gaps"])
        assert longest_quiet(read_pcm(tmp_path / f"{name}.wav")) <= 3.0, name
        assert tail_share(tmp_path / f"{name}.wav", 440) > 0.05, f"{name} hears the host"


@pytest.mark.timeout(180)
async def test_drain_moves_listeners_without_a_gap_over_1_s(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = await node_on_workers(node_factory, 3)
    room = await crowd(node, tmp_path, LISTENERS)
    mixer = room.where["alice"]
    drained = next(w for n, w in room.where.items() if w != mixer)
    moved = [n for n, w in room.where.items() if w == drained]
    await hearing(node, drained)
    await drain_worker(node, drained)
    outcomes = await room.outcomes()
    print("longest gaps:", {n: o["longest_gap"] for n, o in outcomes.items()}, "moved:", moved)
    for name in moved:
        assert outcomes[name]["moves"] == 1, name
        assert outcomes[name]["longest_gap"] <= 1.0, (name, outcomes[name]["gaps"])
        assert longest_quiet(read_pcm(tmp_path / f"{name}.wav")) <= 1.0, name
        assert tail_share(tmp_path / f"{name}.wav", 440) > 0.05, f"{name} hears the host"
    state = worker_audio(node).pool.get(drained)
    assert state is not None and state.draining
    assert worker_audio(node).worker_views()  # still listed, placed nothing new
    assert all(v["placed"] == 0 for v in worker_audio(node).worker_views() if v["id"] == drained)


@pytest.mark.timeout(180)
async def test_draining_the_mixer_worker_moves_the_mixer_without_a_gap(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    """The mixer moves make-before-break: a successor opens on a worker without the room,
    the host reconnects there, then bob's relay switches to the new mixer's trunk."""
    node = await node_on_workers(node_factory, 3)
    room = await crowd(node, tmp_path, ("bob",), seconds=16)
    old = room.where["alice"]
    assert room.where["bob"] != old
    await hearing(node, room.where["bob"])
    await drain_worker(node, old)
    placement = worker_audio(node).placements[room.room_id]

    async def moved() -> bool:
        return placement.mixer not in (None, old) and placement.next_mixer is None

    await eventually(moved, timeout=20)
    assert placement.mixer != room.where["bob"]
    outcomes = await room.outcomes()
    print("drained mixer:", {n: o["longest_gap"] for n, o in outcomes.items()})
    assert outcomes["alice"]["moves"] == 1
    assert outcomes["bob"]["moves"] == 0  # bob's relay stayed; only its trunk changed
    heard = read_pcm(tmp_path / "bob.wav")
    assert outcomes["bob"]["longest_gap"] <= 1.0
    assert longest_quiet(heard) <= 1.0, "bob hears the host through the switch"
    assert tail_share(tmp_path / "bob.wav", 440) > 0.05
