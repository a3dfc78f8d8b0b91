"""Routes of the web console: the pages, their static files and the live summary stream.

* ``GET /`` and ``GET /console/<page>`` — HTML shells (Jinja2, autoescaped); no data inside, so they
  are public like ``/docs``. The data comes from the public API, called by the pages' JavaScript with
  the user's credentials.
* ``GET /console/static/{path}`` — CSS, JavaScript and the vendored ECharts (public, no data). The
  pages link them as ``{path}?v=<content hash>``: such a URL never changes meaning, so it is cached
  for a year without revalidation (``immutable``); without ``v`` (or with a stale one) ``no-cache``.
  In the hub's app :mod:`api.console.fast` answers them before FastAPI's routing, with the same function.
* ``HEAD`` of a page or a static file answers the GET's status and headers without a body (load
  balancers and uptime checkers probe with HEAD).
* ``GET /console/stream`` — Server-Sent Events: ``event: summary`` with fresh headline numbers every
  ``interval`` seconds (default 5) for the caller's tenant; needs ``dashboards:read``. Streams of the
  same tenant, window and filters share one computation per interval (:class:`SummaryMemo`).

Every response carries a strict Content-Security-Policy (scripts only from this origin, no inline
script), ``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY``.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import mimetypes
import re
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from api.console.summary import compute_summary
from api.deps import get_state, read_tenant
from api.errors import error_response, head_response
from api.negotiation import preferred_encoding
from api.routers.query import get_executor
from api.state import ApiState
from hubcore.query.executor import QueryExecutor
from hubcore.query.model import QueryError

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
GZIP_TYPES = (".js", ".css", ".html", ".svg", ".json", ".txt")


class _Asset(NamedTuple):
    mtime: float
    version: str  # sha256 prefix of the content: the ``v`` of the asset's URL and its ETag
    raw: bytes
    gzipped: bytes | None
    media: str  # the Content-Type


_assets: dict[str, _Asset] = {}
#: requested name -> the file's name relative to STATIC, for names that were found (checked once)
_found: dict[str, str] = {}
_FOUND_MAX = 1024  # other spellings of the same files ("./x.js") are checked every time past this


def _asset(path: str) -> _Asset:
    """A static file's bytes, content hash and gzip form, kept in memory (re-read when its mtime changes)."""
    target = STATIC / path
    mtime = target.stat().st_mtime
    known = _assets.get(path)
    if known is None or known.mtime != mtime:
        raw = target.read_bytes()
        gz = gzip.compress(raw, 9, mtime=0) if target.suffix in GZIP_TYPES else None
        media = "text/javascript" if target.suffix == ".js" else mimetypes.guess_type(target.name)[0]
        known = _Asset(mtime, hashlib.sha256(raw).hexdigest()[:12], raw, gz, media or "application/octet-stream")
        _assets[path] = known
    return known


def _find(path: str) -> str | None:
    """``path``'s file relative to STATIC, or None: no such file, a folder, or a name leaving the folder."""
    name = _found.get(path)
    if name is not None:
        return name
    try:
        target = (STATIC / path).resolve()
        found = target.is_relative_to(STATIC) and target.is_file()
    except (ValueError, OSError):  # a NUL byte in the name, a name too long for the file system
        found = False
    if not found:
        return None
    name = str(target.relative_to(STATIC))
    if len(_found) < _FOUND_MAX:
        _found[path] = name
    return name


def asset_version(path: str) -> str:
    """A short content hash of a static file: the ``v`` of its URL."""
    return _asset(path).version


def asset_url(path: str) -> str:
    """``/console/static/<path>?v=<hash>`` — what the templates link (``{{ asset('console.js') }}``)."""
    return f"/console/static/{path}?v={asset_version(path)}"


templates.env.globals["asset"] = asset_url

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class Page(NamedTuple):
    path: str
    title: str
    nav: str


#: name -> page. The order is the navigation's.
PAGES: dict[str, Page] = {
    "summary": Page("/", "Executive summary", "Summary"),
    "performance": Page("/console/performance", "Performance", "Performance"),
    "cost": Page("/console/cost", "Cost", "Cost"),
    "security": Page("/console/security", "Security", "Security"),
    "governance": Page("/console/governance", "Governance", "Governance"),
    "anomalies": Page("/console/anomalies", "Anomalies", "Anomalies"),
    "correlations": Page("/console/correlations", "Correlations and incidents", "Incidents"),
    "alerts": Page("/console/alerts", "Alerts", "Alerts"),
    "events": Page("/console/events", "Raw events", "Events"),
}
STATIC_ROUTE = "/console/static/{path:path}"
STREAM_ROUTE = "/console/stream"
#: Route paths that need no credential (they hold no data). api/security.py lists the same paths.
PUBLIC_PATHS = frozenset({*(p.path for p in PAGES.values()), "/console", STATIC_ROUTE})

router = APIRouter(include_in_schema=False)
_LAST = re.compile(r"^[1-9][0-9]{0,2}[mhdw]$")
_FILTER_FIELDS = ("environment", "model", "team")


def _page_response(request: Request, name: str) -> Response:
    page = PAGES[name]
    resp = templates.TemplateResponse(
        request, f"{name}.html", {"page": name, "title": page.title, "pages": PAGES, "active": name}
    )
    resp.headers.update(SECURITY_HEADERS)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


