"""Reports (``/api/reports``), the moderation desk API (``/api/admin/…``) and its page
(``/admin``). Every rule lives in ``node/moderation.py``; this module only speaks HTTP."""

from __future__ import annotations

from aiohttp import web

from media.engine import MediaEngine
from node.moderation import ModerationDesk
from node.web.api import SETTINGS
from node.web.http import USER, HttpError, current_user, read_json
from node.web.pages import SHELL_HEADERS, shell

DESK = web.AppKey("moderation_desk", ModerationDesk)
MEDIA = web.AppKey("media_engine", MediaEngine)

routes = web.RouteTableDef()


@routes.post("/api/reports")
async def file_report(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await read_json(request)
    report = await request.app[DESK].report(
        user,
        body.get("target"),
        body.get("category"),
        body.get("comment", ""),
        body.get("forward", False),
    )
    return web.json_response({"report": report}, status=201)


@routes.get("/api/me/warnings")
async def my_warnings(request: web.Request) -> web.Response:
    user = current_user(request)
    return web.json_response({"warnings": request.app[DESK].warnings(user)})


def _report_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise HttpError(404, "no such report")
    return int(raw)


@routes.get("/api/admin/reports")
async def list_reports(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    reports = request.app[DESK].reports(current_user(request), status)
    return web.json_response({"reports": reports})


@routes.get("/api/admin/reports/{id}")
async def show_report(request: web.Request) -> web.Response:
    report = request.app[DESK].report_view(current_user(request), _report_id(request))
    return web.json_response({"report": report})


@routes.post("/api/admin/reports/{id}/resolve")
async def resolve_report(request: web.Request) -> web.Response:
    admin = current_user(request)
    body = await read_json(request, required=False)
    report = request.app[DESK].resolve(admin, _report_id(request), body.get("note", ""))
    return web.json_response({"report": report})


@routes.post("/api/admin/accounts/{name}/{action}")
async def account_action(request: web.Request) -> web.Response:
    admin = current_user(request)
    desk = request.app[DESK]
    body = await read_json(request, required=False)
    name, action, note = request.match_info["name"], request.match_info["action"], body.get("note")
    result: dict[str, object] = {"user": name, "action": action}
    if action == "suspend":
        result = await desk.suspend(admin, name, note)
    elif action == "unsuspend":
        await desk.unsuspend(admin, name, note)
    elif action in ("limit", "unlimit"):
        await desk.limit(admin, name, note, limited=action == "limit")
    elif action == "warn":
        await desk.warn(admin, name, note)
    else:
        raise HttpError(404, f"unknown account action {action!r}")
    return web.json_response(result)


@routes.get("/api/admin/domains")
async def list_domains(request: web.Request) -> web.Response:
    return web.json_response({"domains": request.app[DESK].domains(current_user(request))})


@routes.post("/api/admin/domains")
async def set_domain(request: web.Request) -> web.Response:
    admin = current_user(request)
    body = await read_json(request)
    result = request.app[DESK].set_domain(admin, body.get("domain"), body.get("policy"))
    return web.json_response(result)


@routes.delete("/api/admin/domains/{domain}")
async def remove_domain(request: web.Request) -> web.Response:
    request.app[DESK].remove_domain(current_user(request), request.match_info["domain"])
    return web.json_response({"removed": request.match_info["domain"].lower()})


@routes.get("/api/admin/audit")
async def audit_log(request: web.Request) -> web.Response:
    return web.json_response({"audit": request.app[DESK].audit_log(current_user(request))})


@routes.get("/api/admin/status")
async def node_status(request: web.Request) -> web.Response:
    """Admins only: the media clock's counters (late ticks, worst lateness), for operators
    and monitoring."""
    user = current_user(request)
    if not user.is_admin:
        raise HttpError(403, "admins only")
    return web.json_response({"media": request.app[MEDIA].stats()})


@routes.get("/admin")
async def admin_page(request: web.Request) -> web.StreamResponse:
    """Admins get the desk; people not signed in go to sign in first; others get 403."""
    user = request[USER]
    if user is None:
        raise web.HTTPFound("/?next=/admin")
    if not user.is_admin:
        return web.Response(
            status=403, text="The moderation desk is for this node's admins.", headers=SHELL_HEADERS
        )
    return shell(f"Moderation desk · {request.app[SETTINGS].node_name}")
