"""Each of the eight correlation types end to end: injected into normal traffic, streamed through the engine
(ingest in batches, flushes on the way, as the hub's pipeline and flush thread do), stored, then read through
the API (list by type, incident, RCA) with times ISO-8601 UTC as elsewhere in the API; and the routes' bad
input (unknown query parameters, unknown or malformed ids, another tenant's incident) is a 4xx."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from analytics.correlation import CORRELATION_TYPES, CorrelationEngine
from analytics.correlation.scenarios import SCENARIOS, Dims, Injected, service_traffic
from api.errors import install_error_handlers
from api.routers import correlations
from api.state import SecurityContext
from hubcore.storage.embedded import EmbeddedStore
from tests.correlation._data import CASES, DURATION, T0, process

#: iso_s: whole seconds bare, otherwise six decimals (the correlation answers had ".000000Z" before)
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{5}[1-9])?Z$|^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _iso(text: Any) -> float:
    assert isinstance(text, str) and ISO_RE.match(text) and not text.endswith(".000000Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _injected(ctype: str) -> Injected:
    rng = np.random.default_rng(3)
    if ctype == "performance_degradation":
        svc = service_traffic(rng, T0, T0 + DURATION, 2.0, (T0 + 25.0, 30.0))
        return Injected(svc.events, svc.truth)
    return SCENARIOS[CASES[ctype]](rng, T0 + 30.0, Dims.pick(rng, 4))


@pytest.fixture()
def hub(tmp_path: Path) -> Iterator[SimpleNamespace]:
    store = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    store.start()
    engine = CorrelationEngine(store, export=False)
    engine.start()
    app = FastAPI()
    app.state.hub = SimpleNamespace(security=SecurityContext.open("default"), default_tenant="default", store=store,
                                    metrics=SimpleNamespace(registry=CollectorRegistry()))  # fmt: skip
    app.state.correlation_engine = engine
    install_error_handlers(app)
    app.include_router(correlations.router)
    try:
        yield SimpleNamespace(client=TestClient(app), store=store, engine=engine)
    finally:
        store.shutdown()


def _stream(hub: SimpleNamespace, cols: dict[str, list[Any]]) -> None:
    """10 s batches in time order, a flush after each (the window slides over the incident)."""
    order = np.argsort(np.asarray(cols["ts"]), kind="stable")
    ts = np.asarray(cols["ts"])[order]
    for lo in range(int(T0), int(T0 + DURATION) + 10, 10):
        sel = order[(ts >= lo * 1_000_000) & (ts < (lo + 10) * 1_000_000)]
        if len(sel) == 0:
            continue
        batch = {k: [v[i] for i in sel] for k, v in cols.items()}
        hub.store.append("events", batch)
        hub.engine.ingest(batch)
        if lo >= T0 + 40:  # the first flush once the incident has begun; then one per batch
            hub.engine.flush(now_us=(lo + 10) * 1_000_000)
    assert hub.store.flush(30)


@pytest.mark.parametrize("ctype", CORRELATION_TYPES)
def test_each_type_streamed_stored_and_served(ctype: str, hub: SimpleNamespace,
                                               noise_events: list[dict[str, Any]]) -> None:  # fmt: skip
    inj = _injected(ctype)
    _stream(hub, process([*noise_events, *inj.events], tenant="default"))
    truth = set(inj.truth.event_ids)
    window = {"start": str(T0 - 60), "end": str(T0 + DURATION + 60)}
    r = hub.client.get("/api/v1/correlations", params={**window, "type": ctype})
    assert r.status_code == 200, r.text
    found = r.json()["correlations"]
    assert found and {c["type"] for c in found} == {ctype}
    hit = max(found, key=lambda c: len(truth & set(c["event_ids"])))
    assert len(truth & set(hit["event_ids"])) >= 0.5 * min(len(truth), len(hit["event_ids"])), hit["explanation"]
    assert hit["event_ids"][0] == hit["root_event_id"] and 0 < hit["confidence"] <= 1
    assert T0 - 1 <= _iso(hit["start"]) <= _iso(hit["end"]) <= T0 + DURATION + 1
    assert len(hit["event_ids"]) == len(set(hit["event_ids"]))  # no event counted twice across flushes

    incident = hub.client.get(f"/api/v1/incidents/{hit['incident_id']}")
    assert incident.status_code == 200, incident.text
    body = incident.json()
    assert hit["id"] in body["correlation_ids"] and ctype in body["types"]
    assert _iso(body["start"]) <= _iso(hit["start"]) and _iso(hit["end"]) <= _iso(body["end"])
    rca = hub.client.get(f"/api/v1/incidents/{hit['incident_id']}/rca").json()
    hyps = rca["hypotheses"]
    assert rca["incident_id"] == hit["incident_id"] and hyps
    scores = [h["score"] for h in hyps]
    assert scores == sorted(scores, reverse=True), hyps
    assert all(0 < h["confidence"] <= 1 for h in hyps), hyps  # none rounded to 0: four significant digits
    assert all(h["evidence"][0] == h["root_event_id"] and h["cause"] for h in hyps)
    for node in hyps[0]["graph"]["nodes"]:
        _iso(node["ts"])


def test_every_route_refuses_an_unknown_query_parameter(hub: SimpleNamespace) -> None:
    # a typo had been ignored: ?types=causal_chain answered every type
    for method, path, typo in [
        ("GET", "/api/v1/correlations", "types"), ("POST", "/api/v1/correlations/analyze", "limit"),
        ("GET", "/api/v1/incidents", "type"), ("GET", "/api/v1/incidents/abc", "start"),
        ("GET", "/api/v1/incidents/abc/rca", "top"), ("GET", "/api/v1/dependencies", "service"),
        ("GET", "/api/v1/policy/compliance/report", "policy_id"), ("GET", "/api/v1/security/threat-intel", "mincount"),
    ]:  # fmt: skip
        r = hub.client.request(method, path, params={typo: "x"})
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["code"] == "unknown_parameter", r.text
        assert r.json()["error"]["message"].startswith(f"unknown query parameter {typo!r}; use "), r.text
    ok = hub.client.get("/api/v1/correlations", params={"type": "causal_chain", "limit": "5", "tenant": "default"})
    assert ok.status_code == 200 and ok.json() == {"correlations": [], "truncated": False}


def test_times_in_the_answers_are_iso_like_the_rest_of_the_api(hub: SimpleNamespace) -> None:
    window = {"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T10:00:00.5Z"}
    for path in ("/api/v1/dependencies", "/api/v1/security/threat-intel", "/api/v1/policy/compliance/report"):
        body = hub.client.get(path, params=window).json()
        assert (body["start"], body["end"]) == ("2026-11-27T09:00:00Z", "2026-11-27T10:00:00.500000Z"), path


def test_incidents_of_another_tenant_and_malformed_ids_are_404(hub: SimpleNamespace,
                                                               noise_events: list[dict[str, Any]]) -> None:  # fmt: skip
    inj = _injected("causal_chain")
    cols = process([*noise_events, *inj.events], tenant="tenant-a")
    hub.store.append("events", cols)
    assert hub.store.flush(30)
    a, b = {"X-Scope-OrgID": "tenant-a"}, {"X-Scope-OrgID": "tenant-b"}
    r = hub.client.post("/api/v1/correlations/analyze", params={"start": str(T0 - 10), "end": str(T0 + DURATION + 10)},
                        headers=a)  # fmt: skip
    assert r.status_code == 200 and r.json()["incidents"], r.text
    inc = r.json()["incidents"][0]["id"]
    # the answer's correlations name their incident as GET /correlations does (the field had been missing)
    listed = {c["id"]: c for c in hub.client.get("/api/v1/correlations", headers=a).json()["correlations"]}
    assert listed and {c["id"]: c["incident_id"] for c in r.json()["correlations"]} == {
        i: c["incident_id"] for i, c in listed.items()}  # fmt: skip
    assert {c["incident_id"] for c in listed.values()} == {i["id"] for i in r.json()["incidents"]}
    assert hub.client.get(f"/api/v1/incidents/{inc}", headers=a).status_code == 200
    for path in (f"/api/v1/incidents/{inc}", f"/api/v1/incidents/{inc}/rca"):
        other = hub.client.get(path, headers=b)
        assert other.status_code == 404 and other.json()["error"]["code"] == "not_found", other.text
        assert hub.client.get(path, params={"tenant": "tenant-b"}).status_code == 404
    assert hub.client.get("/api/v1/correlations", headers=b).json() == {"correlations": [], "truncated": False}
    assert hub.client.get("/api/v1/incidents", headers=b).json() == {"incidents": [], "truncated": False}
    for bad in ("%27%3B%20DROP%20TABLE%20incidents%3B--", "%C3%A9%00", "x" * 2000):
        r = hub.client.get(f"/api/v1/incidents/{bad}/rca", headers=a)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    assert hub.client.get(f"/api/v1/incidents/{inc}", headers=a).status_code == 200  # the table is still there


def test_a_list_cut_at_its_limit_says_so_and_pages_in_a_stable_order(hub: SimpleNamespace) -> None:
    from analytics.correlation.model import Correlation, Incident

    corrs = [Correlation(f"c{i}", "causal_chain", "default", [f"e{i}"], ["llm-sentinel"], 0.9, "x",
                         (1_000 + i // 2) * 1_000_000, (1_001 + i // 2) * 1_000_000) for i in range(7)]  # fmt: skip
    incs = [Incident(f"i{i}", "default", [c.id], [c.type], c.event_ids, c.start_us, c.end_us, 0.9, "t") for i, c in
            enumerate(corrs)]  # fmt: skip
    assert hub.engine.repo is not None
    hub.engine.repo.save(corrs, incs, {})
    window = {"start": "0", "end": "5000"}
    for path, key in (("/api/v1/correlations", "correlations"), ("/api/v1/incidents", "incidents")):
        every = hub.client.get(path, params=window).json()
        assert every["truncated"] is False and len(every[key]) == 7  # before: no way to tell a cut list
        first = hub.client.get(path, params={**window, "limit": "3"}).json()
        assert first["truncated"] is True and first[key] == every[key][:3]  # newest first, ties by id
        assert hub.client.get(path, params={**window, "limit": "7"}).json()["truncated"] is False
