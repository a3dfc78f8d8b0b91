"""The console without a browser: pages, static files, headers, escaping, the SSE stream, auth."""

from __future__ import annotations

import doctest
import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest

import api.console.summary
from api.console.router import CSP, PAGES, PUBLIC_PATHS, STATIC, templates
from api.security import PUBLIC, ROUTE_PERMISSIONS
from tests.console.conftest import PERIOD_MODELS, Periods, Seeded, seed
from tests.helpers.hub import running_hub

JS_FILES = ["console.js", "pages.js"]


def test_every_page_is_html_with_security_headers(seeded: Seeded) -> None:
    for name, page in PAGES.items():
        r = httpx.get(seeded.api + page.path)
        assert r.status_code == 200, (name, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["content-security-policy"] == CSP
        assert (
            "script-src 'self'" in CSP
            and "unsafe-eval" not in CSP
            and "'unsafe-inline'" not in CSP.split("style-src")[0]
        )
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert f'data-page="{name}"' in r.text
        assert "/console/static/vendor/echarts.min.js" in r.text
        assert "<script>" not in r.text, "no inline script (the CSP forbids it)"
    assert httpx.get(seeded.api + "/console").status_code == 200


def test_static_files_are_served_with_types_and_no_escape(seeded: Seeded) -> None:
    js = httpx.get(seeded.api + "/console/static/console.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    css = httpx.get(seeded.api + "/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    vendor = httpx.get(seeded.api + "/console/static/vendor/echarts.min.js")
    assert vendor.status_code == 200 and len(vendor.content) > 500_000
    assert vendor.headers["cache-control"] == "no-cache"  # unversioned: revalidated


def test_head_on_pages_and_static_files_answers_like_get_without_a_body(seeded: Seeded) -> None:
    # load balancers and uptime checkers probe with HEAD: it had been a 405
    paths = ["/console", "/console/static/console.js", "/console/static/nope.js", *(p.path for p in PAGES.values())]
    for path in paths:
        got, head = httpx.get(seeded.api + path), httpx.head(seeded.api + path)
        assert head.status_code == got.status_code, (path, head.status_code)
        assert head.content == b"", path
        for name in ("content-type", "content-length", "content-security-policy", "cache-control"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
    assert httpx.head(seeded.api + "/console/static/nope.js").status_code == 404


def test_pages_link_versioned_assets_that_are_cached_without_revalidation(seeded: Seeded) -> None:
    html = httpx.get(seeded.api + "/").text
    links = re.findall(r'(?:src|href)="(/console/static/[^"]+)"', html)
    assert len(links) == 4 and all("?v=" in u for u in links), links
    for url in links:
        path, v = url.removeprefix("/console/static/").split("?v=")
        assert v == hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:12]
        r = httpx.get(seeded.api + url)
        assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.content == (STATIC / path).read_bytes()
        stale = httpx.get(f"{seeded.api}/console/static/{path}?v=000000000000")  # an old page's link
        assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
    for bad in ("/console/static/%2e%2e/router.py", "/console/static/..%2Frouter.py", "/console/static/vendor",
                "/console/static/nope.js", "/console/static/%2e%2e/%2e%2e/security.py"):  # fmt: skip
        r = httpx.get(seeded.api + bad)
        assert r.status_code == 404, (bad, r.status_code)
        assert "def " not in r.text


@pytest.mark.parametrize("name", ["%00", "console.js%00.html", "a" * 5000, "vendor/" + "b" * 300 + "/x.js"])
def test_unservable_static_names_are_404(seeded: Seeded, name: str) -> None:
    r = httpx.get(f"{seeded.api}/console/static/{name}")  # a NUL byte or ENAMETOOLONG had been a 500
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"


def test_no_cdn_and_no_html_sinks_in_the_console_code() -> None:
    for f in [*JS_FILES, "console.css"]:
        text = (STATIC / f).read_text()
        assert not re.search(r"https?://", text), f"{f} references an outside URL"
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{f} uses {sink}"
    for tpl in Path(templates.env.loader.searchpath[0]).glob("*.html"):  # type: ignore[union-attr]
        assert not re.search(r"(src|href)=\"https?://", tpl.read_text()), tpl.name
    assert "Apache License" in (STATIC / "vendor" / "ECHARTS-LICENSE").read_text()


def test_templates_autoescape() -> None:
    tpl = templates.env.get_template("base.html")
    html = tpl.render(page="summary", title="<script>alert(1)</script>", pages=PAGES, active="summary")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_routes_are_in_the_security_tables() -> None:
    assert PUBLIC_PATHS <= PUBLIC
    assert ROUTE_PERMISSIONS[("GET", "/console/stream")] == ("dashboards:read", "dashboards")


def test_summary_docstring() -> None:
    assert doctest.testmod(api.console.summary).failed == 0


def _first_summary(api: str, headers: dict[str, str] | None = None, **params: str) -> dict[str, object]:
    with httpx.stream("GET", f"{api}/console/stream", params={"count": "1", "interval": "1", **params}, headers=headers,
                      timeout=30) as r:  # fmt: skip
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    m = re.search(r"event: summary\ndata: (.*)\n", text)
    assert m, text
    return dict(json.loads(m.group(1)))


def test_stream_matches_the_query_api(seeded: Seeded) -> None:
    # 7 d: every seeded event is inside, so none leaves the sliding window between the two reads
    s = _first_summary(seeded.api, last="7d")
    q = {"time_range": {"last": "7d"}, "metric": {"event_type": "telemetry", "name": "gen_ai.client.operation.duration"},
         "aggregation": {"functions": ["count"]}}  # fmt: skip
    expected = httpx.post(f"{seeded.api}/api/v1/query", json=q).json()["data"][0]["count"]
    assert s["requests"] == expected > 0
    assert isinstance(s["cost_usd"], float) and s["cost_usd"] > 0
    assert 0 < float(s["compliance_rate"]) <= 1  # type: ignore[arg-type]
    only = _first_summary(seeded.api, last="7d", model="gpt-4o")
    assert 0 < int(only["requests"]) < int(s["requests"])  # type: ignore[call-overload]
    assert httpx.get(f"{seeded.api}/console/stream", params={"last": "forever"}).status_code == 400


@pytest.mark.timeout(120)
def test_with_auth_pages_are_public_and_data_needs_a_key(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True) as hub:
        store = hub.service.security.key_store
        assert store is not None
        ingest = {"Authorization": f"Bearer {store.create(tenant_id='acme', role='ingest').key}"}
        viewer = {"Authorization": f"Bearer {store.create(tenant_id='acme', role='analytics_viewer').key}"}
        other = {"Authorization": f"Bearer {store.create(tenant_id='globex', role='analytics_viewer').key}"}
        seed(hub.api, days=0.1, events=300, headers=ingest)
        hub.flush()
        assert httpx.get(hub.api + "/").status_code == 200
        assert httpx.get(hub.api + "/console/static/pages.js").status_code == 200
        r = httpx.get(hub.api + "/console/stream", params={"count": "1"})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert int(_first_summary(hub.api, viewer)["requests"]) > 0  # type: ignore[call-overload]
        assert _first_summary(hub.api, other)["requests"] == 0
        assert (
            httpx.get(hub.api + "/console/stream", params={"count": "1", "tenant": "acme"}, headers=other).status_code
            == 403
        )


def _top_models(api: str, time_range: dict[str, str], metric: dict[str, str], fn: str) -> dict[str, float]:
    """What the summary page's top-models tables ask (pages.js topModels through Hub.query), for a window."""
    body = {"time_range": time_range, "metric": metric, "filters": [], "limit": 10,
            "aggregation": {"functions": [fn], "group_by": ["model"]}, "sort": [{"field": fn, "order": "desc"}]}  # fmt: skip
    r = httpx.post(f"{api}/api/v1/query", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return {row["model"]: row[fn] for row in r.json()["data"]}


def test_top_models_tables_use_the_page_window(periods: Periods) -> None:
    # the tables go through Hub.query with no time_range of their own: the page's window (a custom
    # start/end, or the relative range) applies to them exactly as to the charts
    js = (STATIC / "pages.js").read_text()
    top = js[js.index("async function topModels()"):js.index("// ================= performance")]
    assert "time_range" not in top and "last:" not in top
    assert top.count("Hub.query(") >= 2
    duration = {"event_type": "telemetry", "name": "gen_ai.client.operation.duration"}
    for day, (start, end) in (("a", periods.a), ("b", periods.b)):
        want = {m: float(n) for m, d, n in PERIOD_MODELS if d == day}
        window = {"start": start, "end": end}
        assert _top_models(periods.api, window, duration, "count") == want
        cost = _top_models(periods.api, window, {"event_type": "cost"}, "sum")
        assert {m: v for m, v in cost.items() if m != "steady-model"} == pytest.approx(want)
    # the default range (24 h) holds none of them; 30 d holds both days (what the old tables mixed)
    assert _top_models(periods.api, {"last": "24h"}, duration, "count") == {}
    assert set(_top_models(periods.api, {"last": "30d"}, duration, "count")) == {"alpha-model", "beta-model", "gamma-model"}


def test_assets_are_gzipped_for_clients_that_accept_it_and_revalidate_to_304(seeded: Seeded) -> None:
    url = seeded.api + "/console/static/vendor/echarts.min.js"
    raw = (STATIC / "vendor" / "echarts.min.js").read_bytes()
    zipped = httpx.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == raw  # httpx decodes it
    assert int(zipped.headers["content-length"]) < len(raw) / 2 and zipped.headers["vary"] == "Accept-Encoding"
    plain = httpx.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == raw
    # q-values count (RFC 9110): "gzip;q=0" refuses gzip (it was sent, "gzip" being in the header)
    for refused in ("gzip;q=0, identity", "gzip;q=0", "br, gzip;q=0.000", "*;q=0.5, gzip;q=0"):
        r = httpx.get(url, headers={"Accept-Encoding": refused})
        assert "content-encoding" not in r.headers and r.content == raw, refused
    for accepted in ("GZIP;q=0.5", "*", "identity;q=0.5, gzip;q=0.6", "gzip;q=1, identity;q=1"):
        assert httpx.get(url, headers={"Accept-Encoding": accepted}).headers.get("content-encoding") == "gzip", accepted
    etag = plain.headers["etag"]
    again = httpx.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert httpx.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200
