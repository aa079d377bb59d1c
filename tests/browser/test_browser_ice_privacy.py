"""Issue 19: browsers with their default ICE privacy (mDNS host candidates) join rooms.

Each browser runs in a network namespace of its own (tests/browser/netns.py), so its host
address is routable to the node but hidden behind an mDNS name in its offer; the node
cannot resolve the name and must answer with its own candidates and learn the browser's
address from its connectivity checks (peer-reflexive). Firefox ESR is driven through
WebDriver BiDi by a small Node script (tests/browser/firefox/driver.mjs); Chromium by
Playwright, with mDNS on (its default; the other browser tests turn it off).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from cli.app import NODE
from media.lite import LiteConnection
from tests.browser.browser_harness import (
    CHROMIUM_ARGS,
    ENERGY_HEARD,
    Person,
    chromium_in_namespace,
    require_chromium,
)
from tests.browser.netns import Namespace
from tests.support.audio import dominant_hz, loud_seconds, read_pcm, tone
from tests.support.cli import bot_room_url, creds, salon, stop_bot
from tests.support.nodes import Node

FIREFOX = Path("/usr/bin/firefox-esr")
DRIVER_DIR = Path(__file__).parent / "firefox"
DRIVER = DRIVER_DIR / "driver.mjs"
FIREFOX_MIC_HZ = 1000  # Firefox's fake microphone (media.navigator.streams.fake) is 1 kHz


def require_firefox() -> None:
    if not FIREFOX.exists():
        pytest.skip(f"needs Debian's firefox-esr at {FIREFOX} (apt-get install firefox-esr)")
    if shutil.which("node") is None or not (DRIVER_DIR / "node_modules/puppeteer-core").is_dir():
        reason = "needs Node.js and `npm ci` in tests/browser/firefox (scripts/test.sh does it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


async def host_bot(node: Node, ns: Namespace, tmp_path: Path) -> tuple[Any, str, Path]:
    """alice's `salon bot host`: plays 440 Hz, invites raised hands, records the stage."""
    recording = tmp_path / "host-heard.wav"
    host = await salon(
        "bot",
        "host",
        *creds(node, "alice", ns.host_ip),
        "--title",
        "Privacy check",
        "--play",
        str(tone(tmp_path / "440.wav", 440)),
        "--auto-invite",
        "--record",
        str(recording),
        "--seconds",
        "90",
    )
    room_url = await bot_room_url(host)
    assert room_url.startswith(node.url + "/rooms/"), room_url
    return host, room_url, recording


LOCAL_CANDIDATES = """async () => [...(await window.salonDebug.pc.getStats()).values()]
  .filter((s) => s.type === "local-candidate")"""


def remote_candidate_types(node: Node, room_url: str) -> dict[str, set[str]]:
    """How the node knows each participant's address: the type of the signalled candidate
    its ICE-lite agent selected, or "prflx" (RFC 8445 §7.3.1.3) when the selected address
    was never signalled and was learned from the client's authenticated checks."""
    media = node.app[NODE].audio.engine.get(room_url.rsplit("/", 1)[1]) if node.app else None
    types: dict[str, set[str]] = {}
    for name in media.participants if media else []:
        session = media.session(name) if media else None
        if session is not None and session.transceiver is not None:
            transport = session.transceiver.sender.transport
            if transport is not None:
                connection = transport.transport._connection
                assert isinstance(connection, LiteConnection)
                selected = connection.selected
                signalled = {(c.host, c.port): c.type for c in connection.remote_candidates}
                if selected is None:
                    types[name] = set()
                else:
                    types[name] = {signalled.get(selected.addr, "prflx")}
    return types


async def watch_candidates(node: Node, room_url: str, seen: list[set[str]]) -> None:
    """Until cancelled, note every participant's remote candidate types twice a second."""
    while True:
        for found in remote_candidate_types(node, room_url).values():
            if found not in seen:
                seen.append(found)
        await asyncio.sleep(0.5)


def assert_mdns_only(offered: list[str]) -> None:
    """The browser hid its host address: every UDP candidate is an mDNS name."""
    udp = [line for line in offered if " udp " in line.lower()]
    assert udp, offered
    assert all(line.split()[4].endswith(".local") for line in udp), offered


