"""Federation behaviours that had no test: key rotation, actor Update/Delete, the limits of
safe fetching (redirects, body cap, timeout) and room announcements (once per shared inbox,
rate-limited Updates). Real nodes on 127.0.0.1 against small aiohttp fakes on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from federation import keys
from federation.as2 import host_of
from federation.fetch import FetchError, GuardedResolver, SafeClient, UnsafeAddress
from federation.service import FEDERATION, Federation
from federation.signatures import HttpRequest, sign_cavage
from node.clock import SystemClock
from tests.support.federation import FixedResolver
from tests.support.network import FAST, eventually
from tests.support.nodes import ApiUser, Node, NodeFactory
from tests.support.remote import LoopbackActors, as2_response

TABLES = ("remote_actors", "follow_activities", "seen_activities", "remote_rooms", "follows")


class FakeRemote(LoopbackActors):
    """An ActivityPub server on loopback whose actors can rotate keys, rename and vanish."""

    def __init__(self) -> None:
        self.keys = {name: keys.ActorKeys.generate() for name in ("mallory", "eve")}
        self.names: dict[str, str] = {}
        self.gone: set[str] = set()
        self.actor_gets: dict[str, int] = {}
        self.received: list[tuple[str, float, dict[str, Any]]] = []
        app = web.Application()
        app.router.add_get("/users/{name}", self.actor)
        app.router.add_post("/inbox", self.inbox)
        app.router.add_post("/users/{name}/inbox", self.inbox)
        super().__init__(app)

    def actor_document(self, name: str) -> dict[str, Any]:
        display = self.names.get(name, name.title())
        return self.document(name, self.keys[name], display_name=display)

    async def actor(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.actor_gets[name] = self.actor_gets.get(name, 0) + 1
        if name in self.gone or name not in self.keys:
            return web.Response(status=410)
        return as2_response(self.actor_document(name))

    async def inbox(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.received.append((request.path, time.monotonic(), body))
        return web.Response(status=202)

    def shared(self, kind: str | None = None) -> list[tuple[float, dict[str, Any]]]:
        """What arrived at the shared inbox (optionally only one activity type)."""
        return [
            (at, body)
            for path, at, body in self.received
            if path == "/inbox" and (kind is None or body.get("type") == kind)
        ]

    def sign(
        self, url: str, body: bytes, actor: str = "mallory", key: keys.ActorKeys | None = None
    ) -> dict[str, str]:
        return self.signed_post_headers(url, body, actor, key or self.keys[actor])


@pytest.fixture
async def remote() -> AsyncIterator[FakeRemote]:
    fake = FakeRemote()
    await fake.server.start_server()
    yield fake
    await fake.server.close()


def fed(node: Node) -> Federation:
    assert node.app is not None
    return node.app[FEDERATION]


def counts(node: Node) -> dict[str, int]:
    store = fed(node)
    return {table: store.count(table) for table in TABLES}


async def deliver(
    node: Node,
    remote: FakeRemote,
    activity: dict[str, Any],
    actor: str = "mallory",
    key: keys.ActorKeys | None = None,
) -> tuple[int, Any]:
    body = json.dumps(activity).encode()
    headers = remote.sign(f"{node.url}/inbox", body, actor, key)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{node.url}/inbox", data=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


def activity(
    remote: FakeRemote, kind: str, n: str, obj: Any, actor: str = "mallory"
) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.base}/activities/{actor}-{kind.lower()}-{n}",
        "type": kind,
        "actor": remote.actor_id(actor),
        "object": obj,
    }


async def followed_by(node: Node, remote: FakeRemote, who: str, n: str = "1") -> None:
    status, answer = await deliver(
        node, remote, activity(remote, "Follow", n, f"{node.url}/users/alice", who), who
    )
    assert status == 202, answer
    assert answer["status"] == "follow accepted"


@pytest.fixture
async def node_a(node_factory: NodeFactory) -> Node:
    return await node_factory("a", **FAST)


async def signup(node: Node, name: str) -> ApiUser:
    return await (await node.user()).signup(name)


# ---- 1. key rotation --------------------------------------------------------------------
@pytest.mark.timeout(30)
async def test_rotated_key_refetches_the_actor_once(node_a: Node, remote: FakeRemote) -> None:
    alice = await signup(node_a, "alice")
    await followed_by(node_a, remote, "mallory")
    fetched = remote.actor_gets["mallory"]
    handle = f"mallory@{remote.host}"

    # The actor rotates its key (same key id, new key): the cached document no longer
    # verifies, so the inbox fetches the actor again, exactly once, and accepts.
    remote.keys["mallory"] = keys.ActorKeys.generate()
    remote.names["mallory"] = "Mallory Rotated"
    doc = remote.actor_document("mallory")
    status, answer = await deliver(node_a, remote, activity(remote, "Update", "1", doc))
    assert status == 202, answer
    assert remote.actor_gets["mallory"] == fetched + 1
    _, profile = await alice.call("GET", f"/api/users/{handle}")
    assert profile["display_name"] == "Mallory Rotated"

    # With the new key cached, the next activity costs no fetch at all.
    like = activity(remote, "Like", "1", f"{node_a.url}/users/alice")
    assert (await deliver(node_a, remote, like))[0] == 202
    assert remote.actor_gets["mallory"] == fetched + 1

    # A key the actor does not publish (even after the re-fetch): 401, one re-fetch, and
    # nothing stored.
    before = counts(node_a)
    stranger = keys.ActorKeys.generate()
    remote.names["mallory"] = "Forged"
    forged = activity(remote, "Update", "2", remote.actor_document("mallory"))
    status, answer = await deliver(node_a, remote, forged, key=stranger)
    assert status == 401, answer
    assert remote.actor_gets["mallory"] == fetched + 2
    assert counts(node_a) == before
    _, profile = await alice.call("GET", f"/api/users/{handle}")
    assert profile["display_name"] == "Mallory Rotated"


@pytest.mark.timeout(30)
async def test_unknown_key_from_an_unknown_actor_stores_nothing(
    node_a: Node, remote: FakeRemote
) -> None:
    await signup(node_a, "alice")
    before = counts(node_a)
    follow = activity(remote, "Follow", "x", f"{node_a.url}/users/alice")
    status, _ = await deliver(node_a, remote, follow, key=keys.ActorKeys.generate())
    assert status == 401
    assert remote.actor_gets["mallory"] == 2  # first fetch plus the one rotation re-fetch
    assert counts(node_a) == before


# ---- 2. actor Update and Delete -----------------------------------------------------------
@pytest.mark.timeout(30)
async def test_actor_update_changes_the_stored_profile(node_a: Node, remote: FakeRemote) -> None:
    alice = await signup(node_a, "alice")
    await followed_by(node_a, remote, "mallory")
    await followed_by(node_a, remote, "eve")
    handle = f"mallory@{remote.host}"
    _, profile = await alice.call("GET", f"/api/users/{handle}")
    assert profile["display_name"] == "Mallory"

    remote.names["mallory"] = "Mallory Two"
    update = activity(remote, "Update", "1", remote.actor_document("mallory"))
    status, answer = await deliver(node_a, remote, update)
    assert status == 202 and answer["status"] == "actor updated", answer
    _, profile = await alice.call("GET", f"/api/users/{handle}")
    assert profile["display_name"] == "Mallory Two"

    # Nobody may update someone else's document.
    remote.names["eve"] = "Eve Hijacked"
    hijack = activity(remote, "Update", "2", remote.actor_document("eve"))
    status, _ = await deliver(node_a, remote, hijack)
    assert status == 400
    _, profile = await alice.call("GET", f"/api/users/eve@{remote.host}")
    assert profile["display_name"] == "Eve"


@pytest.mark.timeout(30)
async def test_actor_delete_removes_follows(node_a: Node, remote: FakeRemote) -> None:
    alice = await signup(node_a, "alice")
    await followed_by(node_a, remote, "mallory")
    await followed_by(node_a, remote, "eve")
    _, profile = await alice.call("GET", "/api/users/alice")
    assert profile["followers_count"] == 2

    remote.gone.add("mallory")  # a deleted actor's document is gone (410)
    delete = activity(remote, "Delete", "1", remote.actor_id("mallory"))
    status, answer = await deliver(node_a, remote, delete)
    assert status == 202 and answer["status"] == "actor deleted", answer
    _, profile = await alice.call("GET", "/api/users/alice")
    assert profile["followers_count"] == 1
    _, followers = await alice.call("GET", "/api/users/alice/followers")
    assert [f["handle"] for f in followers["items"]] == [f"eve@{remote.host}"]
    status, _ = await alice.call("GET", f"/api/users/mallory@{remote.host}")
    assert status == 404
    assert counts(node_a)["remote_actors"] == 1


@pytest.mark.timeout(30)
async def test_actor_delete_frees_room_seats(node_a: Node, remote: FakeRemote) -> None:
    alice = await signup(node_a, "alice")
    status, room = await alice.call("POST", "/api/rooms", {"title": "Seats"})
    assert status == 201, room
    room_uri = f"{node_a.url}/rooms/{room['id']}"
    status, answer = await deliver(node_a, remote, activity(remote, "Join", "1", room_uri))
    assert status == 202, answer
    _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    handles = [p["user"] for p in view["listeners"]]
    assert f"mallory@{remote.host}" in handles

    delete = activity(remote, "Delete", "1", remote.actor_id("mallory"))
    status, answer = await deliver(node_a, remote, delete)
    assert status == 202 and answer["status"] == "actor deleted", answer
    _, view = await alice.call("GET", f"/api/rooms/{room['id']}")
    assert view["participant_count"] == 0, view["listeners"]
    assert view["listeners"] == []


# ---- 3. safe fetching ---------------------------------------------------------------------
class FetchTarget:
    """Redirect chains, oversized bodies and a handler that never answers."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.release = asyncio.Event()
        self.redirect_to = ""
        app = web.Application()
        app.router.add_get("/chain/{n}", self.chain)
        app.router.add_get("/away", self.away)
        app.router.add_get("/secret", self.secret)
        app.router.add_get("/big", self.big)
        app.router.add_get("/big-chunked", self.big_chunked)
        app.router.add_get("/hang", self.hang)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def _hit(self, request: web.Request) -> None:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1

    async def chain(self, request: web.Request) -> web.Response:
        self._hit(request)
        n = int(request.match_info["n"])
        if n == 0:
            return web.json_response({"id": "end"})
        raise web.HTTPFound(f"/chain/{n - 1}")

    async def away(self, request: web.Request) -> web.Response:
        self._hit(request)
        raise web.HTTPFound(self.redirect_to)

    async def secret(self, request: web.Request) -> web.Response:
        self._hit(request)
        return web.json_response({"secret": True})

    async def big(self, request: web.Request) -> web.Response:
        self._hit(request)
        return web.Response(body=b'{"pad": "' + b"x" * 2_000_000 + b'"}')

    async def big_chunked(self, request: web.Request) -> web.StreamResponse:
        self._hit(request)
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b'{"pad": "')
        for _ in range(32):
            await resp.write(b"x" * 65536)
        await resp.write(b'"}')
        return resp

    async def hang(self, request: web.Request) -> web.Response:
        self._hit(request)
        await asyncio.wait_for(self.release.wait(), 30)
        return web.json_response({})


