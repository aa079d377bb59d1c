"""Chromium joins a room through a real coturn (the node's `ice_transport_policy = "relay"`)
and hears a `salon bot host`; the selected ICE pair is a TURN relay."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.browser.browser_harness import Launch, Person
from tests.support.audio import tone
from tests.support.cli import creds, salon
from tests.support.network import eventually
from tests.support.nodes import NodeFactory
from tests.support.turn import running_coturn

SELECTED_PAIR_JS = """
async () => {
  const pc = window.salonDebug.pc;
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((r) => {
    const id = r.type === "transport" ? r.selectedCandidatePairId : null;
    if (id) pair = stats.get(id);
  });
  if (!pair || pair.state !== "succeeded") return null;
  const local = stats.get(pair.localCandidateId);
  const config = pc.getConfiguration();
  return {
    candidateType: local.candidateType,
    relayProtocol: local.relayProtocol || null,
    url: local.url || null,
    policy: config.iceTransportPolicy,
    servers: config.iceServers.map((s) => ({ urls: s.urls, username: s.username })),
  };
}
"""


@pytest.mark.timeout(120)
async def test_chromium_hears_a_bot_through_turn_relay(
    node_factory: NodeFactory, launch: Launch, tmp_path: Path
) -> None:
    async with running_coturn(tmp_path / "coturn") as coturn:
        node = await node_factory(
            ice_addresses=("127.0.0.1",),
            turn_servers=(coturn.server,),
            ice_transport_policy="relay",
        )
        await node.user("alice")
        host = await salon(
            "bot",
            "host",
            *creds(node, "alice"),
            "--title",
            "Relayed room",
            "--play",
            str(tone(tmp_path / "440.wav", 440)),
            "--seconds",
            "90",
        )
        try:
            assert host.stdout is not None
            room_url = (await asyncio.wait_for(host.stdout.readline(), 20)).decode().strip()
            assert room_url.startswith(node.url + "/rooms/")

            bob = await Person.open(await launch(), node.url, "bob")
            await bob.signup()
            await bob.page.goto(room_url)
            await bob.page.get_by_role("heading", name="Relayed room").wait_for()
            await bob.button("Join")
            await bob.wait_hearing(timeout=30)

            async def selected() -> Any:
                return await bob.page.evaluate(SELECTED_PAIR_JS)

            pair = await eventually(selected, timeout=20)
            assert pair["candidateType"] == "relay", pair
            assert pair["relayProtocol"] == "udp", pair
            assert pair["policy"] == "relay", pair
            assert [s["urls"] for s in pair["servers"]] == [[coturn.url]], pair
            assert re.fullmatch(r"[0-9]+:bob", pair["servers"][0]["username"]), pair
            assert not bob.errors, bob.errors
        finally:
            if host.returncode is None:
                host.send_signal(signal.SIGINT)
            await asyncio.wait_for(host.communicate(), 30)
        assert host.returncode == 0
    log = coturn.log()
    # both the browser (bob) and the bot (alice, following the node's policy) were relayed
    for user in ("bob", "alice"):
        pattern = rf"user <[0-9]+:{user}>: incoming packet ALLOCATE processed, success"
        assert re.search(pattern, log), f"no allocation for {user}"
