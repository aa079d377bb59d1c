"""``salon testnet up``: a local federation of N real nodes on 127.0.0.1 for demos and tests.

Each node is a real ``salon serve --testnet`` child process with its own data directory, so
what a developer sees is exactly what separate machines would do over HTTP. Demo users are
created through the same AccountService the ``salon user`` commands use; follows go through
the client API (sign in on the user's own node, ``POST /api/users/{handle}/follow``), so the
Follow → Accept exchange runs over real federation.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import permutations
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

from node.accounts import AccountError, AccountService
from node.clock import SystemClock
from node.datadir import DataDirError, ensure_data_dir
from node.settings import SettingsError, load_settings
from node.store.db import StoreError, open_database

log = logging.getLogger(__name__)

DEMO_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan")
DEMO_PASSWORD = "salon-demo"
MAX_NODES = len(DEMO_NAMES)
DEFAULT_NODES = 3
DEFAULT_BASE_PORT = 8101
DEFAULT_DIR = Path("salon-testnet")
LOOPBACK = "127.0.0.1"

START_TIMEOUT = 30.0  # seconds for every node to answer /api/instance
ACCEPT_TIMEOUT = 20.0  # seconds for every cross-node Follow to be Accepted
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL (nodes wait 5 s for requests)
READ_LIMIT = 1 << 20  # longest log line read from a node

# Child environment. ICE must offer loopback candidates or WebRTC cannot connect on one
# machine; retries are shortened (unless the caller set them) so a node restarted during
# a demo is reachable again within seconds instead of the production backoff of minutes.
FORCED_ENV = {"SALON_ICE_ADDRESSES": LOOPBACK, "PYTHONUNBUFFERED": "1"}
DEFAULT_ENV = {
    "SALON_DELIVERY_POLL_SECONDS": "0.2",
    "SALON_DELIVERY_BASE_DELAY_SECONDS": "1",
    "SALON_DELIVERY_JITTER_SECONDS": "1",
    "SALON_HOST_BACKOFF_SECONDS": "2",
    "SALON_ANNOUNCE_INTERVAL_SECONDS": "2",
    # every demo client signs up from 127.0.0.1: one address would get only 10 an hour
    "SALON_SIGNUP_PER_IP_PER_HOUR": "0",
    # nodes on one machine cannot share the default media ports: any free ones (each node
    # prints what it bound), unless the caller's environment names them
    "SALON_MEDIA_PORT": "0",
    "SALON_MEDIA_TCP_PORT": "0",
}


class TestnetError(Exception):
    """Bad input or a testnet that cannot start; ``code`` is the process exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class TestnetNode:
    index: int  # 1-based
    port: int
    data: Path
    user: str

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def handle(self) -> str:
        """How other nodes address this node's demo user."""
        return f"{self.user}@{LOOPBACK}:{self.port}"


@dataclass
class Running:
    node: TestnetNode
    proc: asyncio.subprocess.Process
    reader: asyncio.Task[None] = field(init=False)


# ---- planning and preparation (no processes yet) -------------------------------------------


def plan(nodes: int, base_port: int, directory: Path) -> list[TestnetNode]:
    if not 1 <= nodes <= MAX_NODES:
        raise TestnetError(f"--nodes must be between 1 and {MAX_NODES} (got {nodes})", 2)
    last = base_port + nodes - 1
    if base_port < 1 or last > 65535:
        raise TestnetError(f"ports {base_port}-{last} are outside 1-65535", 2)
    return [
        TestnetNode(k, base_port + k - 1, directory / f"node{k}", DEMO_NAMES[k - 1])
        for k in range(1, nodes + 1)
    ]


def check_ports(nodes: list[TestnetNode]) -> None:
    """Fail before starting anything, rather than leaving half a testnet running."""
    for node in nodes:
        with socket.socket() as probe:
            # as the node's server does: a port in TIME_WAIT after a restart is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((LOOPBACK, node.port))
            except OSError as exc:
                reason = "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
                first, last = nodes[0].port, nodes[-1].port
                raise TestnetError(
                    f"port {node.port} ({node.name}) is {reason}; the testnet needs ports "
                    f"{first}-{last} on {LOOPBACK} (choose others with --base-port)"
                ) from None


async def prepare(node: TestnetNode) -> bool:
    """Create the node's data directory and demo user; False when the user already existed."""
    try:
        ensure_data_dir(node.data)
        settings = load_settings(node.data, {"port": node.port, "testnet": True})
        db = open_database(settings.db_path)
    except SettingsError as exc:
        raise TestnetError(f"{node.name}: {exc}") from None
    except (DataDirError, StoreError) as exc:
        raise TestnetError(f"{node.name}: {exc}") from None
    except OSError as exc:
        raise TestnetError(f"cannot use {node.data}: {exc.strerror or exc}") from None
    try:
        accounts = AccountService(db, settings, SystemClock())
        if accounts.users.by_name(node.user) is not None:
            return False
        await accounts.create_user(node.user, DEMO_PASSWORD)
        return True
    except AccountError as exc:
        raise TestnetError(f"{node.name}: cannot create {node.user}: {exc.message}") from None
    finally:
        db.close()


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    env = {**DEFAULT_ENV, **environ, **FORCED_ENV}
    env.pop("SALON_URL", None)  # each node's URL is fixed by its port (passed as --url)
    return env


