"""One error shape for every endpoint: ``{"error": {"code", "message", ...}}``.

>>> error_response(400, "bad_json", "not JSON").status_code
400

A refused WebSocket handshake (``/ws/events``) gets the same answer as an HTTP request would: 401 for
missing or invalid credentials, 403 for a credential without the permission or the tenant, 429, 400,
with this body and headers, sent through the ASGI ``websocket.http.response`` extension (uvicorn offers
it). A server without the extension cannot answer a handshake with a status: the socket is then accepted
and closed at once with close code ``4000 + status`` (:data:`WS_CLOSE_BASE`: 4401, 4403, 4429, ...) and the
message as the close reason.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketState

from hubcore.errors import InvalidParameter, PermanentError, RetryableError


class ErrorDetail(BaseModel):
    code: str
    message: str
    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message", ...}}`` (some add fields, e.g. ``rejected``)."""

    error: ErrorDetail
    model_config = ConfigDict(extra="allow")


_ERR = {"model": ErrorBody}
#: Documented on every operation (the OpenAPI schema says what the guard and handlers may answer).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERR, "description": "bad request (malformed JSON, bad parameter, bad tenant)"},
    401: {**_ERR, "description": "missing or invalid credentials (auth on)"},
    403: {**_ERR, "description": "the credential lacks the permission or the tenant"},
    404: {**_ERR, "description": "no such resource"},
    405: {**_ERR, "description": "method not allowed"},
    413: {**_ERR, "description": "body or batch too large"},
    415: {**_ERR, "description": "unsupported content type"},
    422: {**_ERR, "description": "validation error"},
    429: {**_ERR, "description": "rate limited; see Retry-After"},
    500: {**_ERR, "description": "a fault in the hub (code internal_error); its log has the traceback"},
    503: {**_ERR, "description": "queue full or a dependency unavailable; see Retry-After"},
    504: {**_ERR, "description": "query timeout"},
}


#: A refused WebSocket handshake that cannot be answered with its HTTP status closes with this + the status.
WS_CLOSE_BASE = 4000
#: A WebSocket close reason is at most 123 bytes of UTF-8.
_MAX_REASON = 123


def json_response(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(body), status_code=status_code, media_type="application/json", headers=headers)


def head_response(response: Response) -> Response:
    """The answer to ``HEAD`` of a route whose ``GET`` gives ``response``: its status and headers
    (``Content-Length`` the body's), no body. Load balancers and uptime checkers probe with HEAD.

    >>> r = head_response(json_response({"status": "ok"}))
    >>> r.status_code, r.body, r.headers["content-length"]
    (200, b'', '15')
    """
    return Response(b"", status_code=response.status_code, headers=dict(response.headers))


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    headers = None
    if "retry_after" in extra:
        headers = {"Retry-After": str(max(1, round(extra["retry_after"])))}
    return json_response({"error": {"code": code, "message": message, **extra}}, status, headers)


async def deliver(conn: HTTPConnection, response: Response, message: str) -> Response | None:
    """``response`` for an HTTP request, and for a WebSocket handshake whose server offers the denial-response
    extension (Starlette sends it as the handshake's HTTP answer); otherwise the socket is accepted (if it is
    not yet) and closed with ``4000 + status`` and ``message`` as the reason, and None is returned."""
    if conn.scope["type"] != "websocket":
        return response
    assert isinstance(conn, WebSocket)
    connecting = conn.client_state == WebSocketState.CONNECTING
    if connecting and "websocket.http.response" in conn.scope.get("extensions", {}):
        return response
    if connecting:
        await conn.accept()
    reason = message.encode()[:_MAX_REASON].decode(errors="ignore")
    await conn.close(code=WS_CLOSE_BASE + response.status_code, reason=reason)
    return None


def install_error_handlers(app: Any) -> None:
    from api.security import RateLimited
    from hubcore.security.principal import AuthError
    from hubcore.security.rbac import ForbiddenError

    # These five also answer a refused WebSocket handshake (the guard, the tenant of /ws/events): see deliver.
    @app.exception_handler(AuthError)
    async def _auth(conn: HTTPConnection, exc: AuthError) -> Response | None:
        realm = conn.app.state.hub.config.service.auth.realm
        resp = error_response(401, exc.code, str(exc))
        resp.headers["WWW-Authenticate"] = exc.www_authenticate(realm)
        return await deliver(conn, resp, str(exc))

    @app.exception_handler(ForbiddenError)
    async def _forbidden(conn: HTTPConnection, exc: ForbiddenError) -> Response | None:
        return await deliver(conn, error_response(403, "forbidden", exc.reason), exc.reason)

    @app.exception_handler(RateLimited)
    async def _limited(conn: HTTPConnection, exc: RateLimited) -> Response | None:
        return await deliver(conn, error_response(429, "rate_limited", str(exc), retry_after=exc.retry_after), str(exc))

    @app.exception_handler(PermanentError)
    async def _permanent(conn: HTTPConnection, exc: PermanentError) -> Response | None:
        # a bad parameter value is a 422 (InvalidParameter, QueryError carry theirs), an unreadable request 400
        field = {"field": exc.field} if isinstance(exc, InvalidParameter) and exc.field else {}
        return await deliver(conn, error_response(getattr(exc, "status", 400), exc.reason, str(exc), **field), str(exc))

    @app.exception_handler(RetryableError)
    async def _retryable(conn: HTTPConnection, exc: RetryableError) -> Response | None:
        return await deliver(conn, error_response(503, "unavailable", str(exc), retry_after=exc.retry_after), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        details = [
            {"loc": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()
        ]
        return error_response(422, "validation_error", "request parameters are invalid", details=details)

    @app.exception_handler(Exception)
    async def _internal(_: Request, __: Exception) -> Response:
        # A fault, not a bad request: the same error shape as every other answer (rather than Starlette's
        # plain-text "Internal Server Error"); the server still logs the traceback.
        return error_response(500, "internal_error", "internal error; the hub's log has the details")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
