"""Console static files answered before FastAPI's routing (a thin ASGI layer over one core function).

A first visit of the console fetches its HTML and four assets, ``/docs`` three. Through FastAPI each
asset request went through the route matching of every route of the app (about a hundred, the console's
last), the app-wide auth dependency (a no-op: the files are public) and the parameter parsing: 1.3-2.5 ms
of the event loop's CPU a request, against 0.2-0.8 ms here (docs/console.md, *Benchmark*). This layer
answers ``GET``/``HEAD /console/static/<path>`` itself with :func:`api.console.router.static_answer`, the
function the FastAPI route calls too, so both answer the same bytes and headers (gzip negotiated, ETag
and 304, ``immutable`` for the current ``?v=``, 404 in the error shape). Other methods and paths pass
through untouched. It sits inside :class:`api.middleware.RequestMetricsMiddleware` and sets
``scope["route"]`` to the static route, so the request is still counted under
``route="/console/static/{path:path}"``.

    app.add_middleware(StaticFastPath)                 # api.app.create_app, before the metrics middleware
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.routing import BaseRoute

from api.console.router import STATIC_ROUTE, router, static_answer
from api.errors import head_response

PREFIX = STATIC_ROUTE.split("{", 1)[0]  # "/console/static/"


def _static_route() -> BaseRoute:
    for route in router.routes:
        if getattr(route, "path", None) == STATIC_ROUTE:
            return route
    raise LookupError(f"the console router has no {STATIC_ROUTE} route")


class StaticFastPath:
    """ASGI middleware: ``GET``/``HEAD`` of a console static file, answered without the router."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.route = _static_route()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # the path the router matches (Starlette's get_route_path)
            path = path[len(root) :]
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # what the metrics middleware labels the request with
        v = None
        if scope.get("query_string"):  # the last v=, as the route's parameter parsing takes it
            for key, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
                if key == "v":
                    v = value
        if_none_match = accept_encoding = None
        for name, value in scope["headers"]:  # the first of each, as Request.headers.get
            if name == b"if-none-match" and if_none_match is None:
                if_none_match = value.decode("latin-1")
            elif name == b"accept-encoding" and accept_encoding is None:
                accept_encoding = value.decode("latin-1")
        response = static_answer(path[len(PREFIX) :], v, if_none_match, accept_encoding)
        if scope["method"] == "HEAD":
            response = head_response(response)
        await response(scope, receive, send)
