"""``/docs``: Swagger UI for ``/openapi.json``, served from this hub alone (no CDN, works offline).

FastAPI's own page loads Swagger UI from cdn.jsdelivr.net and its favicon from fastapi.tiangolo.com, so
on a machine without internet it stayed blank. This page links the vendored copy instead
(``api/console/static/vendor/swagger-ui-bundle.js`` and ``swagger-ui.css``, swagger-ui-dist 5.35.0,
Apache-2.0; ``docs/console.md`` says how to upgrade it) through the console's static route, so the
assets get the same treatment: ``?v=<content hash>`` URLs cached a year (``immutable``), gzip for clients
that accept it, ``ETag`` and 304. Swagger UI is started by ``static/swagger-init.js`` (no inline script),
so the page carries the console's strict Content-Security-Policy: the browser itself refuses any
request to another origin. ReDoc (``/redoc``, which loads from a CDN too) is turned off.

    app = FastAPI(docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    app.include_router(docs.router)        # GET and HEAD /docs; public, like /openapi.json
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from api.console.router import SECURITY_HEADERS, asset_url
from api.errors import head_response

router = APIRouter(include_in_schema=False)

#: The vendored files the page links (under ``api/console/static``).
SWAGGER_JS = "vendor/swagger-ui-bundle.js"
SWAGGER_CSS = "vendor/swagger-ui.css"
SWAGGER_INIT = "swagger-init.js"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{css}">
<script src="{js}" defer></script>
<script src="{init}" defer></script>
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
</body>
</html>
"""


def docs_html(title: str, openapi_url: str) -> str:
    """The page: links to the vendored assets by versioned URL, the OpenAPI document's URL as data.

    >>> html = docs_html("Hub <1>", "/openapi.json")
    >>> "Hub &lt;1&gt;" in html, 'data-openapi-url="/openapi.json"' in html, "https://" in html
    (True, True, False)
    """
    return _PAGE.format(title=escape(title), css=escape(asset_url(SWAGGER_CSS)), js=escape(asset_url(SWAGGER_JS)),
                        init=escape(asset_url(SWAGGER_INIT)), openapi=escape(openapi_url))  # fmt: skip


def _docs_response(request: Request) -> Response:
    app = request.app
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}  # asset URLs change with their content
    return HTMLResponse(docs_html(app.title, app.openapi_url or "/openapi.json"), headers=headers)


@router.get("/docs", name="swagger_ui")
async def swagger_ui(request: Request) -> Response:
    return _docs_response(request)


@router.head("/docs", name="swagger_ui_head")
async def swagger_ui_head(request: Request) -> Response:
    return head_response(_docs_response(request))
