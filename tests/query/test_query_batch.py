"""POST /api/v1/query/batch: the same answers as POST /api/v1/query, in order, per-query errors, the
batch's tenant for every query, and every way the envelope can be bad."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from api.routers.query import _run_one
from tests.query.dataset import DUR, query

T = {"event_type": "telemetry", "name": DUR}
BODIES: list[dict[str, Any]] = [
    {},
    {"metric": T, "aggregation": {"functions": ["count", "p95"], "group_by": ["model"]}},
    {"metric": {"event_type": "cost"}, "aggregation": {"functions": ["sum"]}},
    {"metric": T, "aggregation": {"time_bucket": "1h", "functions": ["count"]}},
]


def batch(client: httpx.Client, body: Any, tenant: str | None = "acme") -> httpx.Response:
    headers = {"X-Scope-OrgID": tenant} if tenant else {}
    return client.post("/api/v1/query/batch", json=body, headers=headers)


@pytest.mark.parametrize("tenant", ["acme", "globex"])
def test_results_equal_single_queries_in_order(client: httpx.Client, tenant: str) -> None:
    r = batch(client, {"queries": BODIES}, tenant)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200] * len(BODIES)
    for body, got in zip(BODIES, results, strict=True):
        alone = query(client, body, tenant).json()
        assert got["data"] == alone["data"]
        assert got["metadata"]["row_count"] == alone["metadata"]["row_count"]


def test_the_batch_tenant_applies_to_every_query(client: httpx.Client) -> None:
    by_header = batch(client, {"queries": [{}]}, "globex").json()["results"][0]["data"]
    by_body = batch(client, {"queries": [{}], "tenant": "globex"}, None).json()["results"][0]["data"]
    assert by_header == by_body == [{"count": 4}]
    mixed = batch(client, {"queries": [{}, {"tenant": "globex"}, {"tenant": "acme"}]}, "acme").json()["results"]
    assert [m["status"] for m in mixed] == [200, 422, 200]
    assert mixed[1]["error"]["field"] == "queries.1.tenant" and "one tenant" in mixed[1]["error"]["message"]
    assert mixed[0]["data"] == mixed[2]["data"] == [{"count": 11}]


def test_one_bad_query_does_not_fail_the_others(client: httpx.Client) -> None:
    bodies = [{}, {"aggregation": {"functions": ["median"]}}, "not a body", {"metric": T, "timeout_ms": 0}, {}]
    results = batch(client, {"queries": bodies}).json()["results"]
    assert [x["status"] for x in results] == [200, 422, 422, 422, 200]
    assert results[1]["error"]["field"].startswith("queries.1.aggregation")
    assert results[2]["error"]["field"] == "queries.2"
    assert results[3]["error"]["field"] == "queries.3.timeout_ms"
    assert all(x["error"]["code"] == "invalid_query" for x in results[1:4])


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 422, "queries"),
        ({"queries": {}}, 422, "queries"),
        ({"queries": []}, 422, "queries"),
        ({"queries": [{}] * 51}, 422, "queries"),
        ({"queries": [{}], "limit": 5}, 422, "limit"),
        ([{}], 422, "queries"),
    ],
)  # fmt: skip
def test_bad_envelopes_are_refused_naming_the_field(client: httpx.Client, body: Any, status: int, field: str) -> None:
    r = batch(client, body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field


def test_bad_json_and_oversized_bodies(client: httpx.Client) -> None:
    r = client.post("/api/v1/query/batch", content=b"{nope", headers={"X-Scope-OrgID": "acme"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"
    big = {"queries": [{"filters": [{"field": "team", "operator": "eq", "value": "x" * 200_000}]}] * 2}
    assert batch(client, big).status_code == 413


def test_all_tenants_batch_needs_a_platform_admin_like_a_query(client: httpx.Client) -> None:
    # with auth off the local user is a platform admin: "*" is allowed, as for POST /api/v1/query
    r = batch(client, {"queries": [{}], "tenant": "*"}, None)
    assert r.status_code == 200 and r.json()["results"][0]["data"] == [{"count": 15}]


def test_an_unhashable_bucket_fails_only_its_entry(client: httpx.Client) -> None:
    bodies = [{"aggregation": {"time_bucket": ["1h"]}}, {}, {"metric": {"composite": ["x"]}}]
    r = batch(client, {"queries": bodies})
    assert r.status_code == 200, r.text  # was a 500 for the whole batch
    results = r.json()["results"]
    assert [x["status"] for x in results] == [422, 200, 422]
    assert results[0]["error"]["field"] == "queries.0.aggregation.time_bucket"
    assert results[2]["error"]["field"] == "queries.2.metric.composite"


class _Faulty:
    """An executor whose second query hits a fault of the hub (not a bad query)."""

    def __init__(self) -> None:
        self.calls = 0

    def execute(self, query: Any, *, timeout_s: float | None = None) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("boom")
        return {"data": [], "metadata": {}}


def test_an_unexpected_error_is_that_entry_s_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    executor = _Faulty()
    with caplog.at_level(logging.ERROR, logger="api.routers.query"):
        results = [_run_one(executor, {}, "acme", 10**15, i) for i in range(3)]  # type: ignore[arg-type]
    assert [x["status"] for x in results] == [200, 500, 200]
    assert results[1]["error"]["code"] == "internal_error" and "boom" not in str(results[1])
    [record] = [r for r in caplog.records if r.name == "api.routers.query"]
    assert "query 1 of a batch failed" in record.getMessage() and record.exc_info is not None