def _add_page(name: str, path: str) -> None:
    async def page(request: Request) -> Response:
        return _page_response(request, name)

    async def page_head(request: Request) -> Response:  # load balancers and uptime checkers probe with HEAD
        return head_response(_page_response(request, name))

    page.__name__ = f"console_{name}"
    page_head.__name__ = f"console_{name}_head"
    router.add_api_route(path, page, methods=["GET"], response_class=Response, name=f"console_{name}")
    router.add_api_route(path, page_head, methods=["HEAD"], response_class=Response, name=f"console_{name}_head")


for _name, _page in PAGES.items():
    _add_page(_name, _page.path)
_add_page("summary", "/console")


def static_answer(path: str, v: str | None, if_none_match: str | None, accept_encoding: str | None) -> Response:
    """The answer to ``GET /console/static/<path>?v=<v>``, from memory (the route and :mod:`api.console.fast`).

    Text assets go gzip-compressed to clients that accept it (compressed once, not per request);
    ``If-None-Match`` with the current ETag gets ``304 Not Modified`` (what a browser's revalidation of an
    unversioned URL costs)."""
    try:
        name = _find(path)
        asset = _asset(name) if name is not None else None
    except OSError:  # removed since it was found
        _found.pop(path, None)
        asset = None
    if asset is None:
        return error_response(404, "not_found", f"no console asset {path[:200]!r}")
    cache = "public, max-age=31536000, immutable" if v == asset.version else "no-cache"
    headers = {**SECURITY_HEADERS, "Cache-Control": cache, "ETag": f'"{asset.version}"', "Vary": "Accept-Encoding"}
    if if_none_match and f'"{asset.version}"' in if_none_match:
        return Response(status_code=304, headers=headers)
    coding = preferred_encoding(accept_encoding, ("gzip", "identity"))
    if asset.gzipped is not None and coding == "gzip":  # q-values honoured: "gzip;q=0" refuses it
        return Response(asset.gzipped, media_type=asset.media, headers={**headers, "Content-Encoding": "gzip"})
    return Response(asset.raw, media_type=asset.media, headers=headers)


@router.get(STATIC_ROUTE, name="console_static")
async def static_file(request: Request, path: str, v: str | None = None) -> Response:
    """A file under ``api/console/static`` (no directory listing, no escape from the folder).

    In the hub's app :class:`api.console.fast.StaticFastPath` answers these before FastAPI's routing;
    this route is what it answers like (and what the route table, OpenAPI and the auth tables list)."""
    h = request.headers
    return static_answer(path, v, h.get("if-none-match"), h.get("accept-encoding"))


@router.head(STATIC_ROUTE, name="console_static_head")
async def static_file_head(request: Request, path: str, v: str | None = None) -> Response:
    """``HEAD`` of :func:`static_file`: its status and headers, no body."""
    return head_response(await static_file(request, path, v))


class SummaryMemo:
    """Summary figures shared by every stream of the same (tenant, window, filters) for ``max_age`` s,
    so that a hundred open consoles cost one set of queries per interval, not a hundred."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, executor: QueryExecutor, tenant: str, last: str, filters: list[dict[str, str]],
            max_age: float) -> dict[str, Any]:  # fmt: skip
        key = msgspec.json.encode([tenant, last, filters]).decode()
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and now - hit[0] < max_age:
            return hit[1]
        value = compute_summary(executor, tenant, last, filters)
        with self._lock:
            self._entries[key] = (now, value)
            while len(self._entries) > self.size:
                self._entries.pop(next(iter(self._entries)))
        return value


def _memo(request: Request) -> SummaryMemo:
    memo: SummaryMemo | None = getattr(request.app.state, "console_summary", None)
    if memo is None:
        memo = request.app.state.console_summary = SummaryMemo()
    return memo


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"


@router.get(STREAM_ROUTE, name="console_stream")
async def stream(
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    last: str = "24h",
    interval: Annotated[float, Query(ge=1, le=60)] = 5.0,
    count: Annotated[int, Query(ge=0, le=100_000)] = 0,
    tenant: str | None = None,
    environment: str | None = None,
    model: str | None = None,
    team: str | None = None,
) -> Response:
    """Server-Sent Events: ``summary`` every ``interval`` s (``count`` > 0 stops after that many)."""
    if not _LAST.match(last):
        return error_response(400, "bad_last", f"last must look like 15m, 24h, 7d or 2w, got {last!r}")
    t = read_tenant(request, state, tenant)
    given = {"environment": environment, "model": model, "team": team}
    filters = [{"field": k, "operator": "eq", "value": v} for k, v in given.items() if v]
    executor = get_executor(request)
    memo = _memo(request)

    async def events() -> AsyncIterator[bytes]:
        sent = 0
        yield b"retry: 5000\n\n"
        while True:
            try:
                summary = await run_in_threadpool(memo.get, executor, t, last, filters, min(interval, 5.0) - 0.5)
                yield _sse("summary", summary)
            except QueryError as exc:
                yield _sse("error", {"message": str(exc)})
            sent += 1
            if count and sent >= count:
                return
            for _ in range(int(interval * 10)):
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.1)

    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
