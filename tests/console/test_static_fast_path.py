"""``api.console.fast.StaticFastPath`` answers console static files exactly as the FastAPI route does,
without the router: gzip negotiation, ETag/304, ``immutable`` for the current version, HEAD, 404s."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.console.fast import StaticFastPath
from api.errors import install_error_handlers
from tests.helpers.hub import running_hub

console = import_module("api.console.router")  # the module (api.console.router is also the APIRouter's name)
ECHARTS = "/console/static/vendor/echarts.min.js"


class Counting:
    """The app behind the fast path, counting what reaches it."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


def _routed() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(console.router)
    return app


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[TestClient, TestClient, Counting]]:
    behind = Counting(_routed())
    with TestClient(_routed()) as routed, TestClient(StaticFastPath(behind)) as fast:
        yield routed, fast, behind


def _versioned(name: str) -> str:
    return console.asset_url(name)


def _cases() -> list[tuple[str, str, dict[str, str]]]:
    v = _versioned("vendor/echarts.min.js")
    etag = '"' + hashlib.sha256((console.STATIC / "vendor/echarts.min.js").read_bytes()).hexdigest()[:12] + '"'
    return [
        ("GET", ECHARTS, {"Accept-Encoding": "gzip"}),
        ("GET", ECHARTS, {"Accept-Encoding": "identity"}),
        ("GET", ECHARTS, {"Accept-Encoding": "gzip;q=0, identity"}),
        ("GET", ECHARTS, {"Accept-Encoding": "br, gzip;q=0.000"}),
        ("GET", ECHARTS, {"Accept-Encoding": "GZIP;q=0.5"}),
        ("GET", ECHARTS, {"Accept-Encoding": "*"}),
        ("GET", v, {"Accept-Encoding": "gzip"}),  # current version: immutable
        ("GET", ECHARTS + "?v=stale", {"Accept-Encoding": "gzip"}),  # stale version: no-cache
        ("GET", ECHARTS + "?v=stale&v=" + v.split("=")[1], {}),  # the last v counts
        ("GET", ECHARTS, {"If-None-Match": etag}),
        ("GET", ECHARTS, {"If-None-Match": f'"x", {etag}'}),
        ("GET", ECHARTS, {"If-None-Match": '"stale"'}),
        ("HEAD", ECHARTS, {"Accept-Encoding": "gzip"}),
        ("HEAD", v, {"Accept-Encoding": "identity"}),
        ("HEAD", "/console/static/nope.js", {}),
        ("GET", "/console/static/console.css", {"Accept-Encoding": "gzip"}),
        ("GET", "/console/static/vendor/ECHARTS-LICENSE", {"Accept-Encoding": "gzip"}),  # not a text type: raw
        ("GET", "/console/static/vendor/swagger-ui.css", {"Accept-Encoding": "gzip"}),
        ("GET", "/console/static/", {}),
        ("GET", "/console/static/vendor", {}),  # a folder
        ("GET", "/console/static/%2e%2e/router.py", {}),
        ("GET", "/console/static/..%2Frouter.py", {}),
        ("GET", "/console/static/%00", {}),
        ("GET", "/console/static/" + "a" * 5000, {}),
    ]


@pytest.mark.parametrize(("method", "url", "headers"), _cases())
def test_the_fast_path_answers_like_the_route(clients: tuple[TestClient, TestClient, Counting], method: str, url: str,
                                              headers: dict[str, str]) -> None:  # fmt: skip
    routed, fast, behind = clients
    before = behind.calls
    want = routed.request(method, url, headers=headers)
    got = fast.request(method, url, headers=headers)
    assert behind.calls == before, "the request went through the router"
    assert got.status_code == want.status_code
    assert dict(got.headers) == dict(want.headers)
    assert got.content == want.content
    if want.status_code == 404 and method == "GET":
        assert got.json()["error"]["code"] == "not_found"


def test_negotiation_etag_and_head_of_the_fast_path(clients: tuple[TestClient, TestClient, Counting]) -> None:
    _, fast, _ = clients
    raw = (console.STATIC / "vendor/echarts.min.js").read_bytes()
    zipped = fast.get(ECHARTS, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == raw  # decoded by the client
    assert int(zipped.headers["content-length"]) < len(raw) / 2 and zipped.headers["vary"] == "Accept-Encoding"
    plain = fast.get(ECHARTS, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in plain.headers and plain.content == raw
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert plain.headers["cache-control"] == "no-cache"
    versioned = fast.get(_versioned("vendor/echarts.min.js"))
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = fast.get(ECHARTS, headers={"If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == plain.headers["etag"]
    head = fast.head(ECHARTS, headers={"Accept-Encoding": "gzip"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == zipped.headers["content-length"]


def test_other_methods_and_paths_pass_through(clients: tuple[TestClient, TestClient, Counting]) -> None:
    _, fast, behind = clients
    before = behind.calls
    r = fast.post("/console/static/console.js")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert fast.get("/console/performance").status_code == 200  # a page: the router's
    assert fast.get("/consolex/static/console.js").status_code == 404
    assert behind.calls == before + 3


def test_a_file_removed_or_changed_after_it_was_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "STATIC", tmp_path)
    monkeypatch.setattr(console, "_found", {})
    monkeypatch.setattr(console, "_assets", {})
    f = tmp_path / "x.js"
    f.write_text("one()")
    with TestClient(StaticFastPath(_routed())) as fast:
        first = fast.get("/console/static/x.js")
        assert first.status_code == 200 and first.text == "one()"
        f.unlink()
        gone = fast.get("/console/static/x.js")  # was found before: still checked, 404 not 500
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
        f.write_text("two(2)")
        back = fast.get("/console/static/x.js")
        assert back.text == "two(2)" and back.headers["etag"] != first.headers["etag"]


def test_the_hub_counts_fast_path_requests_under_the_static_route(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub:
        assert any(m.cls is StaticFastPath for m in hub.service.app.user_middleware)
        for _ in range(3):
            assert httpx.get(hub.api + "/console/static/console.js").status_code == 200
        assert httpx.head(hub.api + "/console/static/nope.js").status_code == 404
        metrics = httpx.get(hub.api + "/metrics").text
    label = 'method="GET",route="/console/static/{path:path}",status="2xx"'
    assert f"hub_request_duration_seconds_count{{{label}}} 3.0" in metrics
    assert 'method="HEAD",route="/console/static/{path:path}",status="4xx"' in metrics