@pytest.fixture
async def target() -> AsyncIterator[FetchTarget]:
    fake = FetchTarget()
    await fake.server.start_server()
    yield fake
    fake.release.set()
    await fake.server.close()


class _PublicOnlyFor(AbstractResolver):
    """``public.example`` reaches the loopback fake as if it were a public server; every
    other name goes through the production guard (and resolves to loopback)."""

    def __init__(self) -> None:
        self.guard = GuardedResolver(FixedResolver("127.0.0.1"))
        self.guarded: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host == "public.example":
            return await FixedResolver("127.0.0.1").resolve(host, port, family)
        self.guarded.append(host)
        return await self.guard.resolve(host, port, family)

    async def close(self) -> None:
        return None


@pytest.mark.timeout(20)
async def test_redirect_chain_is_limited(target: FetchTarget) -> None:
    async with aiohttp.ClientSession() as session:
        client = SafeClient(session, SystemClock(), testnet=True)
        assert await client.get_json(f"{target.base}/chain/3") == {"id": "end"}  # 3 redirects
        target.hits.clear()
        with pytest.raises(FetchError, match="more than 3 redirects"):
            await client.get_json(f"{target.base}/chain/4")
        # the first request plus three followed redirects; the fourth is not followed
        assert sum(target.hits.values()) == 4
        assert target.hits.get("/chain/0") is None


