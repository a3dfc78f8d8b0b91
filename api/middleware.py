"""A thin ASGI middleware timing every HTTP request into ``hub_request_duration_seconds``."""

from __future__ import annotations

import time
from typing import Any

from hubcore.telemetry import HubMetrics


class RequestMetricsMiddleware:
    def __init__(self, app: Any, metrics: HubMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.request_seconds.labels(
                route=path, method=scope.get("method", ""), status=f"{status['code'] // 100}xx"
            ).observe(time.perf_counter() - started)
