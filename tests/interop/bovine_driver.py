"""Runs inside tests/interop/.bovine-venv (bovine pins its own cryptography): drives bovine
against a Salon node for tests/interop/test_bovine.py. One JSON command on stdin:

    {"acct": "acct:alice@HOST", "base": "http://HOST", "requests": [captured, ...]}

and one JSON line on stdout: the actor bovine's WebFinger lookup found, that actor's
document as fetched, and for each captured request (method, url, headers, base64 body) the
owner bovine's HTTP signature checker verified it for (None when it refused).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
from typing import Any

import aiohttp
from bovine.clients import lookup_uri_with_webfinger
from bovine.crypto import build_validate_http_signature_raw
from bovine.crypto.types import CryptographicIdentifier

AS2 = "application/activity+json"
LOG: list[str] = []


class _Keep(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        LOG.append(f"{record.name}: {record.getMessage()}")


async def main() -> dict[str, Any]:
    cmd = json.loads(sys.stdin.read())
    async with aiohttp.ClientSession() as session:
        # Plain http on loopback: hand bovine the WebFinger origin explicitly.
        actor_uri, _ = await lookup_uri_with_webfinger(session, cmd["acct"], domain=cmd["base"])
        document = None
        if actor_uri:
            async with session.get(actor_uri, headers={"Accept": AS2}) as resp:
                document = await resp.json(content_type=None)

        async def retrieve(key_id: str) -> CryptographicIdentifier | None:
            async with session.get(key_id.split("#")[0], headers={"Accept": AS2}) as resp:
                data = await resp.json(content_type=None)
            key = data.get("publicKey", data)
            if isinstance(key, list):
                key = next((k for k in key if k.get("id") == key_id), None)
            if not key or key.get("id") != key_id:
                return None
            return CryptographicIdentifier.from_public_key(key)

        validate = build_validate_http_signature_raw(retrieve)
        owners = []
        for captured in cmd.get("requests", []):
            body = base64.b64decode(captured["body"])
            headers = {k.lower(): v for k, v in captured["headers"]}

            async def read(body: bytes = body) -> bytes:
                return body

            owners.append(
                await validate(captured["method"].lower(), captured["url"], headers, read)
            )
    return {"actor": actor_uri, "document": document, "owners": owners, "log": LOG}


if __name__ == "__main__":
    logging.getLogger().addHandler(_Keep(logging.INFO))
    logging.getLogger().setLevel(logging.INFO)
    try:
        print(json.dumps(asyncio.run(main())))
    except Exception as exc:  # report, don't hide: the test shows the error
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        sys.exit(1)
