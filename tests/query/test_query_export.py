"""Exports: query rows and raw events as CSV, JSON lines and Parquet, streamed in chunks."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from tests.helpers.hub import RunningHub
from tests.query.dataset import DUR

ACME = {"X-Scope-OrgID": "acme"}
BODY = {
    "time_range": {"last": "3h"},
    "metric": {"event_type": "telemetry", "name": DUR},
    "aggregation": {"functions": ["count", "p50"], "group_by": ["model"]},
}
EXPECTED = [{"model": "claude", "count": 2, "p50": 1500.0}, {"model": "gpt-4o", "count": 4, "p50": 250.0}]


def test_query_export_csv(client: httpx.Client) -> None:
    r = client.post("/api/v1/query/export?format=csv", json=BODY, headers=ACME)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="query.csv"' in r.headers["content-disposition"]
    got = list(csv.DictReader(io.StringIO(r.text)))
    assert [(g["model"], int(g["count"]), float(g["p50"])) for g in got] == [tuple(e.values()) for e in EXPECTED]


def test_query_export_jsonl_by_accept_header(client: httpx.Client) -> None:
    r = client.post("/api/v1/query/export", json=BODY, headers={**ACME, "Accept": "application/x-ndjson"})
    assert r.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line) for line in r.text.splitlines()] == EXPECTED


def test_query_export_parquet_with_buckets(client: httpx.Client) -> None:
    body = {**BODY, "aggregation": {"time_bucket": "1h", "functions": ["count"]}}
    r = client.post("/api/v1/query/export?format=parquet", json=body, headers=ACME)
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column_names == ["bucket", "count"]
    assert sum(table.column("count").to_pylist()) == 6
    assert str(table.schema.field("bucket").type).startswith("timestamp")


def test_query_export_has_no_page_limit_unless_asked(client: httpx.Client) -> None:
    body = {**BODY, "aggregation": {"functions": ["count"], "group_by": ["event_id"]}, "metric": None}
    r = client.post("/api/v1/query/export?format=jsonl", json=body, headers=ACME)
    assert len(r.text.splitlines()) == 11
    limited = client.post("/api/v1/query/export?format=jsonl", json={**body, "limit": 3}, headers=ACME)
    assert len(limited.text.splitlines()) == 3


def test_empty_exports_are_well_formed(client: httpx.Client) -> None:
    for fmt in ("csv", "jsonl", "parquet"):
        r = client.post(f"/api/v1/query/export?format={fmt}", json=BODY, headers={"X-Scope-OrgID": "empty"})
        assert r.status_code == 200
        if fmt == "csv":
            assert r.text.strip() == '"model","count","p50"'
        elif fmt == "jsonl":
            assert r.text == ""
        else:
            assert pq.read_table(io.BytesIO(r.content)).num_rows == 0


def test_events_export_with_filters(client: httpx.Client) -> None:
    r = client.get("/api/v1/events/export", params={"format": "jsonl", "model": "claude", "last": "3h"}, headers=ACME)
    events = [json.loads(line) for line in r.text.splitlines()]
    assert {e["model"] for e in events} == {"claude"} and len(events) == 3  # 2 durations + 1 cost
    assert events == sorted(events, key=lambda e: e["timestamp"]) and events[0]["timestamp"].endswith("Z")
    tags = client.get("/api/v1/events/export", params={"format": "csv", "tags.team": "ads", "last": "3h"}, headers=ACME)
    assert len(list(csv.DictReader(io.StringIO(tags.text)))) == 3
    payload = client.get(
        "/api/v1/events/export",
        params={"format": "parquet", "payload.threat_type": "prompt_injection", "last": "3h"},
        headers=ACME,
    )
    assert pq.read_table(io.BytesIO(payload.content)).column("event_type").to_pylist() == ["security"] * 2


def test_events_export_takes_the_time_grammar_of_every_get_endpoint(client: httpx.Client) -> None:
    # start/end were ISO-8601 only here, while GET /events took epoch seconds, now and -3h as well
    def count(**params: str) -> int:
        r = client.get("/api/v1/events/export", params={"format": "jsonl", "model": "claude", **params}, headers=ACME)
        assert r.status_code == 200, r.text
        return len(r.text.splitlines())

    assert count(start="-3h") == count(last="3h") == 3
    assert count(start=str(int(time.time()) - 3 * 3600), end="now") == 3
    r = client.get("/api/v1/events/export", params={"start": "yesterday"}, headers=ACME)
    assert r.status_code == 422 and r.json()["error"] == {
        "code": "bad_time", "message": "start: must be ISO-8601, epoch seconds, now or -24h, got 'yesterday'",
        "field": "start"}  # fmt: skip


@pytest.mark.parametrize(
    ("params", "fragment"),
    [({"format": "xml"}, "unknown export format 'xml'"), ({"colour": "red"}, "unknown query parameter 'colour'"),
     ({"severity": "critcal"}, "severity: must be one of debug, info, warning, error, critical, got 'critcal'")],
)  # fmt: skip
def test_export_errors(client: httpx.Client, params: dict[str, str], fragment: str) -> None:
    r = client.get("/api/v1/events/export", params=params, headers=ACME)
    assert r.status_code == 422 and fragment in r.json()["error"]["message"]


def test_an_unknown_export_parameter_names_every_parameter_the_route_takes(client: httpx.Client) -> None:
    r = client.get("/api/v1/events/export", params={"format": "csv", "lst": "1h"}, headers=ACME)
    assert r.status_code == 422, r.text
    error = r.json()["error"]  # had been invalid_query, naming the fields but not last, start, end...
    assert error["code"] == "unknown_parameter" and error["field"] == "lst", error
    named = error["message"].split("; use ", 1)[1]
    for name in ("format", "start", "end", "last", "limit", "tenant", "cursor", "source_module", "model",
                 "tags.<key>", "payload.<path>"):  # fmt: skip
        assert name in named, name


def test_large_event_export_streams_in_chunks(client: httpx.Client, hub: RunningHub) -> None:
    n = 300_000
    hub.service.store.cursor().execute(
        "INSERT INTO events (tenant_id, ts, event_id, event_type, name, value, model, tags, payload) "
        "SELECT 'bulk', now()::TIMESTAMP - INTERVAL 10 MINUTE + i * INTERVAL 1 MICROSECOND, 'e' || i, 'telemetry', "
        "'x', i, 'm' || (i % 7), '{}', '{\"i\": ' || i || '}' FROM range(?) t(i)",
        [n],
    )
    for fmt in ("csv", "parquet"):
        chunks = 0
        buf = io.BytesIO()
        with client.stream("GET", "/api/v1/events/export", params={"format": fmt, "last": "1h"},
                           headers={"X-Scope-OrgID": "bulk"}) as r:  # fmt: skip
            for chunk in r.iter_raw():
                chunks += 1
                buf.write(chunk)
        assert chunks > 2, "the export should arrive in several chunks"
        if fmt == "csv":
            assert buf.getvalue().count(b"\n") == n + 1
        else:
            assert pq.read_table(io.BytesIO(buf.getvalue())).num_rows == n


def _jsonl(client: httpx.Client, org: str | None = "acme", **params: str) -> list[dict[str, Any]]:
    headers = {"X-Scope-OrgID": org} if org else {}
    r = client.get("/api/v1/events/export", params={"format": "jsonl", **params}, headers=headers)
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines()]


def test_events_export_of_every_tenant(client: httpx.Client) -> None:
    # with auth off the local user is a platform admin: tenant=* had matched tenant_id = '*' (nothing)
    every = _jsonl(client, None, tenant="*", last="3h")
    by_tenant: dict[str, list[str]] = {}
    for e in every:
        by_tenant.setdefault(e["tenant_id"], []).append(e["event_id"])
    for tenant in ("acme", "globex"):
        own = _jsonl(client, tenant, last="3h")
        assert own and "tenant_id" not in own[0]
        assert sorted(by_tenant[tenant]) == sorted(e["event_id"] for e in own)
    assert every == sorted(every, key=lambda e: e["timestamp"])
    csv_rows = client.get("/api/v1/events/export", params={"tenant": "*", "last": "3h", "model": "claude"}).text
    assert csv_rows.splitlines()[0].startswith('"tenant_id","event_id"')


def test_events_export_honours_end_without_start(client: httpx.Client) -> None:
    end = int(time.time()) - 3600  # acme has 4 events more than an hour old (and 7 newer ones)
    old = _jsonl(client, end=str(end))
    assert len(old) == 4 and all(e["timestamp"] < _iso(end) for e in old)  # end was ignored: all 11
    assert old == _jsonl(client, start=str(end - 86400), end=str(end))
    assert _jsonl(client, end="-1h", last="10m") == []  # the 10 minutes before end: none of the 4
    assert len(_jsonl(client, end="now", last="3h")) == 11


def test_events_export_refuses_start_with_last(client: httpx.Client) -> None:
    r = client.get("/api/v1/events/export", params={"start": "-3h", "last": "1h"}, headers=ACME)
    assert r.status_code == 422 and r.json()["error"]["field"] == "last"


@pytest.mark.parametrize("limit", ["0", "-1", "9223372036854775808", "99999999999999999999999", "1000000001", "²",
                                   "1.5", "", "x"])  # fmt: skip
def test_events_export_limit_out_of_bounds_is_a_422_on_limit(client: httpx.Client, limit: str) -> None:
    r = client.get("/api/v1/events/export", params={"limit": limit, "last": "3h"}, headers=ACME)
    assert r.status_code == 422, r.text  # huge was a 500 (DuckDB), '²' a message about numeric fields
    assert r.json()["error"]["field"] == "limit"
    assert "between 1 and 1000000000" in r.json()["error"]["message"]


def test_events_export_limit_in_bounds(client: httpx.Client) -> None:
    assert len(_jsonl(client, last="3h", limit="1000000000")) == 11
    assert len(_jsonl(client, last="3h", limit="2")) == 2


def test_events_export_numeric_filter_names_its_field(client: httpx.Client) -> None:
    r = client.get("/api/v1/events/export", params={"value": "abc", "last": "3h"}, headers=ACME)
    assert r.status_code == 422 and r.json()["error"]["field"] == "value"
    assert len(_jsonl(client, value="100", last="3h")) == 1


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("body", "field"),
    [({"aggregation": {"time_bucket": ["1h"]}}, "aggregation.time_bucket"),
     ({"metric": {"composite": {"a": 1}}}, "metric.composite")],
)  # fmt: skip
def test_query_export_refuses_unhashable_values(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    r = client.post("/api/v1/query/export", json=body, headers=ACME)
    assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text  # was a 500


# -- Accept: q-values (RFC 9110) -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("text/csv;q=0.1, application/x-ndjson;q=0.9", "application/x-ndjson"),  # was CSV: the first listed
        ("application/x-ndjson;q=0, */*", "text/csv; charset=utf-8"),  # was JSON lines: q=0 ignored
        ("application/vnd.apache.parquet, application/x-ndjson", "application/x-ndjson"),  # tie: server's order
        ("application/parquet;q=0.8, text/*;q=0.5", "application/vnd.apache.parquet"),
        ("*/*", "text/csv; charset=utf-8"),
    ],
)
def test_exports_honour_accept_q_values(client: httpx.Client, accept: str, content_type: str) -> None:
    for r in (
        client.post("/api/v1/query/export", json=BODY, headers={**ACME, "Accept": accept}),
        client.get("/api/v1/events/export", params={"last": "3h"}, headers={**ACME, "Accept": accept}),
    ):
        assert r.status_code == 200 and r.headers["content-type"] == content_type, (accept, r.text[:200])


@pytest.mark.parametrize("accept", ["application/xml", "text/csv;q=0", "application/json", "*/*;q=0"])
def test_exports_answer_406_when_accept_refuses_every_format(client: httpx.Client, accept: str) -> None:
    for r in (
        client.post("/api/v1/query/export", json=BODY, headers={**ACME, "Accept": accept}),
        client.get("/api/v1/events/export", params={"last": "3h"}, headers={**ACME, "Accept": accept}),
    ):
        assert r.status_code == 406, (accept, r.text[:200])  # was 200 with CSV
        error = r.json()["error"]
        assert error["code"] == "not_acceptable" and error["acceptable"][0] == "text/csv"
        assert "?format=csv|jsonl|parquet" in error["message"] and accept in error["message"]
    # ?format= is explicit: it wins over the header
    r = client.get("/api/v1/events/export", params={"last": "3h", "format": "jsonl"}, headers={**ACME, "Accept": accept})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
