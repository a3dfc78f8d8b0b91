"""Golden strings: one query IR compiled to DuckDB SQL, PromQL/MetricsQL and LogQL."""

from __future__ import annotations

from typing import Any

import pytest

from hubcore.query.compile_duckdb import compile_query, exact_sum_sql
from hubcore.query.compile_logql import compile_logql
from hubcore.query.compile_promql import Unsupported, compile_promql
from hubcore.query.model import Query, QueryError, parse_query

DAY = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
DUR = {"event_type": "telemetry", "name": "gen_ai.client.operation.duration"}


def q(**body: Any) -> Query:
    return parse_query({"time_range": DAY, **body}, tenant="t1", now_us=0)


def test_sql_percentiles_by_model_hourly() -> None:
    c = compile_query(
        q(metric=DUR, aggregation={"time_bucket": "1h", "functions": ["p95", "count"], "group_by": ["model"]})
    )
    assert c.sql == (
        "SELECT b AS bucket, g0, quantile_cont(v, 0.95) AS a0, count(*) AS a1\n"
        "FROM (SELECT time_bucket(INTERVAL 1 HOUR, ts) AS b, model AS g0, value AS v\n"
        "      FROM events WHERE tenant_id = ? AND ts >= make_timestamp(?) AND ts < make_timestamp(?) "
        "AND event_type = ? AND name = ?)\n"
        "GROUP BY 1, 2\n"
        "ORDER BY 1 ASC NULLS LAST, 2 ASC NULLS LAST, 3 ASC NULLS LAST, 4 ASC NULLS LAST\n"
        "LIMIT ?"
    )
    assert c.params == ["t1", 1767225600000000, 1767312000000000, "telemetry", DUR["name"], 1001]
    assert c.columns == ["bucket", "model", "p95", "count"]


def test_sql_binds_tag_keys_payload_paths_and_values() -> None:
    c = compile_query(
        q(
            metric={"event_type": "cost", "field": "payload.amount"},
            filters=[
                {"field": "tags.team", "operator": "in", "value": ["a", "b"]},
                {"field": "payload.dimensions.region", "operator": "regex", "value": "^eu"},
                {"field": "payload.usage.total", "operator": "gt", "value": 10},
                {"field": "model", "operator": "not_in", "value": ["x"]},
                {"field": "team", "operator": "ne", "value": "ops"},
            ],
            aggregation={"functions": ["sum"], "group_by": ["tags.project"]},
            sort=[{"field": "sum", "order": "desc"}],
            limit=10,
        )
    )
    assert c.sql == (
        f"SELECT g0, {exact_sum_sql('v')[0]} AS a0\n"
        "FROM (SELECT json_extract_string(tags, ?) AS g0, TRY_CAST(json_extract_string(payload, ?) AS DOUBLE) AS v\n"
        "      FROM events WHERE tenant_id = ? AND ts >= make_timestamp(?) AND ts < make_timestamp(?) "
        "AND event_type = ? AND json_extract_string(tags, ?) IN (?, ?) "
        "AND regexp_matches(json_extract_string(payload, ?), ?) "
        "AND TRY_CAST(json_extract_string(payload, ?) AS DOUBLE) > ? "
        "AND NOT coalesce(model IN (?), false) AND team IS DISTINCT FROM ?)\n"
        "GROUP BY 1\n"
        "ORDER BY 2 DESC NULLS LAST, 1 ASC NULLS LAST\n"
        "LIMIT ?"
    )
    assert c.params == [
        "$.project", "$.amount", "t1", 1767225600000000, 1767312000000000, "cost", "$.team", "a", "b",
        "$.dimensions.region", "^eu", "$.usage.total", 10, "x", "ops", 11,
    ]  # fmt: skip


def test_sql_composite_error_rate() -> None:
    c = compile_query(q(metric="error_rate", aggregation={"time_bucket": "5m", "group_by": ["model"]}))
    assert c.sql.splitlines()[0] == (
        "SELECT b AS bucket, g0, CAST(count(*) FILTER (WHERE event_type = ? AND name = ? AND status = ?) AS DOUBLE)"
        " / nullif(count(*) FILTER (WHERE event_type = ? AND name = ?), 0) AS a0"
    )
    assert "AND event_type IN (?))" in c.sql
    assert c.params[:5] == ["telemetry", DUR["name"], "error", "telemetry", DUR["name"]]


def test_sql_total_tokens_and_hyphenated_paths() -> None:
    c = compile_query(
        q(metric={"field": "total_tokens"}, aggregation={"functions": ["sum"], "group_by": ["tags.cost-center"]})
    )
    assert "(CAST(coalesce(input_tokens, 0) AS HUGEINT) + coalesce(output_tokens, 0)) AS v" in c.sql
    assert c.params[0] == '$."cost-center"'


