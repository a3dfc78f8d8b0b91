"""The correlation API through a real hub: ingest, analyze, list, RCA, dependencies, feedback, tenancy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from analytics.correlation.scenarios import SCENARIOS, Dims, service_traffic
from tests.helpers.hub import running_hub


def _incident_events(now: float) -> tuple[list[dict[str, Any]], dict[str, str]]:
    rng = np.random.default_rng(9)
    chain = SCENARIOS["security_chain"](rng, now - 100, Dims.pick(rng, 0))
    attack = SCENARIOS["attack_campaign"](rng, now - 90, Dims.pick(rng, 2))
    svc = service_traffic(rng, now - 120, now - 10, 1.0, None)
    roots = {"causal_chain": chain.truth.root_event_id, "security_incident": attack.truth.root_event_id}
    return [*chain.events, *attack.events, *svc.events], roots


def _post(client: httpx.Client, events: list[dict[str, Any]], tenant: str) -> None:
    for i in range(0, len(events), 500):
        r = client.post("/api/v1/events", json=events[i : i + 500], headers={"X-Scope-OrgID": tenant})
        assert r.status_code == 202, r.text


def test_correlation_api_end_to_end(tmp_path: Path) -> None:
    now = time.time()
    events, roots = _incident_events(now)
    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub, httpx.Client(base_url=hub.api, timeout=60) as c:
        _post(c, events, "tenant-a")
        hub.flush()
        rng = {"start": str(now - 300), "end": str(now + 60)}
        r = c.post("/api/v1/correlations/analyze", params=rng, headers={"X-Scope-OrgID": "tenant-a"})
        assert r.status_code == 200, r.text
        assert {x["type"] for x in r.json()["correlations"]} >= {"causal_chain", "security_incident"}
        assert r.json()["truncated"] is False and r.json()["max_events"] == 500_000  # a busier span says so

        r = c.get("/api/v1/correlations", params={**rng, "type": "causal_chain"}, headers={"X-Scope-OrgID": "tenant-a"})
        corrs = r.json()["correlations"]
        assert r.status_code == 200 and corrs and all(x["type"] == "causal_chain" for x in corrs)
        assert corrs[0]["event_ids"][0] == roots["causal_chain"] and 0 < corrs[0]["confidence"] <= 1

        incidents = c.get("/api/v1/incidents", headers={"X-Scope-OrgID": "tenant-a"}).json()["incidents"]
        assert incidents and all("id" in i for i in incidents)
        best = None
        for inc in incidents:
            assert c.get(f"/api/v1/incidents/{inc['id']}", headers={"X-Scope-OrgID": "tenant-a"}).status_code == 200
            rca = c.get(f"/api/v1/incidents/{inc['id']}/rca", headers={"X-Scope-OrgID": "tenant-a"})
            assert rca.status_code == 200
            hyps = rca.json()["hypotheses"]
            assert hyps and all({"cause", "confidence", "evidence", "graph"} <= set(h) for h in hyps)
            if hyps[0]["evidence"][0] in roots.values():
                best = hyps
        assert best is not None, "no incident ranked a true root first"

        deps = c.get("/api/v1/dependencies", params=rng, headers={"X-Scope-OrgID": "tenant-a"}).json()
        pairs = {(e["source"], e["target"]) for e in deps["edges"]}
        assert ("vector-db", "llm-gateway") in pairs and ("llm-gateway", "api-gateway") in pairs

        report = c.get("/api/v1/policy/compliance/report", params=rng, headers={"X-Scope-OrgID": "tenant-a"}).json()
        pol = {p["policy_id"]: p for p in report["policies"]}
        assert pol["pol-content-safety"]["fail"] >= 1 and pol["pol-content-safety"]["compliance_rate"] == 0.0
        assert report["hourly"] and {"evaluations", "pass", "fail", "warn"} <= set(report["hourly"][0])

        intel = c.get("/api/v1/security/threat-intel", params={**rng, "min_count": 3},
                      headers={"X-Scope-OrgID": "tenant-a"}).json()["indicators"]  # fmt: skip
        kinds = {i["indicator"] for i in intel}
        assert {"source_ip", "api_key_id"} <= kinds
        user = next(i for i in intel if i["indicator"] == "user_id")
        assert "llm-governance" in user["modules"] and user["first_seen"] <= user["last_seen"]

        # tenant isolation: tenant B sees none of A's results
        b = {"X-Scope-OrgID": "tenant-b"}
        assert c.get("/api/v1/correlations", headers=b).json()["correlations"] == []
        assert c.get("/api/v1/incidents", headers=b).json()["incidents"] == []
        assert c.get(f"/api/v1/incidents/{incidents[0]['id']}/rca", headers=b).status_code == 404
        assert c.get("/api/v1/dependencies", params=rng, headers=b).json()["edges"] == []
        assert c.get("/api/v1/security/threat-intel", params=rng, headers=b).json()["indicators"] == []

        metrics = c.get("/metrics").text
        assert 'hub_correlations_total{type="causal_chain"}' in metrics


def test_bad_parameters_are_4xx(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub, httpx.Client(base_url=hub.api, timeout=30) as c:
        cases = [
            ("GET", "/api/v1/correlations", {"type": "nope"}, 422),
            ("GET", "/api/v1/correlations", {"start": "yesterday"}, 422),
            ("GET", "/api/v1/correlations", {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, 422),
            ("GET", "/api/v1/correlations", {"start": "2100-01-01"}, 422),  # "end must be after start": which end?
            ("GET", "/api/v1/correlations", {"limit": "0"}, 422),
            ("POST", "/api/v1/correlations/analyze", {"start": "0", "end": "99999999"}, 422),
            ("POST", "/api/v1/correlations/analyze", {"end": "not-a-time"}, 422),
            ("POST", "/api/v1/correlations/analyze", {"end": "5000000000"}, 422),  # after 2100
            ("GET", "/api/v1/incidents/does-not-exist/rca", {}, 404),
            ("GET", "/api/v1/incidents/does-not-exist", {}, 404),
            ("GET", "/api/v1/security/threat-intel", {"min_count": "0"}, 422),
            ("GET", "/api/v1/policy/compliance/report", {"start": "x"}, 422),
            ("GET", "/api/v1/correlations", {"tenant": "bad tenant!"}, 400),
        ]
        for method, path, params, status in cases:
            r = c.request(method, path, params=params)
            assert r.status_code == status, (path, params, r.status_code, r.text)
            assert "error" in r.json()
            if {"start", "end"} & set(params):  # one code for bad times on every endpoint
                assert r.json()["error"]["code"] in ("bad_time", "range_too_large"), r.text
            if params.get("start") == "2100-01-01":  # no end: it is now, and the message says so
                assert r.json()["error"]["message"].endswith(", the default: now) must be after start "
                                                              "(2100-01-01T00:00:00Z)"), r.text  # fmt: skip
            if r.json()["error"]["code"] == "range_too_large":  # the message names the parameter and the limit
                assert r.json()["error"]["message"].startswith("start: the span [start, end) is 1,157.4 days; "
                                                               "analyze at most 7 days at a time"), r.text
