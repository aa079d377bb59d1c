"""A cross-node room under packet loss: two real nodes and three real `salon bot`s.

Node A hosts the room (alice's host bot plays a WAV), bob listens on A and carol on B
(through the relay trunk). Run inside a network namespace whose nftables drop a share of
every UDP packet (``Netns`` below), it loses packets on every leg: speaker → A, A → bob,
A ⇄ B (trunk), B → carol. Used by bench/loss.py and tests/network/test_loss.py:

    python -m tests.support.lossy_room --play speech.wav --seconds 20 --out DIR [--no-protect]

prints one JSON line: each listener's bot outcome plus its recording's path. With
``--speaker-only``: one node and its host bot, whose outcome (``uplink_fec``: what the
node's receiver reports made of its encoder's expected loss) is the line; with
``--no-protect`` there only the node's protection is off (it answers no RED).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.app import NODE
from tests.support.network import AUDIO
from tests.support.nodes import Node, free_port, make_settings

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Netns:
    """A network namespace with only a loopback interface and a random UDP drop."""

    name: str

    def command(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def set_loss(self, percent: int) -> None:
        """Drop PERCENT % of every UDP packet leaving any socket in the namespace."""
        set_udp_loss(self.command, percent, ("output",))


def set_udp_loss(command: Callable[..., list[str]], percent: int, hooks: tuple[str, ...]) -> None:
    """nftables in the namespace COMMAND runs in: drop PERCENT % of UDP at each of HOOKS
    (``output``: every packet a socket there sends; ``input``: every one it receives)."""
    rules = "flush ruleset\n"
    if percent > 0:
        rules += "table inet salon_loss {\n"
        for hook in hooks:
            rules += (
                f"  chain {hook} {{\n"
                f"    type filter hook {hook} priority 0; policy accept;\n"
                f"    meta l4proto udp numgen random mod 100 < {percent} drop\n"
                "  }\n"
            )
        rules += "}\n"
    subprocess.run(command("nft", "-f", "-"), input=rules, text=True, check=True, timeout=10)


def netns_available() -> str | None:
    """Why a lossy namespace cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root for a network namespace"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (iproute2, nftables)"
    return None


@contextlib.contextmanager
def lossy_namespace() -> Iterator[Netns]:
    ns = Netns(f"salon-loss-{secrets.token_hex(3)}")
    subprocess.run(["ip", "netns", "add", ns.name], check=True, timeout=10)
    try:
        subprocess.run(ns.command("ip", "link", "set", "lo", "up"), check=True, timeout=10)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns.name], check=False, timeout=10)


def run_in(
    ns: Netns,
    play: Path,
    seconds: float,
    out: Path,
    protect: bool,
    passthrough: bool = True,
    trace: bool = False,
) -> dict[str, Any]:
    """One session inside NS (a subprocess: the namespace is per process); TRACE: each
    bot writes what it sent and received next to the recordings (``*.trace``)."""
    argv = [sys.executable, "-m", "tests.support.lossy_room", "--play", str(play)]
    argv += ["--seconds", str(seconds), "--out", str(out)]
    if trace:
        argv.append("--trace")
    if not protect:
        argv.append("--no-protect")
    if not passthrough:
        argv.append("--no-passthrough")
    return _inside(ns, argv, seconds, "lossy session")


def run_speaker_in(
    ns: Netns, play: Path, seconds: float, out: Path, red: bool = True
) -> dict[str, Any]:
    """One node and a host bot speaking SECONDS inside NS: the host bot's outcome.
    RED=False: the node answers no ``audio/red`` (its loss protection off, as on a node
    that predates it), so the bot sends plain Opus and protects it with in-band FEC."""
    argv = [sys.executable, "-m", "tests.support.lossy_room", "--play", str(play)]
    argv += ["--seconds", str(seconds), "--out", str(out), "--speaker-only"]
    if not red:
        argv.append("--no-protect")
    return _inside(ns, argv, seconds, "lossy speaker")


