"""Assemble the FastAPI application from routers (no business logic here).

>>> from fastapi.testclient import TestClient  # doctest: +SKIP
>>> app = create_app(state)                     # doctest: +SKIP
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from api.console import router as console_router
from api.console.fast import StaticFastPath
from api.errors import ERROR_RESPONSES, install_error_handlers
from api.middleware import RequestMetricsMiddleware
from api.openapi_bodies import install as install_body_schemas
from api.routers import (
    admin,
    alerts,
    analytics,
    correlations,
    dlq,
    docs,
    events,
    health,
    keys,
    otlp_reads,
    query,
    schemas,
    ws,
)
from api.security import guard
from api.state import ApiState


def create_app(state: ApiState) -> FastAPI:
    app = FastAPI(
        title="LLM Analytics Hub",
        version="0.1.0",
        description="Ingestion, events, schemas and the dead-letter queue of the LLM Analytics Hub.",
        dependencies=[Depends(guard)],
        responses=ERROR_RESPONSES,
        # /docs is api/routers/docs.py (Swagger UI from vendored files: FastAPI's loads it from a CDN);
        # ReDoc, which loads from a CDN too, is off
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.hub = state
    install_error_handlers(app)
    install_body_schemas(app)
    for router in (health.router, events.router, schemas.router, dlq.router, ws.router, query.router, keys.router,
                   admin.router):  # fmt: skip
        app.include_router(router)
    app.include_router(otlp_reads.router)
    app.include_router(correlations.router)
    app.include_router(alerts.router)
    app.include_router(analytics.router)
    app.include_router(console_router)
    app.include_router(docs.router)
    app.add_middleware(StaticFastPath)  # console static files before the routing (api/console/fast.py)
    app.add_middleware(RequestMetricsMiddleware, metrics=state.metrics)  # the outer: counts those too
    return app
