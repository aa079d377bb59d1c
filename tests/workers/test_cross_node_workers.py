"""A cross-node room where both nodes use media workers (issue 15).

A's room is mixed on one of A's workers; B's trunk to it goes to that worker (the UDP end
A hands out is the worker's address), and B carries its users with a relay on one of B's
own workers. B's speaker is heard on A, and A's host on B."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.workers.federated import WorkerRelay
from tests.support.audio import read_pcm, tone
from tests.support.network import AUDIO, eventually
from tests.support.nodes import Node, NodeFactory
from tests.support.workers import (
    band_share,
    hears_again,
    kill_worker,
    listen_bot,
    longest_quiet,
    outcome,
    tone_host,
    worker_audio,
    workers_ready,
)


async def _nodes(node_factory: NodeFactory, a_workers: int, b_workers: int) -> tuple[Node, Node]:
    """Nodes A (with alice) and B (with bob), each with that many local workers (0: none)."""
    nodes = []
    for name, count in (("a", a_workers), ("b", b_workers)):
        node = await node_factory(name, **AUDIO, **({"media_workers": count} if count else {}))
        if count:
            await workers_ready(node, count)
        nodes.append(node)
    a, b = nodes
    await a.user("alice")
    await b.user("bob")
    return a, b


async def _relayed(node: Node) -> WorkerRelay:
    """The one relay NODE's workers run for its users in a room hosted elsewhere."""
    remote = worker_audio(node)

    async def relayed() -> bool:
        return bool(remote.remote_relays)

    await eventually(relayed, timeout=20)
    (relay,) = remote.remote_relays.values()
    return relay


@pytest.mark.timeout(180)
async def test_origin_and_remote_nodes_both_on_workers(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    a, b = await _nodes(node_factory, 2, 2)
    await a.user("carol")
    host, url, room_id = await tone_host(
        a, tmp_path, "Across workers", "--auto-invite", "--record", str(tmp_path / "alice.wav"),
        seconds=30,
    )  # fmt: skip
    carol = await listen_bot(a, url, "carol", 12, record=tmp_path / "carol.wav")
    bob = await listen_bot(
        b, url, "bob", 10, "--raise-hand", "--play", str(tone(tmp_path / "880.wav", 880)),
        record=tmp_path / "bob.wav",
    )  # fmt: skip
    relay = await _relayed(b)
    remote = worker_audio(b)
    assert relay.worker in {w.id for w in remote.pool.workers()}  # B's relay on B's worker
    mixer = worker_audio(a).placements[room_id].mixer
    state = worker_audio(a).pool.get(mixer or "")
    assert state is not None
    # neither node's own process carries the room's media: the workers do
    assert worker_audio(a).engine.rooms() == [] and worker_audio(b).engine.rooms() == []
    for proc in (bob, carol):
        await outcome(proc)
    await outcome(host, stop=True)
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
    a, b = await _nodes(node_factory, 2, 0)
    host, url, room_id = await tone_host(a, tmp_path, "Across a failover", seconds=40)
    bob = await listen_bot(b, url, "bob", 16, record=tmp_path / "bob.wav")
    audio = worker_audio(a)

    async def trunked() -> bool:
        return bool(audio.origin_trunks.get(room_id))

    await eventually(trunked, timeout=20)
    await asyncio.sleep(3)  # bob hears the room for a while
    mixer = audio.placements[room_id].mixer
    assert mixer is not None
    kill_worker(a, mixer)
    await outcome(bob)
    assert audio.placements[room_id].mixer not in (None, mixer)
    host.send_signal(2)
    await host.communicate()
    hears_again(tmp_path / "bob.wav")


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("how", "bound"), [("kill", 3.0), ("drain", 1.0)])
async def test_a_remote_rooms_relay_moves_when_its_worker_dies_or_drains(
    node_factory: NodeFactory, tmp_path: Path, how: str, bound: float
) -> None:
    """B carries bob's place in A's room on one of B's workers. That worker is killed: the
    relay moves to B's other worker, B opens its trunk to A again and bob reconnects — he
    hears A's host again within 3 s. It is drained (`salon admin worker drain`): the same
    move, with no gap over 1 s (the issue's bounds), and the old relay is closed."""
    a, b = await _nodes(node_factory, 0, 2)
    host, url, _ = await tone_host(a, tmp_path, "Relay failover", seconds=40, tone_seconds=3)
    bob = await listen_bot(b, url, "bob", 12, record=tmp_path / "bob.wav")
    relay = await _relayed(b)
    await asyncio.sleep(3)
    old = relay.worker
    if how == "kill":
        kill_worker(b, old)
    else:  # two drains in the same turn of the loop (an admin who clicks twice): one move
        audio = worker_audio(b)
        await asyncio.gather(audio.drain(old), audio.drain(old))
    summary = await outcome(bob)
    print("gaps:", summary["gaps"], "longest:", summary["longest_gap"])
    assert relay.worker != old
    assert summary["moves"] == 1
    assert summary["longest_gap"] <= bound, summary["gaps"]
    host.send_signal(2)
    await host.communicate()
    heard = read_pcm(tmp_path / "bob.wav")
    assert longest_quiet(heard) <= bound
    assert band_share(heard[-48_000 * 3 :], 440) > 0.3
    if how == "drain":
        state = worker_audio(b).pool.get(old)
        assert state is not None and state.draining
        assert int(state.load.get("rooms", 0)) == 0, state.load  # the old relay closed