@pytest.mark.timeout(20)
async def test_redirect_targets_are_rechecked(target: FetchTarget) -> None:
    resolver = _PublicOnlyFor()
    connector = aiohttp.TCPConnector(resolver=resolver)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = SafeClient(session, SystemClock(), testnet=False)
        start = f"http://public.example:{target.port}/away"
        target.redirect_to = f"http://public.example:{target.port}/secret"
        assert await client.get_json(start) == {"secret": True}  # a public target is fine
        target.hits.clear()
        for literal in (
            f"http://127.0.0.1:{target.port}/secret",
            f"http://[::1]:{target.port}/secret",
            "http://169.254.169.254/latest/meta-data",
            f"http://localhost:{target.port}/secret",
            "file:///etc/passwd",
        ):
            target.redirect_to = literal
            with pytest.raises(UnsafeAddress):
                await client.get_json(start)
        # a name that resolves to loopback passes check_url and is refused by the resolver
        target.redirect_to = f"http://internal-looking.example:{target.port}/secret"
        with pytest.raises(FetchError, match=r"internal-looking\.example") as refused:
            await client.get_json(start)
        assert not isinstance(refused.value, UnsafeAddress)  # not check_url: the resolver
        assert resolver.guarded == ["internal-looking.example"]
        assert target.hits == {"/away": 6}  # the secret was never reached