def serve_command(node: TestnetNode, log_level: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cli",
        "serve",
        "--data",
        str(node.data),
        "--host",
        LOOPBACK,
        "--port",
        str(node.port),
        "--url",
        node.url,
        "--testnet",
        "--log-level",
        log_level,
    ]


# ---- output ---------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[testnet] {message}", flush=True)


async def stream_log(name: str, stream: asyncio.StreamReader) -> None:
    """Copy a node's merged stdout/stderr line by line with its name in front."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line longer than READ_LIMIT: drop what was buffered
            continue
        if not line:
            return
        text = line.decode("utf-8", "replace").rstrip("\n")
        sys.stdout.write(f"[{name}] {text}\n")
        sys.stdout.flush()


def render_table(nodes: list[TestnetNode], follows: dict[tuple[str, str], str]) -> None:
    table = Table(title="Salon testnet")
    for column in ("node", "url", "user", "password", "handle (from other nodes)", "following"):
        table.add_column(column)
    for node in nodes:
        states = [follows.get((node.user, other.user), "-") for other in nodes if other != node]
        accepted = sum(state == "accepted" for state in states)
        table.add_row(
            node.name,
            node.url,
            node.user,
            DEMO_PASSWORD,
            node.handle,
            f"{accepted}/{len(states)} accepted",
        )
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 140)
    console.print(table)
    sys.stdout.flush()


# ---- talking to the nodes -------------------------------------------------------------------


async def wait_ready(http: aiohttp.ClientSession, running: list[Running]) -> None:
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT
    pending = list(running)
    while pending:
        for item in list(pending):
            if item.proc.returncode is not None:
                raise TestnetError(
                    f"{item.node.name} exited with status {item.proc.returncode} while starting "
                    "(see its log above)"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(item.node.url + "/api/instance") as resp:
                    if resp.status == 200:
                        pending.remove(item)
        if pending and asyncio.get_running_loop().time() > deadline:
            names = ", ".join(item.node.name for item in pending)
            raise TestnetError(f"{names} did not answer within {START_TIMEOUT:.0f} s")
        if pending:
            await asyncio.sleep(0.1)


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers) as resp:
        data = await resp.json(content_type=None)
        return resp.status, data


async def sign_in(http: aiohttp.ClientSession, node: TestnetNode) -> str:
    status, body = await call(
        http,
        "POST",
        node.url + "/api/auth/token",
        body={"username": node.user, "password": DEMO_PASSWORD, "label": "salon testnet"},
    )
    if status != 201:
        error = body.get("error") if isinstance(body, dict) else body
        raise TestnetError(
            f"{node.name}: cannot sign in as {node.user} with the demo password ({status}: "
            f"{error}); was the password changed in this --dir?"
        )
    return str(body["token"])


async def follow_all(
    http: aiohttp.ClientSession, nodes: list[TestnetNode], tokens: dict[str, str]
) -> dict[tuple[str, str], str]:
    """Every demo user follows every other (remote follows start 'pending')."""
    states: dict[tuple[str, str], str] = {}
    for a, b in permutations(nodes, 2):
        url = f"{a.url}/api/users/{b.handle}/follow"
        try:
            status, body = await call(http, "POST", url, tokens[a.user])
        except aiohttp.ClientError as exc:
            say(f"warning: {a.user} cannot follow {b.handle}: {exc}")
            continue
        if status == 200:
            states[(a.user, b.user)] = str(body["state"])
        else:
            say(f"warning: {a.user} cannot follow {b.handle}: {status} {body}")
    return states


async def wait_accepted(
    http: aiohttp.ClientSession,
    nodes: list[TestnetNode],
    tokens: dict[str, str],
    states: dict[tuple[str, str], str],
) -> None:
    """Poll each follower's view of the followee until the remote Accept has arrived."""
    by_user = {node.user: node for node in nodes}
    deadline = asyncio.get_running_loop().time() + ACCEPT_TIMEOUT
    while True:
        for (follower, followee), state in list(states.items()):
            if state == "accepted":
                continue
            a, b = by_user[follower], by_user[followee]
            with contextlib.suppress(aiohttp.ClientError):
                status, body = await call(
                    http, "GET", f"{a.url}/api/users/{b.handle}", tokens[a.user]
                )
                if status == 200 and body.get("followed_by_you"):
                    states[(follower, followee)] = str(body["followed_by_you"])
        waiting = [pair for pair, state in states.items() if state != "accepted"]
        if not waiting:
            return
        if asyncio.get_running_loop().time() > deadline:
            listed = ", ".join(f"{f}→{t}" for f, t in waiting)
            say(f"warning: follows still pending after {ACCEPT_TIMEOUT:.0f} s: {listed}")
            return
        await asyncio.sleep(0.2)