def _inside(ns: Netns, argv: list[str], seconds: float, what: str) -> dict[str, Any]:
    """Run ARGV in NS (this module's ``main``) and return the JSON its last line prints."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        ns.command(*argv), env=env, capture_output=True, text=True, timeout=seconds + 120
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ---- inside the namespace ------------------------------------------------------------------


async def _bot(
    env: dict[str, str], *args: str, trace: Path | None = None
) -> asyncio.subprocess.Process:
    """A ``salon bot``; with TRACE, tests/support/traced_bot.py writes what it sent and
    received there (bench/loss.py ``--trace``)."""
    module = "cli" if trace is None else "tests.support.traced_bot"
    if trace is not None:
        env = {**env, "SALON_TRACE": str(trace)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        "bot",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _finish(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"bot failed: {err.decode()[-2000:]}")
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


def _creds(node: Node, user: str) -> list[str]:
    return [
        *("--node", node.url, "--user", user, "--password", "password123"),
        *("--ice-address", "127.0.0.1"),
    ]


async def session(
    play: Path,
    seconds: float,
    out: Path,
    protect: bool,
    passthrough: bool = True,
    trace: bool = False,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    node_trace = _trace_node() if trace else None
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SALON_LOSS_PROTECTION": "true" if protect else "false",
    }
    nodes = []
    for name in ("a", "b"):
        settings = make_settings(
            out / f"node-{name}",
            port=free_port(),
            loss_protection=protect,
            speaker_passthrough=passthrough,
            **AUDIO,
        )
        nodes.append(await Node(settings).start())
    a, b = nodes
    try:
        for node, user in ((a, "alice"), (a, "bob"), (b, "carol")):
            await (await node.user()).signup(user)
        host = await _bot(
            env, "host", *_creds(a, "alice"), "--title", "Loss", "--play", str(play),
            "--seconds", str(seconds + 15), trace=out / "host.trace" if trace else None,
        )  # fmt: skip
        assert host.stdout is not None
        url = (await asyncio.wait_for(host.stdout.readline(), 30)).decode().strip()
        listeners = {}
        for node, user, key in ((a, "bob", "origin"), (b, "carol", "relay")):
            wav = out / f"{key}.wav"
            proc = await _bot(
                env, "listen", url, *_creds(node, user), "--record", str(wav),
                "--seconds", str(seconds), trace=out / f"{key}.trace" if trace else None,
            )  # fmt: skip
            listeners[key] = (proc, wav)
        result: dict[str, Any] = {}
        for key, (proc, wav) in listeners.items():
            result[key] = {**await _finish(proc, seconds + 60), "wav": str(wav)}
        assert a.app is not None
        engine = a.app[NODE].audio.engine
        result["origin_late_ticks"] = engine.stats()["late_ticks"]
        for room in engine.rooms():
            result["origin_uplink"] = dataclasses.asdict(room.conceal_stats)
            if room.passthrough is not None:
                result["passthrough_ticks"] = dataclasses.asdict(room.passthrough.stats)
            for name in room.participants:
                session = room.session(name)
                if session is not None and session.uplink.jitter.stats.received:
                    result[f"jitter_{name}"] = dataclasses.asdict(session.uplink.jitter.stats)
        host.terminate()
        with contextlib.suppress(asyncio.TimeoutError, RuntimeError):
            # the speaker's encoder: the FEC share the origin's receiver reports drove it to
            result["origin_speaker_fec"] = (await _finish(host, 20)).get("uplink_fec", {})
        if node_trace is not None:
            with open(out / "node.trace", "w") as f:
                f.writelines(json.dumps(e) + "\n" for e in node_trace)
        return result
    finally:
        for node in nodes:
            await node.stop()


def _trace_node() -> list[dict[str, Any]]:
    """Write down, in this process (both nodes), when each uplink packet reached a speaker's
    jitter buffer and when each mixer tick ran (bench/loss.py ``--trace``: bench/replay.py
    plays the same arrivals against the same ticks, timing-free)."""
    import time

    from media.engine import RoomMedia
    from media.session import Uplink

    trace: list[dict[str, Any]] = []
    push, tick = Uplink.push, RoomMedia.tick

    def traced_push(self: Uplink, sequence: int, payload: bytes, redundant: bool = False) -> None:
        trace.append({"k": "push", "t": time.monotonic(), "u": id(self), "seq": sequence,
                      "r": redundant, "p": payload.hex()})  # fmt: skip
        push(self, sequence, payload, redundant)

    def traced_tick(self: RoomMedia) -> None:
        trace.append({"k": "tick", "t": time.monotonic(), "room": id(self)})
        tick(self)

    Uplink.push = traced_push  # type: ignore[method-assign]
    RoomMedia.tick = traced_tick  # type: ignore[method-assign]
    return trace


async def speaker(play: Path, seconds: float, out: Path, node_protect: bool) -> dict[str, Any]:
    """A node and alice's host bot (it speaks SECONDS, then ends the room); the bot always
    protects its uplink, the node answers RED only with NODE_PROTECT."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SALON_LOSS_PROTECTION": "true"}
    settings = make_settings(out / "node", port=free_port(), loss_protection=node_protect, **AUDIO)
    node = await Node(settings).start()
    try:
        await (await node.user()).signup("alice")
        host = await _bot(
            env, "host", *_creds(node, "alice"), "--title", "Uplink", "--play", str(play),
            "--seconds", str(seconds),
        )  # fmt: skip
        return await _finish(host, seconds + 60)
    finally:
        await node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--play", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-protect", action="store_true")
    parser.add_argument("--no-passthrough", action="store_true")
    parser.add_argument("--speaker-only", action="store_true")
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.speaker_only:
        outcome = asyncio.run(speaker(args.play, args.seconds, args.out, not args.no_protect))
        print(json.dumps(outcome), flush=True)
        return
    result = asyncio.run(
        session(
            args.play,
            args.seconds,
            args.out,
            not args.no_protect,
            not args.no_passthrough,
            args.trace,
        )
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