@pytest.mark.timeout(20)
async def test_bodies_over_the_cap_fail(target: FetchTarget) -> None:
    async with aiohttp.ClientSession() as session:
        client = SafeClient(session, SystemClock(), testnet=True)
        with pytest.raises(FetchError, match="over the cap"):
            await client.get_json(f"{target.base}/big")  # Content-Length: 2 MB
        with pytest.raises(FetchError, match="body over 1000000 bytes"):
            await client.get_json(f"{target.base}/big-chunked")  # no Content-Length


@pytest.mark.timeout(20)
async def test_fetch_timeout(target: FetchTarget) -> None:
    async with aiohttp.ClientSession() as session:
        client = SafeClient(session, SystemClock(), testnet=True, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(FetchError, match="TimeoutError"):
            await client.get_json(f"{target.base}/hang")
        assert time.monotonic() - started < 3
        assert target.hits == {"/hang": 1}


@pytest.mark.timeout(30)
async def test_node_fetch_timeout_setting(node_factory: NodeFactory, target: FetchTarget) -> None:
    """A signed POST whose key document never arrives: 401 after fetch_timeout_seconds."""
    node = await node_factory("t", **{**FAST, "fetch_timeout_seconds": 0.5})
    await signup(node, "alice")
    before = counts(node)
    actor = f"{target.base}/hang"
    body = json.dumps(
        {
            "id": f"{target.base}/activities/1",
            "type": "Follow",
            "actor": actor,
            "object": f"{node.url}/users/alice",
        }
    ).encode()
    request = HttpRequest(
        "POST", f"{node.url}/inbox", {"Content-Type": "application/activity+json"}, body
    )
    headers = {"Content-Type": "application/activity+json"}
    headers.update(
        sign_cavage(
            request,
            key_id=f"{actor}#main-key",
            private_key=keys.ActorKeys.generate().rsa_private_key,
            now=datetime.now(UTC),
        )
    )
    started = time.monotonic()
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{node.url}/inbox", data=body, headers=headers) as resp,
    ):
        assert resp.status == 401
        assert "TimeoutError" in (await resp.json(content_type=None))["error"]
    assert time.monotonic() - started < 4
    assert counts(node) == before