@pytest.mark.timeout(150)
async def test_firefox_default_privacy_listens_speaks_leaves(
    namespaced_node: tuple[Node, Namespace], tmp_path: Path
) -> None:
    require_firefox()
    node, ns = namespaced_node
    host, room_url, recording = await host_bot(node, ns, tmp_path)
    config = {
        "base": node.url,
        "room": room_url,
        "user": "bob",
        "password": "password123",
        "listenSeconds": 3,
        "speakSeconds": 4,
        "browse": True,
    }
    started = time.monotonic()
    try:
        driver = await asyncio.create_subprocess_exec(
            *ns.command("node", str(DRIVER), json.dumps(config)),
            cwd=DRIVER_DIR,
            env={**os.environ, "HOME": str(tmp_path)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        seen: list[set[str]] = []
        watcher = asyncio.ensure_future(watch_candidates(node, room_url, seen))
        try:
            out, err = await asyncio.wait_for(driver.communicate(), 120)
        finally:
            watcher.cancel()
    finally:
        await stop_bot(host)
    print(f"firefox story took {time.monotonic() - started:.1f} s")
    lines = out.decode().strip().splitlines()
    assert lines, err.decode()[-3000:]
    report = json.loads(lines[-1])
    failure = report.get("failure"), report.get("listening"), report["steps"][-3:]
    assert driver.returncode == 0 and "failure" not in report, (failure, err.decode()[-2000:])
    print("firefox report:", json.dumps({k: report[k] for k in ("version", "listening", "ice")}))

    # Firefox as shipped: mDNS host candidates only, then end-of-candidates
    assert_mdns_only(report["ice"]["offered"])
    assert report["ice"]["endOfCandidates"]
    # ... and ICE still completed on its real address, which the node learned from its checks
    # ... and ICE still completed (Firefox's stats keep its own address hidden too); the node
    # learned the real address from Firefox's checks
    assert report["ice"]["local"]["address"].endswith(".local"), report["ice"]
    assert report["ice"]["remote"]["address"] == ns.host_ip, report["ice"]
    assert {"prflx"} in seen, seen  # the node knew Firefox only from its checks

    # Firefox hears the bot's tone: 50 packets a second, energy of a 0.3 full-scale tone
    heard = report["listening"]
    assert heard["state"] == "connected" and heard["packets"] >= 40 * heard["seconds"], heard
    assert heard["energy"] > ENERGY_HEARD * heard["seconds"], heard
    # ... and keeps hearing it in the hallway (the player that stays), then returns to the
    # same session: the same peer connection, no second join
    browsing = report["browsing"]
    assert browsing["state"] == "connected" and browsing["packets"] > 0, browsing
    assert browsing["energy"] > ENERGY_HEARD * browsing["seconds"], browsing
    assert report["sameSession"] is True, report["steps"]

    pcm = read_pcm(recording)
    assert abs(dominant_hz(pcm) - FIREFOX_MIC_HZ) <= 5, dominant_hz(pcm)
    assert loud_seconds(pcm) >= 2.0, loud_seconds(pcm)
    assert not report["errors"], report["errors"]


@pytest.mark.timeout(120)
async def test_chromium_with_mdns_on_hears_and_is_heard(
    namespaced_node: tuple[Node, Namespace], tmp_path: Path
) -> None:
    require_chromium()
    node, ns = namespaced_node
    # Chromium's defaults for ICE: mDNS on, no loopback candidate. It also stops hiding its
    # address once the page may use the microphone, so no fake-UI auto-grant: the test
    # grants the microphone only when bob goes on stage, after his first offer.
    dropped = ("WebRtcHideLocalIpsWithMdns", "allow-loopback", "use-fake-ui-for-media-stream")
    args = [a for a in CHROMIUM_ARGS if not any(d in a for d in dropped)]
    args.append(f"--use-file-for-fake-audio-capture={tone(tmp_path / '660.wav', 660)}")
    # plain http on a private address: let it use the microphone as https would
    args.append(f"--unsafely-treat-insecure-origin-as-secure={node.url}")

    host, room_url, recording = await host_bot(node, ns, tmp_path)
    try:
        async with chromium_in_namespace(ns, tmp_path, args) as browser:
            context = await browser.new_context()
            page = await context.new_page()
            page.set_default_timeout(15_000)
            bob = Person(page, node.url, "bob")
            await bob.join_and_hear(room_url, "Privacy check", timeout=20)
            sdp = await bob.page.evaluate("() => window.salonDebug.pc.localDescription.sdp")
            # Chromium hides its host address (its stats too) and offers no candidate
            # the node could resolve: the node knows bob only as peer-reflexive
            assert ".local " in sdp or "a=candidate:" not in sdp, sdp
            local = await bob.page.evaluate(LOCAL_CANDIDATES)
            hosts = [c for c in local if (c["candidateType"], c["protocol"]) == ("host", "udp")]
            assert hosts and not any(c.get("address") for c in hosts), local
            assert {"prflx"} in remote_candidate_types(node, room_url).values()

            await context.grant_permissions(["microphone"], origin=node.url)
            await bob.button("Raise hand")
            await bob.button("Join as speaker")
            await bob.page.get_by_role("button", name="Mute", exact=True).wait_for()
            await asyncio.sleep(4)  # the bot records the browser speaking
            await bob.button("Leave quietly")
            await bob.page.get_by_text("You left the room.").wait_for()
            assert not bob.errors, bob.errors
    finally:
        await stop_bot(host)
    pcm = read_pcm(recording)
    assert abs(dominant_hz(pcm) - 660) <= 5, dominant_hz(pcm)
    assert loud_seconds(pcm) >= 2.0, loud_seconds(pcm)
