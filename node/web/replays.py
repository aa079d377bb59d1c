"""Replay routes: the page, the audio with HTTP range requests, its JSON, delete and trim.

``GET /rooms/{id}/replay.ogg`` answers single ranges (node/web/byteranges.py) with 206 and
``Content-Range``, 416 past the end, ETag/Last-Modified and If-Range, so a player seeks
by asking for the bytes it needs; ``?download=1`` adds a ``Content-Disposition``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import unicodedata
from email.utils import formatdate
from pathlib import Path
from typing import Protocol

from aiohttp import web

from node.replays import NO_REPLAY, ReplayService
from node.rooms.model import RoomRuleError
from node.store.users import User
from node.web.api import SETTINGS
from node.web.byteranges import Unsatisfiable, if_range_allows, parse_range
from node.web.http import USER, current_user, read_json
from node.web.pages import shell

log = logging.getLogger(__name__)

REPLAYS = web.AppKey("replays", ReplayService)


class SignedViewer(Protocol):
    """Who signed a GET from another node (federation/replay_proxy.py): the remote user
    asking for a social room's replay through their own node; None when unsigned."""

    async def viewer(self, request: web.Request) -> User | None: ...


SIGNED_VIEWER = web.AppKey("signed_viewer", SignedViewer)


async def _viewer(request: web.Request) -> User | None:
    user = request[USER]
    signed = request.app.get(SIGNED_VIEWER)
    if user is None and signed is not None:
        return await signed.viewer(request)
    return user


CHUNK = 256 * 1024
AUDIO_HEADERS = {
    "Accept-Ranges": "bytes",
    "Cache-Control": "private, no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}

routes = web.RouteTableDef()


@routes.get("/rooms/{id}/replay")
async def replay_page(request: web.Request) -> web.Response:
    node_name = request.app[SETTINGS].node_name
    try:
        found = request.app[REPLAYS].playable(request.match_info["id"], request[USER])
    except RoomRuleError:
        return shell(f"Replay · {node_name}")
    return shell(f"Replay: {found.room.title} · {node_name}")


@routes.get("/remote-replay")
async def remote_replay_page(request: web.Request) -> web.Response:
    """``/remote-replay?url=ROOM_URL``: another node's replay, played through this node."""
    return shell(f"Replay · {request.app[SETTINGS].node_name}")


@routes.get("/rooms/{id}/replay.ogg")
async def replay_audio(request: web.Request) -> web.StreamResponse:
    found = request.app[REPLAYS].playable(request.match_info["id"], await _viewer(request))
    disposition = None
    if request.query.get("download") == "1":
        disposition = f'attachment; filename="{safe_filename(found.room.title)}.ogg"'
    return await send_file(request, found.audio, "audio/ogg", disposition)


@routes.get("/api/rooms/{id}/replay")
async def replay_document(request: web.Request) -> web.Response:
    data = await request.app[REPLAYS].document(request.match_info["id"], await _viewer(request))
    return web.json_response(data, headers={"Cache-Control": "private, no-cache"})


@routes.delete("/api/rooms/{id}/replay")
async def delete_replay(request: web.Request) -> web.Response:
    await request.app[REPLAYS].delete(request.match_info["id"], current_user(request))
    return web.json_response({"deleted": True})


@routes.post("/api/rooms/{id}/replay/trim")
async def trim_replay(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await read_json(request)
    replays = request.app[REPLAYS]
    await replays.trim(request.match_info["id"], user, body.get("start"), body.get("end"))
    return web.json_response(await replays.document(request.match_info["id"], user))


def safe_filename(title: str) -> str:
    """An ASCII file name from a room title (no quotes, slashes or control characters)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9 ._-]+", "", ascii_title).strip(" .")
    name = re.sub(r"\s+", " ", name)[:80].strip(" .")
    return name or "replay"


async def send_file(
    request: web.Request, path: Path, content_type: str, disposition: str | None = None
) -> web.StreamResponse:
    """PATH with range support. The file is opened once: a trim or delete that replaces
    or unlinks it meanwhile does not change the bytes of an answer already started."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, after streaming
    except FileNotFoundError:
        raise RoomRuleError("not_found", NO_REPLAY) from None
    with f:
        info = os.fstat(f.fileno())
        size = info.st_size
        etag = f'"{size:x}-{info.st_mtime_ns:x}"'
        last_modified = formatdate(info.st_mtime, usegmt=True)
        headers = {**AUDIO_HEADERS, "ETag": etag, "Last-Modified": last_modified}
        if disposition:
            headers["Content-Disposition"] = disposition
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        wanted = None
        if if_range_allows(request.headers.get("If-Range"), etag, last_modified):
            try:
                wanted = parse_range(request.headers.get("Range"), size)
            except Unsatisfiable:
                return web.json_response(
                    {"error": "range not satisfiable"},
                    status=416,
                    headers={**headers, "Content-Range": f"bytes */{size}"},
                )
        start, length = (wanted.start, wanted.length) if wanted else (0, size)
        response = web.StreamResponse(status=206 if wanted else 200, headers=headers)
        response.content_type = content_type
        response.content_length = length
        if wanted:
            response.headers["Content-Range"] = wanted.content_range(size)
        await response.prepare(request)
        try:
            if request.method != "HEAD":
                f.seek(start)
                remaining = length
                while remaining > 0:
                    chunk = await asyncio.to_thread(f.read, min(CHUNK, remaining))
                    if not chunk:
                        break
                    await response.write(chunk)
                    remaining -= len(chunk)
            await response.write_eof()
        except ConnectionResetError:
            # players drop a connection as soon as they seek elsewhere: not an error
            log.debug("replay %s: client went away mid-answer", path.name)
        return response
