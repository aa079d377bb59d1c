"""Attacks on a media worker's ICE-TCP port (issue 15): it is open to anyone, like the
node's own `media_tcp_port`.

- a stranger's connections that do not open with a valid STUN Binding request for one of
  the worker's sessions (garbage, an oversized RFC 4571 frame, a DTLS record, a Binding
  request for an unknown username) are closed without an answer, and the worker goes on
  serving (heartbeats, still ready, no TCP path bound);
- a port out of range on the command line is refused before anything starts.
"""

from __future__ import annotations

import asyncio

import pytest
from aioice import stun

from media.port import MAX_TCP_FRAME
from tests.support.cli import salon
from tests.support.network import eventually
from tests.support.nodes import NodeFactory
from tests.support.workers import worker_audio, workers_ready


def _framed(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _binding(username: str) -> bytes:
    message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    message.attributes["USERNAME"] = username
    message.attributes["PRIORITY"] = 1853817087
    message.attributes["ICE-CONTROLLING"] = 1
    message.attributes["USE-CANDIDATE"] = None
    message.add_message_integrity(b"a guessed password")
    return bytes(message)


@pytest.mark.timeout(60)
async def test_strangers_on_a_workers_tcp_port_are_closed_and_it_keeps_serving(
    node_factory: NodeFactory,
) -> None:
    node = await node_factory(ice_addresses=("127.0.0.1",), media_workers=1)
    [worker] = await workers_ready(node, 1)
    pool = worker_audio(node).pool

    async def tcp_port() -> int:
        state = pool.get(worker)
        return int(state.load.get("media_tcp_port", 0)) if state is not None else 0

    port = await eventually(tcp_port, timeout=10)
    for opening in (
        b"\x00\x05hello",
        (MAX_TCP_FRAME + 1).to_bytes(2, "big") + bytes(8),
        _framed(bytes([22, 0xFE, 0xFD]) + bytes(20)),
        _framed(_binding("nobody:guess")),
        bytes(70_000),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(opening)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b"", opening[:8]  # no answer
        writer.close()
    state = pool.get(worker)
    assert state is not None
    beats = state.beats

    async def still_serving() -> bool:
        found = pool.get(worker)
        return found is not None and found.ready and found.beats >= beats + 3

    await eventually(still_serving, timeout=10)
    assert state.load["tcp_paths"] == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value", ["70000", "-1"])
async def test_a_tcp_port_out_of_range_is_refused(value: str) -> None:
    process = await salon(
        "media-worker", "--node", "http://127.0.0.1:9", "--socket", "/nonexistent/bus",
        "--media-tcp-port", value,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert "error: --media-tcp-port must be 0-65535" in err.decode()
