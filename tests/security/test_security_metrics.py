"""The metrics site against a curious or hostile client: it answers only GET/HEAD
/metrics, and its text names no room, title or person — it counts private rooms too.
The public port never serves /metrics, whoever asks."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support.metrics import scrape_text
from tests.support.nodes import NodeFactory, free_port


@pytest.mark.timeout(30)
async def test_metrics_site_serves_only_get_metrics(node_factory: NodeFactory) -> None:
    address = f"127.0.0.1:{free_port()}"
    node = await node_factory(metrics_address=address)
    await node.user("alice")
    base = f"http://{address}"
    async with aiohttp.ClientSession() as http:
        for path in (
            "/",
            "/metrics/",
            "/Metrics",
            "/metrics.json",
            "/api/rooms",
            "/users/alice",
            "/inbox",
            "/.well-known/webfinger?resource=acct:alice@127.0.0.1",
            "/static/app.js",
        ):
            async with http.get(base + path) as resp:
                assert resp.status == 404, path
                assert (await resp.json())["error"] == "not found"
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            async with http.request(method, base + "/metrics", data=b"x" * 100_000) as resp:
                assert resp.status == 405, method
                assert resp.headers["Allow"] == "GET,HEAD"
                assert (await resp.json())["error"] == "method not allowed"
        async with http.head(base + "/metrics") as resp:
            assert resp.status == 200
        async with http.get(base + "/metrics", headers={"Cookie": "x=" + "y" * 4000}) as resp:
            assert resp.status == 200  # no sessions, no cookies read: nothing to attack there


@pytest.mark.timeout(30)
async def test_metrics_name_no_room_title_or_handle(node_factory: NodeFactory) -> None:
    address = f"127.0.0.1:{free_port()}"
    node = await node_factory(metrics_address=address)
    handles = ["zorrosecret", "hushhushhost"]
    secrets_seen = list(handles)
    for name in handles:
        user = await node.user(name)
        for mode in ("open", "closed"):
            title = f"Title {name} {mode} classified"
            status, room = await user.call(
                "POST", "/api/rooms", {"title": title, "join_mode": mode}
            )
            assert status == 201, room
            secrets_seen.append(title)
            secrets_seen.append(room["id"])
    text = await scrape_text(address)
    assert 'salon_rooms{status="live"} 4.0' in text
    for secret in secrets_seen:
        assert secret not in text, secret
    assert "classified" not in text


@pytest.mark.timeout(30)
async def test_public_port_never_serves_metrics_even_to_an_admin(
    node_factory: NodeFactory,
) -> None:
    node = await node_factory(metrics_address=f"127.0.0.1:{free_port()}")
    admin = await node.user("root")  # the first account of a node is its admin
    for method in ("GET", "HEAD"):
        status, _ = await admin.call(method, "/metrics")
        assert status == 404, method


@pytest.mark.timeout(30)
async def test_metrics_site_closes_a_trickled_request_head(node_factory: NodeFactory) -> None:
    """Slowloris against the metrics site: a head never finished is cut off after
    ``header_timeout_seconds``, as on the public port."""
    port = free_port()
    await node_factory(metrics_address=f"127.0.0.1:{port}", header_timeout_seconds=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metr")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b"", "closed without an answer"
    writer.close()
