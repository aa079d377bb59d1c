"""Outgoing federation HTTP: signed GETs and POSTs that cannot be turned against us.

Every request a remote party can make us send (fetch this actor, deliver to that inbox)
goes through ``SafeClient``: http(s) only, a 10 s budget, bodies capped at 1 MB, a few
redirects each re-checked, and no connection to private, loopback, link-local or other
special-use addresses. The address check runs on the *resolved* IP inside the connector
(``GuardedResolver``), so a name that resolves to 127.0.0.1 is refused as well as the
literal; only a node started in testnet mode may talk to such addresses.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from federation import keys
from federation.signatures import HttpRequest, sign_cavage
from node.clock import Clock
from node.jsonbody import JsonError, NotJsonObject, loads_object

log = logging.getLogger(__name__)

AS2_MEDIA_TYPE = "application/activity+json"
LD_MEDIA_TYPE = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
AS2_ACCEPT = f"{AS2_MEDIA_TYPE}, {LD_MEDIA_TYPE}"
MAX_BODY = 1_000_000
MAX_REDIRECTS = 3
USER_AGENT = "Salon/0.1 (+https://w3id.org/salon)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """A fetch failed; ``status`` is the remote HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UnsafeAddress(FetchError):
    """The destination is not a public http(s) address (SSRF guard)."""


def address_allowed(address: str) -> bool:
    """Only globally routable unicast addresses; IPv4-mapped IPv6 is judged as IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


class GuardedResolver(AbstractResolver):
    """Wraps a resolver and drops every non-public address it returns."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self.inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        allowed = [r for r in results if address_allowed(r["host"])]
        if not allowed:
            raise OSError(f"refusing to connect to {host}: no public address")
        return allowed

    async def close(self) -> None:
        await self.inner.close()


def make_session(testnet: bool) -> aiohttp.ClientSession:
    """The node's one outgoing session; guarded unless the node runs in testnet mode."""
    resolver = None if testnet else GuardedResolver()
    connector = aiohttp.TCPConnector(resolver=resolver, limit=256, ttl_dns_cache=60)
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT})


@dataclass(frozen=True)
class SigningKey:
    """Who signs a request: the key id published in the actor and its private key."""

    key_id: str
    private_key: keys.PrivateKey = field(repr=False)


RANGE_HEADERS = frozenset({"Content-Range", "ETag", "Last-Modified"})


@dataclass(frozen=True)
class RangeAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class PostResult:
    status: int
    retry_after: str | None


