"""``/api/admin/workers``: the node's media workers, and draining one (admins only).

``salon admin worker list`` and ``salon admin worker drain ID`` call these.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from node.web.http import HttpError, current_user


class WorkerDesk(Protocol):
    def worker_views(self) -> list[dict[str, Any]]: ...

    async def drain_worker(self, worker: str) -> dict[str, Any]:
        """KeyError: no such (alive) worker."""
        ...


WORKERS = web.AppKey("worker_desk", WorkerDesk)
routes = web.RouteTableDef()


def _desk(request: web.Request) -> WorkerDesk:
    user = current_user(request)
    if not user.is_admin:
        raise HttpError(403, "admins only")
    desk = request.app.get(WORKERS)
    if desk is None:
        raise HttpError(404, "this node has no media workers")
    return desk


@routes.get("/api/admin/workers")
async def list_workers(request: web.Request) -> web.Response:
    return web.json_response({"workers": _desk(request).worker_views()})


@routes.post("/api/admin/workers/{id}/drain")
async def drain_worker(request: web.Request) -> web.Response:
    desk = _desk(request)
    worker = request.match_info["id"]
    if len(worker) > 100:
        raise HttpError(404, "no such worker")
    try:
        view = await desk.drain_worker(worker)
    except KeyError:
        raise HttpError(404, "no such worker") from None
    return web.json_response({"worker": view})
