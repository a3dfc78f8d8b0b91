"""Tenant isolation: every path of the query API sees only the caller's tenant.

``globex`` holds values no ``acme`` row has (9999 ms, 77 USD, team "secret-team", tag key
"globex_only"); each path is asked as ``acme`` for exactly those and must find nothing, then asked as
``globex`` to prove the data is there.
"""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from tests.query.dataset import DUR, query, rows

T = {"event_type": "telemetry", "name": DUR}
SECRETS = ("9999", "77.0", "secret-team", "globex_only")

PATHS: list[tuple[str, dict[str, Any]]] = [
    ("event field filter", {"metric": T, "filters": [{"field": "value", "operator": "eq", "value": 9999}]}),
    ("event field in", {"metric": T, "filters": [{"field": "team", "operator": "in", "value": ["secret-team"]}]}),
    ("tag filter", {"filters": [{"field": "tags.team", "operator": "eq", "value": "secret-team"}]}),
    ("tag regex", {"filters": [{"field": "tags.globex_only", "operator": "regex", "value": ".*"}]}),
    ("payload filter", {"metric": T, "filters": [{"field": "payload.value", "operator": "gte", "value": 9999}]}),
    ("payload dims", {"filters": [{"field": "payload.dimensions.model", "operator": "contains", "value": "gpt"}],
                      "metric": {**T, "field": "value"}, "aggregation": {"functions": ["max"]}}),
    ("cost sum", {"metric": {"event_type": "cost"}, "aggregation": {"functions": ["sum", "max"]}}),
]  # fmt: skip


def _text(data: Any) -> str:
    return json.dumps(data, default=str)


@pytest.mark.parametrize(("name", "body"), PATHS, ids=[p[0] for p in PATHS])
def test_filter_paths_see_only_own_tenant(client: httpx.Client, name: str, body: dict[str, Any]) -> None:
    mine = rows(client, body, "acme")
    assert not any(s in _text(mine) for s in SECRETS), mine
    theirs = rows(client, body, "globex")
    assert theirs != mine or theirs == [{"count": 0}]


def test_counts_by_tenant(client: httpx.Client) -> None:
    assert rows(client, {}, "acme") == [{"count": 11}]
    assert rows(client, {}, "globex") == [{"count": 4}]
    assert rows(client, {}, "nobody") == [{"count": 0}]


def test_group_by_sees_only_own_groups(client: httpx.Client) -> None:
    for group in ("team", "tags.team", "payload.dimensions.model", "model"):
        acme = rows(client, {"aggregation": {"group_by": [group]}}, "acme")
        assert "secret-team" not in _text(acme)
        globex = rows(client, {"aggregation": {"group_by": [group]}}, "globex")
        assert "search" not in _text(globex) and "claude" not in _text(globex)


def test_composites_per_tenant(client: httpx.Client) -> None:
    assert rows(client, {"metric": "cost_per_request"}, "globex") == [{"cost_per_request": 77.0 / 2}]
    assert rows(client, {"metric": "cost_per_request"}, "acme")[0]["cost_per_request"] == pytest.approx(0.53 / 6)
    assert rows(client, {"metric": "error_rate"}, "globex") == [{"error_rate": 0.5}]


def test_body_tenant_cannot_override_the_header(client: httpx.Client) -> None:
    r = client.post("/api/v1/query", json={"tenant": "globex", "time_range": {"last": "3h"}},
                    headers={"X-Scope-OrgID": "acme"})  # fmt: skip
    assert r.json()["data"] == [{"count": 11}]
    # without a header, the body's tenant is the read scope (like ?tenant= on GET /api/v1/events)
    r = client.post("/api/v1/query", json={"tenant": "globex", "time_range": {"last": "3h"}})
    assert r.json()["data"] == [{"count": 4}]


def test_cached_answers_are_per_tenant(client: httpx.Client) -> None:
    body = {"time_range": {"last": "3h"}, "metric": {"event_type": "cost"}, "aggregation": {"functions": ["sum"]}}
    a1, g1 = query(client, body, "acme").json(), query(client, body, "globex").json()
    a2, g2 = query(client, body, "acme").json(), query(client, body, "globex").json()
    assert a2["metadata"]["cached"] and g2["metadata"]["cached"]
    assert a1["data"] == a2["data"] != g1["data"] == g2["data"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_exports_see_only_own_tenant(client: httpx.Client, fmt: str) -> None:
    body = {"time_range": {"last": "3h"}, "metric": T, "aggregation": {"functions": ["max"], "group_by": ["team"]}}
    q = client.post(f"/api/v1/query/export?format={fmt}", json=body, headers={"X-Scope-OrgID": "acme"})
    e = client.get(f"/api/v1/events/export?format={fmt}&last=3h", headers={"X-Scope-OrgID": "acme"})
    for r in (q, e):
        assert r.status_code == 200
        text = pq.read_table(io.BytesIO(r.content)).to_pylist() if fmt == "parquet" else r.text
        assert not any(s in _text(text) if fmt == "parquet" else s in text for s in SECRETS)
    g = client.get(f"/api/v1/events/export?format={fmt}&last=3h", headers={"X-Scope-OrgID": "globex"})
    assert b"secret-team" in g.content or fmt == "parquet"


def test_catalog_sees_only_own_tenant(client: httpx.Client) -> None:
    acme = client.get("/api/v1/metrics/catalog", headers={"X-Scope-OrgID": "acme"}).json()
    assert "tags.globex_only" not in acme["tag_keys"] and "tags.team" in acme["tag_keys"]
    globex = client.get("/api/v1/metrics/catalog", headers={"X-Scope-OrgID": "globex"}).json()
    assert "tags.globex_only" in globex["tag_keys"]
    assert globex["events"]["telemetry"][0]["count"] == 2
    assert acme["events"]["telemetry"][0]["count"] == 6
    nobody = client.get("/api/v1/metrics/catalog", headers={"X-Scope-OrgID": "nobody"}).json()
    assert nobody["events"] == {} and nobody["tag_keys"] == [] and nobody["payload_fields"] == {}
