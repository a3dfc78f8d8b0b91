"""How the routes of :mod:`api.routers.analytics` reach the analytics service and answer.

``get_service`` is the :class:`analytics.service.AnalyticsService` of ``app.state.analytics`` (one is created
on first use when the hub wired none); ``_body`` reads a JSON body (413 over :data:`MAX_BODY`, 400 when it is
not JSON); ``_answer`` runs a service call in the thread pool and turns its errors into the API's error shape::

    svc = get_service(request, state)
    return await _answer(svc.feedback_state, tenant, query, team)   # 404 not_found, 422, 504 query_timeout...
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from analytics.service import AnalyticsService, NotFound
from api.errors import error_response, json_response
from api.jsonbody import BadJsonError, decode_json
from api.state import ApiState
from hubcore.errors import ConfigError, PermanentError
from hubcore.query.executor import QueryTimeout
from hubcore.query.model import QueryError

_lock = threading.Lock()
MAX_BODY = 256 * 1024


def get_service(request: Request, state: ApiState) -> AnalyticsService:
    svc: AnalyticsService | None = getattr(request.app.state, "analytics", None)
    if svc is None:
        with _lock:
            svc = getattr(request.app.state, "analytics", None)
            if svc is None:
                # no background thread here (nothing would stop it before the store closes): without a
                # service wired by the hub, GET /anomalies runs the due models of the caller's tenant
                svc = AnalyticsService(None, state.store, state.metrics.registry)
                request.app.state.analytics = svc
    return svc


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise QueryError("", f"the body exceeds {MAX_BODY} bytes", status=413, reason="body_too_large")
    try:
        return decode_json(raw)
    except BadJsonError as exc:
        raise QueryError("", str(exc), status=400, reason="bad_json") from None


async def _answer(fn: Any, *args: Any, status: int = 200, **kwargs: Any) -> Response:
    try:
        return json_response(await run_in_threadpool(fn, *args, **kwargs), status)
    except NotFound as exc:
        return error_response(404, "not_found", str(exc))
    except QueryError as exc:
        return error_response(exc.status, exc.reason, str(exc), field=exc.field)
    except QueryTimeout as exc:
        return error_response(504, "query_timeout", str(exc), timeout_s=exc.timeout_s)
    except PermanentError as exc:
        return error_response(422, exc.reason, str(exc))
    except ConfigError as exc:  # a duration or spec that does not parse
        return error_response(422, "invalid_parameter", str(exc))