PROMQL = [
    (
        {"metric": DUR, "aggregation": {"time_bucket": "1h", "functions": ["p95"], "group_by": ["model"]}},
        {"p95": "histogram_quantile(0.95, sum by (le, gen_ai_request_model) (rate(gen_ai_client_operation_duration_seconds_bucket{tenant_id=\"t1\"}[1h]))) * 1000"},
    ),
    (
        {"metric": {"event_type": "cost"}, "aggregation": {"time_bucket": "1d", "functions": ["sum"], "group_by": ["team"]},
         "filters": [{"field": "model", "operator": "in", "value": ["gpt-4o", "o1.mini"]}]},
        {"sum": 'sum by (team) (increase(llm_cost_usd_total{tenant_id="t1", gen_ai_request_model=~"gpt-4o|o1\\\\.mini"}[1d]))'},
    ),
    (
        {"metric": DUR, "aggregation": {"functions": ["count", "avg"]}, "filters": [{"field": "status", "operator": "eq", "value": "error"}]},
        {"count": 'sum (increase(gen_ai_client_operation_duration_seconds_count{tenant_id="t1", error_type!=""}[1d]))',
         "avg": 'sum (increase(gen_ai_client_operation_duration_seconds_sum{tenant_id="t1", error_type!=""}[1d])) / '
                'sum (increase(gen_ai_client_operation_duration_seconds_count{tenant_id="t1", error_type!=""}[1d])) * 1000'},
    ),
    (
        {"metric": {"event_type": "security", "name": "prompt_injection"}, "aggregation": {"time_bucket": "5m", "functions": ["count"]}},
        {"count": 'sum (increase(llm_security_threats_total{tenant_id="t1", threat_type="prompt_injection"}[5m]))'},
    ),
    (
        {"metric": "cost_per_request", "aggregation": {"group_by": ["model"]}},
        {"cost_per_request": 'sum by (gen_ai_request_model) (increase(llm_cost_usd_total{tenant_id="t1"}[1d])) / '
                             'sum by (gen_ai_request_model) (increase(gen_ai_client_operation_duration_seconds_count{tenant_id="t1"}[1d]))'},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), PROMQL)
def test_promql_golden(body: dict[str, Any], expected: dict[str, str]) -> None:
    plan = compile_promql(q(**body))
    assert plan.queries == expected
    assert plan.start_s == 1767225600.0 and plan.end_s == 1767312000.0


def test_promql_step_and_error_rate() -> None:
    plan = compile_promql(q(metric="error_rate", aggregation={"time_bucket": "5m"}))
    total = 'sum (increase(gen_ai_client_operation_duration_seconds_count{tenant_id="t1"}[5m]))'
    errors = 'sum (increase(gen_ai_client_operation_duration_seconds_count{tenant_id="t1", error_type!=""}[5m]))'
    assert plan.queries == {"error_rate": f"({errors} or 0 * {total}) / {total}"}
    assert plan.step_s == 300


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metric": DUR, "aggregation": {"functions": ["min"]}}, "aggregation.functions[0]"),
        ({"metric": DUR, "filters": [{"field": "value", "operator": "gt", "value": 1}]}, "filters[0].field"),
        ({"metric": DUR, "aggregation": {"group_by": ["payload.x"]}}, "aggregation.group_by[0]"),
        ({"metric": {"event_type": "telemetry", "name": "my.custom"}}, "metric.name"),
        ({"metric": {"event_type": "cost"}, "aggregation": {"functions": ["count"]}}, "aggregation.functions[0]"),
    ],
)
def test_promql_unsupported_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(Unsupported) as exc:
        compile_promql(q(**body))
    assert exc.value.field == field and "not expressible in PromQL" in str(exc.value)


LOGQL = [
    (
        {"metric": {"event_type": "security"}, "aggregation": {"time_bucket": "5m", "functions": ["count"], "group_by": ["payload.source_ip"]},
         "filters": [{"field": "payload.threat_type", "operator": "eq", "value": "prompt_injection"}]},
        {"count": 'sum by (payload_source_ip) (count_over_time({tenant_id="t1", event_type="security"} | json | payload_threat_type="prompt_injection" [5m]))'},
    ),
    (
        {"metric": DUR, "aggregation": {"functions": ["p99", "avg"], "group_by": ["tags.team"]},
         "filters": [{"field": "environment", "operator": "eq", "value": "prod"}, {"field": "value", "operator": "gte", "value": 100}]},
        {"p99": 'quantile_over_time(0.99, {tenant_id="t1", event_type="telemetry", environment="prod"} | json | payload_metric_name="gen_ai.client.operation.duration" | payload_value >= 100 | unwrap payload_value | __error__="" [1d]) by (tags_team)',
         "avg": 'avg_over_time({tenant_id="t1", event_type="telemetry", environment="prod"} | json | payload_metric_name="gen_ai.client.operation.duration" | payload_value >= 100 | unwrap payload_value | __error__="" [1d]) by (tags_team)'},
    ),
    (
        {"metric": "error_rate"},
        {"error_rate": 'sum(count_over_time({tenant_id="t1", event_type="telemetry"} | json | payload_metric_name="gen_ai.client.operation.duration" | payload_status="error" [1d])) / '
                       'sum(count_over_time({tenant_id="t1", event_type="telemetry"} | json | payload_metric_name="gen_ai.client.operation.duration" [1d]))'},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), LOGQL)
def test_logql_golden(body: dict[str, Any], expected: dict[str, str]) -> None:
    assert compile_logql(q(**body)).queries == expected


def test_logql_quotes_values() -> None:
    plan = compile_logql(q(filters=[{"field": "tags.team", "operator": "eq", "value": 'a"b\\c'}]))
    assert plan.queries["count"] == 'sum(count_over_time({tenant_id="t1"} | json | tags_team="a\\"b\\\\c" [1d]))'


def test_logql_field_that_depends_on_event_type() -> None:
    with pytest.raises(QueryError, match=r"needs metric\.event_type"):
        compile_logql(q(filters=[{"field": "status", "operator": "eq", "value": "error"}]))
