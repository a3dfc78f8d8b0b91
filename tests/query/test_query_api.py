"""POST /api/v1/query end to end: every function, group_by, buckets, filters on each path, paging."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.query.dataset import DUR, acme_events, query, rows

TELEMETRY = {"event_type": "telemetry", "name": DUR}


def by(data: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in data}


def test_every_function_grouped_by_model(client: httpx.Client) -> None:
    funcs = ["sum", "avg", "count", "min", "max", "p50", "p95", "p99", "stddev"]
    data = by(rows(client, {"metric": TELEMETRY, "aggregation": {"functions": funcs, "group_by": ["model"]}}), "model")
    gpt = data["gpt-4o"]
    assert (gpt["count"], gpt["sum"], gpt["avg"], gpt["min"], gpt["max"]) == (4, 1000.0, 250.0, 100.0, 400.0)
    assert (gpt["p50"], gpt["p95"], gpt["p99"]) == pytest.approx((250.0, 385.0, 397.0))
    assert gpt["stddev"] == pytest.approx(math.sqrt(50_000 / 3))
    assert data["claude"]["p50"] == 1500.0 and data["claude"]["count"] == 2


def test_metric_fields_tokens_and_payload_path(client: httpx.Client) -> None:
    total = rows(client, {"metric": {**TELEMETRY, "field": "total_tokens"}, "aggregation": {"functions": ["sum"]}})
    assert total == [{"sum": 4 * 15 + 2 * 150}]
    inp = rows(client, {"metric": {**TELEMETRY, "field": "input_tokens"}, "aggregation": {"functions": ["max"]}})
    assert inp == [{"max": 100}]
    via_payload = rows(
        client, {"metric": {**TELEMETRY, "field": "payload.value"}, "aggregation": {"functions": ["sum"]}}
    )
    assert via_payload == [{"sum": 4000.0}]


def test_default_is_a_count_of_events(client: httpx.Client) -> None:
    assert rows(client, {}) == [{"count": len(acme_events())}]
    kinds = by(rows(client, {"aggregation": {"group_by": ["event_type"]}}), "event_type")
    assert {k: v["count"] for k, v in kinds.items()} == {"telemetry": 6, "cost": 3, "security": 2}


def test_time_buckets_match_the_event_timestamps(client: httpx.Client) -> None:
    data = rows(client, {"metric": TELEMETRY, "aggregation": {"time_bucket": "1h", "functions": ["count"]}})
    expected: Counter[str] = Counter()
    for ev in acme_events():
        if ev["event_type"] == "telemetry":
            ts = datetime.fromisoformat(ev["timestamp"].replace("Z", "+00:00"))
            expected[ts.replace(minute=0, second=0, microsecond=0, tzinfo=None).isoformat() + "Z"] += 1
    assert {r["bucket"]: r["count"] for r in data} == dict(expected)
    assert [r["bucket"] for r in data] == sorted(r["bucket"] for r in data)
    five = rows(client, {"metric": TELEMETRY, "aggregation": {"time_bucket": "5m", "functions": ["count"]}})
    assert sum(r["count"] for r in five) == 6 and len(five) == 6


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"field": "model", "operator": "eq", "value": "claude"}, 2),
        ({"field": "model", "operator": "ne", "value": "claude"}, 4),
        ({"field": "model", "operator": "in", "value": ["claude", "nope"]}, 2),
        ({"field": "model", "operator": "not_in", "value": ["claude"]}, 4),
        ({"field": "model", "operator": "contains", "value": "gpt"}, 4),
        ({"field": "model", "operator": "regex", "value": "^cl.*e$"}, 2),
        ({"field": "status", "operator": "eq", "value": "error"}, 2),
        ({"field": "value", "operator": "gt", "value": 300}, 3),
        ({"field": "value", "operator": "gte", "value": 300}, 4),
        ({"field": "value", "operator": "lt", "value": 300}, 2),
        ({"field": "value", "operator": "lte", "value": 300}, 3),
        ({"field": "input_tokens", "operator": "eq", "value": 100}, 2),
        ({"field": "tags.team", "operator": "eq", "value": "ads"}, 2),
        ({"field": "tags.team", "operator": "ne", "value": "ads"}, 4),
        ({"field": "tags.team", "operator": "regex", "value": "^s"}, 4),
        ({"field": "payload.dimensions.model", "operator": "eq", "value": "gpt-4o"}, 4),
        ({"field": "payload.dimensions.model", "operator": "in", "value": ["gpt-4o", "claude"]}, 6),
        ({"field": "payload.metric_name", "operator": "contains", "value": "operation"}, 6),
        ({"field": "payload.value", "operator": "gt", "value": 250}, 4),
        ({"field": "payload.value", "operator": "eq", "value": 1000}, 1),
        ({"field": "payload.missing", "operator": "ne", "value": "x"}, 6),
    ],
)
def test_filters_on_every_path(client: httpx.Client, flt: dict[str, Any], expected: int) -> None:
    data = rows(client, {"metric": TELEMETRY, "filters": [flt], "aggregation": {"functions": ["count"]}})
    assert data == [{"count": expected}]


def test_group_by_tags_and_payload_paths(client: httpx.Client) -> None:
    data = rows(
        client,
        {
            "metric": TELEMETRY,
            "aggregation": {"functions": ["count"], "group_by": ["tags.team", "payload.dimensions.model"]},
        },
    )
    assert data == [
        {"tags.team": "ads", "payload.dimensions.model": "claude", "count": 2},
        {"tags.team": "search", "payload.dimensions.model": "gpt-4o", "count": 4},
    ]


def test_composite_metrics(client: httpx.Client) -> None:
    def one(name: str, group: str = "model") -> dict[Any, Any]:
        return {r[group]: r[name] for r in rows(client, {"metric": name, "aggregation": {"group_by": [group]}})}

    assert one("error_rate") == pytest.approx({"gpt-4o": 0.25, "claude": 0.5})
    assert one("cost_per_request") == pytest.approx({"gpt-4o": 0.03 / 4, "claude": 0.25})
    assert one("cost_per_1k_tokens") == pytest.approx({"gpt-4o": 0.5, "claude": 0.5 * 1000 / 300})
    assert one("error_rate", "tags.team") == pytest.approx({"search": 0.25, "ads": 0.5})
    thr = rows(client, {"metric": {"composite": "error_adjusted_throughput"}})
    assert thr[0]["error_adjusted_throughput"] == pytest.approx(4 / (3 * 3600))
    bucketed = rows(client, {"metric": "error_rate", "aggregation": {"time_bucket": "1d"}})
    assert len(bucketed) in (1, 2) and all("bucket" in r for r in bucketed)


def test_a_misspelt_composite_in_the_string_form_is_a_422_with_a_suggestion(client: httpx.Client) -> None:
    typos = (("error_rat", "error_rate"), ("Error_Rate", "error_rate"), ("cost_per_reqest", "cost_per_request"))
    for typo, meant in typos:
        for path, body in (("/api/v1/query", {"time_range": {"last": "1h"}, "metric": typo}),
                           ("/api/v1/query/export?format=jsonl", {"time_range": {"last": "1h"}, "metric": typo})):  # fmt: skip
            r = client.post(path, json=body, headers={"X-Scope-OrgID": "acme"})  # had been 200, count 0
            assert r.status_code == 422, r.text
            error = r.json()["error"]
            assert error["field"] == "metric" and f"did you mean {meant!r}?" in error["message"], error
    batch = client.post("/api/v1/query/batch", json={"queries": [{"metric": "error_rat"}, {"metric": "error_rate"}]},
                        headers={"X-Scope-OrgID": "acme"}).json()["results"]  # fmt: skip
    assert [q["status"] for q in batch] == [422, 200] and batch[0]["error"]["field"] == "queries.0.metric", batch


def test_a_metric_name_in_the_string_form_is_read_as_that_metric(client: httpx.Client) -> None:
    assert rows(client, {"metric": DUR}) == [{"count": 6}]
    assert rows(client, {"metric": "gen_ai.client.token.usage"}) == [{"count": 0}]  # no data yet: not a typo


def test_sort_limit_offset_and_cursor(client: httpx.Client) -> None:
    body: dict[str, Any] = {
        "time_range": {"last": "3h"},
        "metric": TELEMETRY,
        "aggregation": {"functions": ["sum", "count"], "group_by": ["model"]},
        "sort": [{"field": "sum", "order": "desc"}],
        "limit": 1,
    }
    first = query(client, body).json()
    assert first["data"] == [{"model": "claude", "sum": 3000.0, "count": 2}]
    meta = first["metadata"]
    assert meta["has_more"] is True and meta["row_count"] == 1 and meta["next_cursor"]
    second = query(client, {**body, "cursor": meta["next_cursor"]}).json()
    assert second["data"] == [{"model": "gpt-4o", "sum": 1000.0, "count": 4}]
    assert second["metadata"]["has_more"] is False and second["metadata"]["next_cursor"] is None
    assert query(client, {**body, "offset": 1}).json()["data"] == second["data"]
    asc = query(client, {**body, "sort": [{"field": "model", "order": "asc"}], "limit": 5}).json()["data"]
    assert [r["model"] for r in asc] == ["claude", "gpt-4o"]
    wrong = query(client, {**body, "aggregation": {"functions": ["sum"], "group_by": ["team"]}, "sort": [],
                           "cursor": meta["next_cursor"]})  # fmt: skip
    assert wrong.status_code == 422 and "cursor" in wrong.json()["error"]["message"]


def test_metadata_and_absolute_range(client: httpx.Client) -> None:
    r = query(client, {"time_range": {"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}})
    assert r.status_code == 200
    body = r.json()
    assert body["data"] == [{"count": 0}]
    meta = body["metadata"]
    assert meta["backend"] == "embedded" and meta["tenant"] == "acme" and meta["row_count"] == 1
    assert meta["time_range"]["start"] == "2020-01-01T00:00:00Z"
    assert "tenant_id = ?" in meta["compiled_query"]["sql"] and meta["compiled_query"]["params"][0] == "acme"
    assert isinstance(meta["execution_time_ms"], float)
