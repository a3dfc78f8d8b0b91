"""The hub's own traces (tenant ``_hub``, :mod:`hub.selftrace`) are readable through the OTLP read routes by a
caller allowed to cross tenants (``?tenant=_hub`` or ``X-Scope-OrgID: _hub``), and by no one else; every other
route, every write and every query body still refuses ``_hub`` (400 ``bad_tenant``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.routers.otlp_reads import router as otlp_reads_router
from api.security import HUB_TENANT_ROUTES, ROUTE_PERMISSIONS
from hubcore.security.audit import iter_records
from tests.helpers.events import make_event
from tests.helpers.hub import RunningHub, hub_config, running_hub

HUB = {"X-Scope-OrgID": "_hub"}


@pytest.fixture(autouse=True)
def _self_traces_to_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Self-traces go to the store only when no OTLP endpoint is set (:func:`hub.selftrace.configure_tracing`)."""
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RunningHub]:
    cfg = hub_config(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True,
                     service__audit__enabled=True)  # fmt: skip
    with running_hub(tmp_path, cfg) as h:
        yield h


def _key(hub: RunningHub, tenant: str, role: str) -> dict[str, str]:
    store = hub.service.security.key_store
    assert store is not None
    return {"Authorization": f"Bearer {store.create(tenant_id=tenant, role=role).key}"}


def _audit(hub: RunningHub) -> list[dict[str, Any]]:
    audit = hub.service.security.audit
    assert audit is not None
    return list(iter_records(audit.path))