# ---- 4. room announcements ------------------------------------------------------------------
@pytest.mark.timeout(30)
async def test_announcement_once_per_shared_inbox(node_a: Node, remote: FakeRemote) -> None:
    alice = await signup(node_a, "alice")
    await followed_by(node_a, remote, "mallory")
    await followed_by(node_a, remote, "eve")
    status, room = await alice.call("POST", "/api/rooms", {"title": "Shared"})
    assert status == 201, room

    created = await eventually(lambda: _async(remote.shared("Create")))
    await asyncio.sleep(0.5)  # time for a duplicate to show up, if one were queued
    assert len(remote.shared("Create")) == 1
    announce = created[0][1]
    assert announce["object"]["name"] == "Shared"
    assert announce["actor"] == f"{node_a.url}/users/alice"
    rows = fed(node_a).deliveries.for_activity(announce["id"])
    assert [(r.inbox, r.state) for r in rows] == [(f"{remote.base}/inbox", "sent")]
    # nothing but the two Accepts went to personal inboxes
    personal = [b["type"] for path, _, b in remote.received if path != "/inbox"]
    assert personal == ["Accept", "Accept"]


@pytest.mark.timeout(30)
async def test_announcement_once_per_node_between_real_nodes(
    node_factory: NodeFactory,
) -> None:
    a = await node_factory("a", **FAST)
    b = await node_factory("b", **FAST)
    alice = await signup(a, "alice")
    handle = f"alice@{host_of(a.url)}"
    for name in ("bob", "carol"):
        user = await signup(b, name)
        status, body = await user.call("POST", f"/api/users/{handle}/follow")
        assert status == 200, body

    async def both_follow() -> bool:
        _, profile = await alice.call("GET", "/api/users/alice")
        return bool(profile["followers_count"] == 2)

    await eventually(both_follow)
    status, room = await alice.call("POST", "/api/rooms", {"title": "Two on B"})
    assert status == 201, room
    ctx = fed(a)

    def to_b() -> list[Any]:
        return [r for r in ctx.deliveries.recent(100) if r.inbox == f"{b.url}/inbox"]

    def sent() -> bool:
        return any(r.state == "sent" for r in to_b())

    await eventually(lambda: _async(sent()))
    await asyncio.sleep(0.3)
    rows = to_b()
    assert len(rows) == 1, rows  # one row for bob and carol: B's shared inbox
    assert rows[0].state == "sent"


@pytest.mark.timeout(30)
async def test_room_updates_are_rate_limited(node_factory: NodeFactory, remote: FakeRemote) -> None:
    interval = 1.5
    node = await node_factory("a", **{**FAST, "announce_interval_seconds": interval})
    alice = await signup(node, "alice")
    await followed_by(node, remote, "mallory")
    status, room = await alice.call("POST", "/api/rooms", {"title": "T0"})
    assert status == 201, room
    await eventually(lambda: _async(remote.shared("Create")))
    created_at = remote.shared("Create")[0][0]

    for n in range(1, 5):
        status, body = await alice.call("PATCH", f"/api/rooms/{room['id']}", {"title": f"T{n}"})
        assert status == 200, body
        await asyncio.sleep(0.05)
    await asyncio.sleep(interval / 3)
    assert remote.shared("Update") == []  # still inside the interval: folded, not sent

    updates = await eventually(lambda: _async(remote.shared("Update")))
    await asyncio.sleep(interval + 0.5)
    updates = remote.shared("Update")
    assert len(updates) == 1, [u[1]["object"]["name"] for u in updates]
    at, update = updates[0]
    assert update["object"]["name"] == "T4"  # the trailing Update carries the last change
    assert at - created_at >= interval - 0.1

    # lifecycle changes are not rate-limited: ending the room is announced at once
    await alice.call("POST", f"/api/rooms/{room['id']}/join")
    ended_request = time.monotonic()
    status, body = await alice.call("POST", f"/api/rooms/{room['id']}/end")
    assert status == 200, body

    def ended() -> list[Any]:
        return [u for u in remote.shared("Update") if u[1]["object"]["status"] == "ended"]

    await eventually(lambda: _async(ended()))
    assert ended()[0][0] - ended_request < interval


async def _async(value: Any) -> Any:
    return value