class SafeClient:
    """The node's outgoing HTTP: SSRF-guarded, size-capped, signed when asked.

    Built once by the composition root with SESSION None; ``start()`` opens the aiohttp
    session inside the running loop (a session belongs to one loop) and ``close()`` ends it.
    Tests may pass a session of their own.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        clock: Clock,
        *,
        testnet: bool,
        timeout: float = 10.0,
        max_body: int = MAX_BODY,
    ) -> None:
        self._session = session
        self.clock = clock
        self.testnet = testnet
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_body = max_body

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("federation HTTP client used before the node started")
        return self._session

    async def start(self) -> None:
        if self._session is None:
            self._session = make_session(self.testnet)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def check_url(self, url: str) -> None:
        """Refuse non-http(s) URLs and literal special-use IPs (names: at connect time)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UnsafeAddress(f"only absolute http(s) URLs may be fetched: {url!r}")
        if self.testnet:
            return
        host = parts.hostname
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
                raise UnsafeAddress(f"refusing to fetch special-use name {host}") from None
            return
        if not address_allowed(host):
            raise UnsafeAddress(f"refusing to fetch non-public address {host}")

    def _signed(self, request: HttpRequest, signer: SigningKey | None) -> dict[str, str]:
        headers = dict(request.headers)
        if signer is not None:
            now = datetime.fromtimestamp(self.clock.now(), UTC)
            headers.update(
                sign_cavage(request, key_id=signer.key_id, private_key=signer.private_key, now=now)
            )
        return headers

    async def get_json(
        self,
        url: str,
        signer: SigningKey | None = None,
        accept: str = AS2_ACCEPT,
        *,
        max_body: int | None = None,
    ) -> dict[str, Any]:
        """GET a JSON object, following at most MAX_REDIRECTS redirects (each re-checked);
        MAX_BODY (default the client's cap) refuses bigger answers unread."""
        for _ in range(MAX_REDIRECTS + 1):
            self.check_url(url)
            request = HttpRequest("GET", url, {"Accept": accept})
            try:
                async with self.session.get(
                    url,
                    headers=self._signed(request, signer),
                    allow_redirects=False,
                    timeout=self.timeout,
                ) as resp:
                    if resp.status in _REDIRECTS and "Location" in resp.headers:
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    if resp.status != 200:
                        raise FetchError(f"GET {url}: HTTP {resp.status}", resp.status)
                    body = await self._read(resp, url, max_body)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise FetchError(f"GET {url}: {type(exc).__name__}: {exc}") from None
            try:
                return loads_object(body)
            except NotJsonObject:
                raise FetchError(f"GET {url}: not a JSON object") from None
            except JsonError as exc:
                raise FetchError(f"GET {url}: {exc}") from None
        raise FetchError(f"GET {url}: more than {MAX_REDIRECTS} redirects")

    async def _post(
        self, url: str, body: bytes, signer: SigningKey
    ) -> tuple[int, str | None, bytes]:
        """A signed POST: status, Retry-After and the (capped) answer body."""
        self.check_url(url)
        request = HttpRequest("POST", url, {"Content-Type": AS2_MEDIA_TYPE}, body)
        try:
            async with self.session.post(
                url,
                data=body,
                headers=self._signed(request, signer),
                allow_redirects=False,
                timeout=self.timeout,
            ) as resp:
                raw = await self._read(resp, url)
                return resp.status, resp.headers.get("Retry-After"), raw
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise FetchError(f"POST {url}: {type(exc).__name__}: {exc}") from None

    async def post(self, url: str, body: bytes, signer: SigningKey) -> PostResult:
        """POST a signed activity; network failures raise FetchError (status None)."""
        status, retry_after, _ = await self._post(url, body, signer)
        return PostResult(status, retry_after)

    async def post_json(
        self, url: str, document: dict[str, Any], signer: SigningKey
    ) -> tuple[int, dict[str, Any] | None]:
        """POST a signed activity and read the JSON answer (remote joins answer at once)."""
        status, _, raw = await self._post(url, json.dumps(document).encode(), signer)
        try:
            return status, loads_object(raw) if raw else None
        except JsonError:
            return status, None

    async def get_range(
        self, url: str, signer: SigningKey, byte_range: str, max_body: int
    ) -> RangeAnswer:
        """One signed GET of BYTE_RANGE of URL (no redirects): status, the headers a range
        answer carries, and a body of at most MAX_BODY bytes (replays through our node)."""
        self.check_url(url)
        request = HttpRequest("GET", url, {"Range": byte_range})
        try:
            async with self.session.get(
                url,
                headers=self._signed(request, signer),
                allow_redirects=False,
                timeout=self.timeout,
            ) as resp:
                if resp.status not in (200, 206, 416):
                    raise FetchError(f"GET {url}: HTTP {resp.status}", resp.status)
                if resp.content_length is not None and resp.content_length > max_body:
                    raise FetchError(f"{url}: range of {resp.content_length} bytes over the cap")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > max_body:
                        raise FetchError(f"{url}: range over {max_body} bytes")
                kept = {k: v for k, v in resp.headers.items() if k in RANGE_HEADERS}
                return RangeAnswer(resp.status, kept, bytes(body))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise FetchError(f"GET {url}: {type(exc).__name__}: {exc}") from None

    def signed_get_headers(self, url: str, signer: SigningKey) -> dict[str, str]:
        """Headers for a signed GET made outside this client (the trunk's WebSocket)."""
        self.check_url(url)
        return self._signed(HttpRequest("GET", url, {}), signer)

    async def _read(
        self, resp: aiohttp.ClientResponse, url: str, max_body: int | None = None
    ) -> bytes:
        cap = self.max_body if max_body is None else min(max_body, self.max_body)
        if resp.content_length is not None and resp.content_length > cap:
            raise FetchError(f"{url}: body of {resp.content_length} bytes is over the cap")
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(65536):
            size += len(chunk)
            if size > cap:
                raise FetchError(f"{url}: body over {cap} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