async def connect_users(nodes: list[TestnetNode]) -> dict[tuple[str, str], str]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        tokens = {node.user: await sign_in(http, node) for node in nodes}
        states = await follow_all(http, nodes, tokens)
        await wait_accepted(http, nodes, tokens, states)
        return states


async def wait_nodes(running: list[Running]) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        await wait_ready(http, running)


# ---- the process group ------------------------------------------------------------------------


class Testnet:
    def __init__(self, nodes: list[TestnetNode], log_level: str) -> None:
        self.nodes = nodes
        self.log_level = log_level
        self.running: list[Running] = []
        self.stop = asyncio.Event()
        self.signals = 0

    def on_signal(self) -> None:
        self.signals += 1
        if self.signals == 1:
            say("stopping all nodes (Ctrl-C again kills them)")
            self.stop.set()
        else:
            for item in self.running:
                if item.proc.returncode is None:
                    item.proc.kill()

    async def start(self) -> None:
        env = child_env(os.environ)
        for node in self.nodes:
            # A session of its own: a terminal's Ctrl-C reaches only this process, which
            # then stops the nodes in order (no double signal in the middle of shutdown).
            proc = await asyncio.create_subprocess_exec(
                *serve_command(node, self.log_level),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
                limit=READ_LIMIT,
            )
            item = Running(node, proc)
            assert proc.stdout is not None
            item.reader = asyncio.create_task(stream_log(node.name, proc.stdout))
            self.running.append(item)
            say(f"{node.name} started (pid {proc.pid}) on {node.url}, data {node.data}")

    async def watch(self) -> int:
        """Run until a signal (0) or until every node has exited on its own (1)."""
        waits = {asyncio.create_task(item.proc.wait()): item for item in self.running}
        stopper = asyncio.create_task(self.stop.wait())
        try:
            while waits:
                done, _ = await asyncio.wait({*waits, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if stopper in done:
                    return 0
                for task in done:
                    item = waits.pop(task)
                    say(f"{item.node.name} exited with status {item.proc.returncode}")
            say("every node has exited")
            return 1
        finally:
            stopper.cancel()
            for task in waits:
                task.cancel()

    async def shutdown(self) -> None:
        """SIGTERM every node, wait, SIGKILL what is left, then drain the log streams."""
        alive = [item for item in self.running if item.proc.returncode is None]
        for item in alive:
            with contextlib.suppress(ProcessLookupError):
                item.proc.send_signal(signal.SIGTERM)
        for item in alive:
            try:
                await asyncio.wait_for(item.proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                say(f"{item.node.name} did not stop within {STOP_TIMEOUT:.0f} s: killing it")
                with contextlib.suppress(ProcessLookupError):
                    item.proc.kill()
                await item.proc.wait()
        for item in self.running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(item.reader, 2.0)
        if self.running:
            say("all nodes stopped")


async def run(nodes: list[TestnetNode], log_level: str) -> int:
    net = Testnet(nodes, log_level)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, net.on_signal)
    try:
        setup = asyncio.create_task(_bring_up(net))
        stopper = asyncio.create_task(net.stop.wait())
        done, _ = await asyncio.wait({setup, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if setup not in done:
            setup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await setup
            return 0
        stopper.cancel()
        setup.result()  # raises TestnetError when the bring-up failed
        return await net.watch()
    finally:
        await net.shutdown()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _bring_up(net: Testnet) -> None:
    for node in net.nodes:
        created = await prepare(node)
        say(f"{node.name}: {'created' if created else 'reusing'} user {node.user}")
    await net.start()
    await wait_nodes(net.running)
    states = await connect_users(net.nodes)
    render_table(net.nodes, states)
    accepted = sum(state == "accepted" for state in states.values())
    total = len(net.nodes) * (len(net.nodes) - 1)
    say(
        f"ready: {len(net.nodes)} node(s), password {DEMO_PASSWORD!r} for every user, "
        f"{accepted}/{total} follows accepted. Ctrl-C stops all nodes."
    )


def up(nodes: int, base_port: int, directory: Path, log_level: str) -> int:
    """Validate, then run the testnet in the foreground; returns the exit status."""
    planned = plan(nodes, base_port, directory)
    check_ports(planned)
    return asyncio.run(run(planned, log_level))
