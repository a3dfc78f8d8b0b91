"""``/docs`` is served from this hub alone: Swagger UI vendored, no CDN, no favicon from elsewhere."""

from __future__ import annotations

import doctest
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import api.routers.docs
from api.console.router import CSP, STATIC
from api.routers.docs import SWAGGER_CSS, SWAGGER_INIT, SWAGGER_JS
from tests.helpers.hub import RunningHub, running_hub

_LINK = re.compile(r'(?:src|href)="([^"]*)"')
TYPES = {".js": "text/javascript", ".css": "text/css"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("docs"), grpc=False, otlp_http=False) as h:
        yield h


def test_docs_page_links_only_this_hubs_assets_and_they_are_served(hub: RunningHub) -> None:
    r = httpx.get(f"{hub.api}/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == CSP  # the browser refuses other origins: no CDN can sneak in
    assert r.headers["cache-control"] == "no-cache" and r.headers["x-content-type-options"] == "nosniff"
    assert not re.search(r"https?:|//[a-z]", r.text), "the page names another origin"  # FastAPI's named 2
    assert "<script>" not in r.text  # no inline script (the CSP would block it)
    links = _LINK.findall(r.text)
    assert links[0] == "data:," and len(links) == 4  # favicon (was fastapi.tiangolo.com), css, bundle, init
    assert 'data-openapi-url="/openapi.json"' in r.text
    for link in links[1:]:
        path, _, version = link.partition("?v=")
        name = path.removeprefix("/console/static/")
        assert name in (SWAGGER_CSS, SWAGGER_JS, SWAGGER_INIT) and version, link
        asset = httpx.get(hub.api + link)
        assert asset.status_code == 200, link
        assert asset.headers["content-type"].startswith(TYPES[Path(name).suffix]), link
        assert asset.content == (STATIC / name).read_bytes()
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    openapi = httpx.get(f"{hub.api}/openapi.json")
    assert openapi.status_code == 200 and openapi.json()["info"]["title"] == "LLM Analytics Hub"


def test_the_vendored_bundle_is_swagger_ui_5_with_its_licence() -> None:
    bundle = (STATIC / SWAGGER_JS).read_text()
    assert "SwaggerUIBundle" in bundle and len(bundle) > 1_000_000
    assert ".swagger-ui" in (STATIC / SWAGGER_CSS).read_text()
    assert "Apache License" in (STATIC / "vendor" / "SWAGGER-UI-LICENSE").read_text()
    assert "SmartBear" in (STATIC / "vendor" / "SWAGGER-UI-NOTICE").read_text()
    assert bundle.startswith("/*! For license information please see swagger-ui-bundle.js.LICENSE.txt */")
    assert (STATIC / "vendor" / "swagger-ui-bundle.js.LICENSE.txt").is_file()
    init = (STATIC / SWAGGER_INIT).read_text()
    assert not re.search(r"https?://", init) and "validatorUrl: null" in init  # no call to validator.swagger.io


def test_head_of_docs_answers_like_get_without_a_body(hub: RunningHub) -> None:
    get = httpx.get(f"{hub.api}/docs")
    head = httpx.head(f"{hub.api}/docs")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["content-type"] == get.headers["content-type"]


@pytest.mark.parametrize("path", ["/redoc", "/docs/oauth2-redirect"])
def test_redoc_and_the_oauth2_redirect_are_gone_with_the_error_shape(hub: RunningHub, path: str) -> None:
    # ReDoc loaded from cdn.jsdelivr.net and fonts.googleapis.com; the API has no OAuth2 flow to redirect
    r = httpx.get(hub.api + path)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_docs_with_auth_on_is_public(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True) as h:
        assert httpx.get(f"{h.api}/docs").status_code == 200
        assert httpx.get(f"{h.api}/api/v1/events").status_code == 401


def test_docstring() -> None:
    assert doctest.testmod(api.routers.docs).failed == 0
