"""Request plumbing shared by the API: JSON errors, body limits, authentication, CSRF."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from node.accounts import AccountService
from node.errors import DomainError
from node.jsonbody import JsonError, loads_object
from node.store.users import Session, User

log = logging.getLogger(__name__)

COOKIE = "salon_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ACCOUNTS = web.AppKey("accounts", AccountService)
API_BODY_LIMIT = web.AppKey("api_body_limit", int)
USER: web.RequestKey[User | None] = web.RequestKey("user")
SESSION: web.RequestKey[Session | None] = web.RequestKey("session")


class HttpError(Exception):
    """A failure only HTTP has (body, content type, credentials): status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every API failure is a JSON ``{"error": ...}``; bad input is never a 500."""
    try:
        return await handler(request)
    except DomainError as exc:
        headers = {"Retry-After": str(int(exc.retry_after) + 1)} if exc.retry_after else None
        return error(exc.status, exc.message, headers)
    except HttpError as exc:
        return error(exc.status, exc.message)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        message = exc.text if exc.text and not exc.text.startswith("{") else exc.reason
        if exc.status == 413:
            message = "request body too large"
        keep = {k: v for k, v in exc.headers.items() if k in ("Retry-After", "Allow")}
        return error(exc.status, message or exc.reason, keep)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the bearer token or session cookie; demand the CSRF token for cookie writes."""
    accounts = request.app[ACCOUNTS]
    request[USER] = None
    request[SESSION] = None
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return error(401, "Authorization must be 'Bearer TOKEN'")
        found = accounts.authenticate(token.strip())
        if found is None:
            return error(401, "invalid or expired token")
        request[USER], request[SESSION] = found
    elif COOKIE in request.cookies:
        found = accounts.authenticate(request.cookies[COOKIE])
        if found is not None:
            request[USER], request[SESSION] = found
            if request.method not in SAFE_METHODS and request.path.startswith("/api/"):
                sent = request.headers.get(CSRF_HEADER, "")
                if not hmac.compare_digest(sent.encode(), found[1].csrf_token.encode()):
                    return error(403, f"missing or wrong {CSRF_HEADER} header")
    return await handler(request)


def current_user(request: web.Request) -> User:
    user = request[USER]
    if user is None:
        raise HttpError(401, "sign in first")
    return user


def current_session(request: web.Request) -> Session:
    session = request[SESSION]
    if session is None:
        raise HttpError(401, "sign in first")
    return session


async def read_json(request: web.Request, required: bool = True) -> dict[str, Any]:
    """The request's JSON object, within the API body limit."""
    limit = request.app[API_BODY_LIMIT]
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(raw))
    if not raw.strip():
        if required:
            raise HttpError(400, "a JSON object body is required")
        return {}
    if request.content_type != "application/json":
        raise HttpError(415, "Content-Type must be application/json")
    try:
        return loads_object(raw)
    except JsonError as exc:
        raise HttpError(400, str(exc)) from None


TRUST_PROXY = web.AppKey("trust_proxy", bool)


def client_ip(request: web.Request) -> str:
    """The client's address; behind a trusted reverse proxy, its X-Forwarded-For entry."""
    if request.app.get(TRUST_PROXY):
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.split(",")[-1].strip()  # the entry our own proxy appended
        if last:
            return last
    return request.remote or "unknown"