def _traced_ingest(hub: RunningHub, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Ingest one batch (which the hub traces as ``ingest native events``) and wait until the ``_hub`` spans
    are in the store; the hub's own spans, as the SQL of tests/test_selftrace.py sees them."""
    r = httpx.post(f"{hub.api}/api/v1/events", json=[make_event("cost")], headers=headers)
    assert r.status_code == 202, r.text
    hub.service.tracer_provider.force_flush()
    deadline = time.monotonic() + 10
    rows: list[tuple[Any, ...]] = []
    while not rows and time.monotonic() < deadline:
        rows = hub.sql("SELECT trace_id, span_id, name FROM spans WHERE tenant_id = '_hub'")
        time.sleep(0.05)
    assert rows, "the hub stored no span of its own"
    return [{"trace_id": t, "span_id": s, "name": n} for t, s, n in rows]


def test_a_platform_admin_reads_the_hubs_own_spans_and_traces(hub: RunningHub) -> None:
    admin = _key(hub, "ops", "platform_admin")
    stored = _traced_ingest(hub, _key(hub, "tenant-a", "ingest"))
    ingest = next(s for s in stored if s["name"] == "ingest native events")
    before = len(_audit(hub))

    for extra, params in (({}, {"tenant": "_hub"}), (HUB, {})):  # ?tenant=_hub, then X-Scope-OrgID: _hub
        r = httpx.get(f"{hub.api}/api/v1/spans", params=params, headers={**admin, **extra})
        assert r.status_code == 200, r.text
        spans = r.json()["spans"]
        assert {s["span_id"] for s in spans} == {s["span_id"] for s in stored}
        assert {s["service_name"] for s in spans} == {"llm-analytics-hub"}

        r = httpx.get(f"{hub.api}/api/v1/traces/{ingest['trace_id']}", params=params, headers={**admin, **extra})
        assert r.status_code == 200, r.text
        assert ingest["span_id"] in {s["span_id"] for s in r.json()["spans"]}

    named = {"tenant": "_hub", "name": "ingest native events"}
    r = httpx.get(f"{hub.api}/api/v1/spans", params=named, headers=admin)  # the docs/query.md example
    assert r.status_code == 200 and ingest["span_id"] in {s["span_id"] for s in r.json()["spans"]}, r.text

    # the other OTLP reads take it too (the hub writes no logs or metric points of its own there)
    for path, key in (("logs", "logs"), ("metrics", "metric_points"), ("metrics/names", "metrics")):
        r = httpx.get(f"{hub.api}/api/v1/{path}", headers={**admin, **HUB})
        assert r.status_code == 200 and r.json()[key] == [], (path, r.text)
    # the admin's own tenant does not see them: _hub is only read when named
    assert httpx.get(f"{hub.api}/api/v1/spans", headers=admin).json()["spans"] == []

    reads = [r for r in _audit(hub)[before:] if r.get("target_tenant_id") == "_hub"]
    assert reads and all(r["tenant_id"] == "ops" and r["outcome"] == "allowed" for r in reads), reads
    assert {r["resource"] for r in reads} >= {"traces/_hub", "logs/_hub", "metric_points/_hub"}


def test_a_caller_who_may_not_cross_tenants_gets_the_foreign_tenant_403(hub: RunningHub) -> None:
    _traced_ingest(hub, _key(hub, "tenant-a", "ingest"))
    before = len(_audit(hub))
    for role in ("tenant_admin", "analytics_viewer"):
        key = _key(hub, "tenant-a", role)
        for path in ("/api/v1/spans", "/api/v1/traces/5b8efff798038103d269b633813fc60c", "/api/v1/logs",
                     "/api/v1/metrics", "/api/v1/metrics/names"):  # fmt: skip
            for extra, params in (({}, {"tenant": "_hub"}), (HUB, {})):
                r = httpx.get(hub.api + path, params=params, headers={**key, **extra})
                assert r.status_code == 403, (role, path, extra, r.text)
                error = r.json()["error"]
                assert error["code"] == "forbidden" and "_hub" in error["message"], error
                foreign = httpx.get(hub.api + path, params={"tenant": "tenant-b"}, headers=key)
                assert foreign.status_code == 403 and foreign.json()["error"]["code"] == error["code"]
    denied = [r for r in _audit(hub)[before:] if r.get("target_tenant_id") == "_hub"]
    assert denied and all(r["outcome"] == "denied" and r["tenant_id"] == "tenant-a" for r in denied)


def test_everything_else_still_refuses_the_hub_tenant(hub: RunningHub) -> None:
    admin = _key(hub, "ops", "platform_admin")

    def refused(r: httpx.Response) -> None:
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_tenant", (r.request.url, r.text)

    # writes: a query parameter or the header
    refused(httpx.post(f"{hub.api}/api/v1/events?tenant=_hub", json=[make_event("cost")], headers=admin))
    refused(httpx.post(f"{hub.api}/api/v1/events", json=[make_event("cost")], headers={**admin, **HUB}))
    # a query body, alone and in a batch
    q = {"time_range": {"last": "1h"}, "aggregation": {"functions": ["count"]}}
    refused(httpx.post(f"{hub.api}/api/v1/query", json={**q, "tenant": "_hub"}, headers=admin))
    refused(httpx.post(f"{hub.api}/api/v1/query/batch", json={"queries": [q], "tenant": "_hub"}, headers=admin))
    refused(httpx.post(f"{hub.api}/api/v1/query", json=q, headers={**admin, **HUB}))
    # other reads
    for path in ("/api/v1/events", "/api/v1/alerts", "/api/v1/anomalies", "/api/v1/dlq", "/api/v1/audit"):
        refused(httpx.get(hub.api + path, params={"tenant": "_hub"}, headers=admin))
        refused(httpx.get(hub.api + path, headers={**admin, **HUB}))
    assert hub.sql("SELECT count(*) FROM events WHERE tenant_id = '_hub'") == [(0,)]


def test_an_open_hub_reads_its_own_traces(tmp_path: Path) -> None:
    """Auth off: the anonymous caller may cross tenants (as it may ask for ``"*"``), so it may read ``_hub``."""
    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub:
        stored = _traced_ingest(hub, {})
        r = httpx.get(f"{hub.api}/api/v1/spans?tenant=_hub")
        assert r.status_code == 200 and {s["span_id"] for s in r.json()["spans"]} == {s["span_id"] for s in stored}
        r = httpx.get(f"{hub.api}/api/v1/events", headers=HUB)
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_tenant"


def test_the_hub_tenant_routes_are_the_otlp_reads() -> None:
    routes = {(m, getattr(r, "path", "")) for r in otlp_reads_router.routes for m in getattr(r, "methods", ())}
    assert routes == HUB_TENANT_ROUTES
    assert HUB_TENANT_ROUTES.issubset(ROUTE_PERMISSIONS)
