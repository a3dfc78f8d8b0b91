"""OTLP/HTTP: the real SDK exporters (protobuf, gzip) and hand-built OTLP/JSON against uvicorn + a store."""

from __future__ import annotations

import gzip
import json
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import format_trace_id

from tests.receivers.test_otlp_support import (
    EXP_HISTOGRAM,
    HttpServer,
    Hub,
    QueueFull,
    make_hub,
    sdk_logs,
    sdk_metrics,
    sdk_spans,
)

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}
MAX_BODY = 64 << 10
TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"
PARENT_ID = "aaa19b7ec3c1b174"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = make_hub(tmp_path_factory.mktemp("otlp-http"))
    yield h
    h.store.shutdown()


@pytest.fixture(scope="module")
def server(hub: Hub) -> Iterator[HttpServer]:
    s = HttpServer(hub.pipeline, max_body_bytes=MAX_BODY, on_reject=hub.on_reject)
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(server: HttpServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def now_ns() -> int:
    return time.time_ns()


def json_metrics(service: str, *, bad_point: bool = False) -> dict[str, Any]:
    t = now_ns()
    points: list[dict[str, Any]] = [
        {"timeUnixNano": str(t), "startTimeUnixNano": str(t - 10**9), "asInt": "42",
         "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                        {"key": "gen_ai.token.type", "value": {"stringValue": "output"}},
                        {"key": "gen_ai.system", "value": {"stringValue": "openai"}}]},
        {"timeUnixNano": t, "asDouble": 1.5,
         "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]},
    ]  # fmt: skip
    if bad_point:
        points.append({"asInt": "1"})  # no timestamp
    return {
        "resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}},
                                        {"key": "tenant_id", "value": {"stringValue": "json-tenant"}}]},
            "scopeMetrics": [{"scope": {"name": "hand"}, "metrics": [
                {"name": "gen_ai.client.token.usage", "unit": "{token}",
                 "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": points}},
                {"name": "llm.queue.depth", "gauge": {"dataPoints": [{"timeUnixNano": str(t), "asDouble": 7}]}},
                {"name": "llm.latency", "summary": {"dataPoints": [{
                    "timeUnixNano": str(t), "count": "4", "sum": 2.5,
                    "quantileValues": [{"quantile": 0.5, "value": 0.4}, {"quantile": 0.99, "value": 1.2}]}]}},
                {"name": "llm.size", "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [{
                    "timeUnixNano": str(t), "count": "6", "sum": 20, "scale": 0, "zeroCount": "1",
                    "positive": {"offset": 1, "bucketCounts": ["2", "3"]}}]}},
            ]}],
        }]
    }  # fmt: skip


def json_traces(trace_id: str = TRACE_ID, span_id: str = SPAN_ID) -> dict[str, Any]:
    t = now_ns()
    return {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-traces"}}]},
            "scopeSpans": [{"scope": {"name": "hand"}, "spans": [{
                "traceId": trace_id, "spanId": span_id, "parentSpanId": PARENT_ID, "name": "chat",
                "kind": 3, "startTimeUnixNano": str(t - 2_500_000), "endTimeUnixNano": str(t),
                "status": {"code": 2, "message": "boom"},
                "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                               {"key": "gen_ai.provider.name", "value": {"stringValue": "aws.bedrock"}},
                               {"key": "gen_ai.response.model", "value": {"stringValue": "nova-pro"}},
                               {"key": "error.type", "value": {"stringValue": "500"}}],
                "links": [{"traceId": TRACE_ID, "spanId": PARENT_ID}],
                "unknownField": {"ignored": True}}]}],
        }]
    }  # fmt: skip


def json_logs() -> dict[str, Any]:
    return {
        "resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-logs"}}]},
            "scopeLogs": [{"logRecords": [{
                "timeUnixNano": str(now_ns()), "severityNumber": 17, "severityText": "ERROR",
                "body": {"kvlistValue": {"values": [{"key": "msg", "value": {"stringValue": "denied"}}]}},
                "traceId": TRACE_ID, "spanId": SPAN_ID, "eventName": "policy.denied",
                "attributes": [{"key": "bytes", "value": {"bytesValue": "aGk="}}]}]}],
        }]
    }  # fmt: skip


def assert_serving(client: httpx.Client) -> None:
    r = client.post("/v1/metrics", content=ExportMetricsServiceRequest().SerializeToString(), headers=PB)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"


# -- the real SDK exporters -----------------------------------------------------------------------------
def test_sdk_http_exporters_protobuf_gzip(hub: Hub, server: HttpServer) -> None:
    metrics = OTLPMetricExporter(endpoint=f"{server.url}/v1/metrics", compression=Compression.Gzip, timeout=10)
    assert metrics.export(sdk_metrics({"service.name": "http-sdk"})) is MetricExportResult.SUCCESS
    metrics.shutdown()
    spans = sdk_spans({"service.name": "http-sdk"})
    traces = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers={"X-Scope-OrgID": "Acme"})
    assert traces.export(spans) is SpanExportResult.SUCCESS
    traces.shutdown()
    logs = OTLPLogExporter(endpoint=f"{server.url}/v1/logs", compression=Compression.Deflate)
    assert logs.export(sdk_logs({"service.name": "http-sdk"})) is LogRecordExportResult.SUCCESS
    logs.shutdown()

    kinds = dict(hub.rows("select name, any_value(kind) from metric_points where service_name = 'http-sdk' "
                          "group by name"))  # fmt: skip
    assert kinds == {"gen_ai.client.token.usage": "sum", "llm.requests.inflight": "sum", "llm.gpu.utilization": "gauge",
                     EXP_HISTOGRAM: "histogram", "gen_ai.server.time_to_first_token": "histogram"}  # fmt: skip
    assert hub.rows("select distinct provider from metric_points where service_name = 'http-sdk' and "
                    "name = 'gen_ai.client.token.usage' order by 1") == [("anthropic",), ("openai",)]  # fmt: skip
    trace_ids = {r[0] for r in hub.rows("select trace_id from spans where service_name = 'http-sdk'")}
    assert trace_ids == {format_trace_id(spans[0].context.trace_id)}
    assert hub.rows("select distinct tenant_id from spans where service_name = 'http-sdk'") == [("Acme",)]
    assert hub.count("logs", "service_name = 'http-sdk'") == 2


# -- OTLP/JSON ------------------------------------------------------------------------------------------
def test_json_metrics_with_partial_success(hub: Hub, client: httpx.Client) -> None:
    r = client.post("/v1/metrics", content=json.dumps(json_metrics("json-metrics", bad_point=True)), headers=JS)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["partialSuccess"]["rejectedDataPoints"] == "1"
    assert "data point without a timestamp" in body["partialSuccess"]["errorMessage"]
    rows = hub.rows(
        "select name, kind, value, model, provider, token_type, tenant_id, count, sum, bounds, bucket_counts, "
        "attributes from metric_points where service_name = 'json-metrics' order by name, value"
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("gen_ai.client.token.usage", "sum", 1.5),
        ("gen_ai.client.token.usage", "sum", 42.0),
        ("llm.latency", "summary", 0.4),
        ("llm.latency", "summary", 1.2),
        ("llm.latency", "summary", 2.5),
        ("llm.queue.depth", "gauge", 7.0),
        ("llm.size", "histogram", None),
    ]
    assert rows[1][3:7] == ("gpt-4o-mini", "openai", "output", "json-tenant")
    assert [json.loads(r[11]).get("quantile") for r in rows[2:5]] == ["0.5", "0.99", None]
    assert rows[4][7:9] == (4, 2.5)
    # exponential scale 0: zero bucket <= 0, then (2,4], (4,8], and the closing (8, +inf)
    assert rows[6][7:11] == (6, 20.0, [0.0, 4.0, 8.0], [1, 2, 3, 0])


def test_json_traces_and_logs(hub: Hub, client: httpx.Client) -> None:
    r = client.post("/v1/traces", content=json.dumps(json_traces()), headers={**JS, "x-scope-orgid": "t-json"})
    assert r.status_code == 200 and r.json() == {}
    (span,) = hub.rows("select trace_id, span_id, parent_span_id, kind, status_code, model, provider, operation, "
                       "error_type, duration_ms, tenant_id from spans where service_name = 'json-traces'")  # fmt: skip
    assert span == (TRACE_ID, SPAN_ID, PARENT_ID, "CLIENT", "ERROR", "nova-pro", "aws.bedrock", "chat", "500", 2.5,
                    "t-json")  # fmt: skip
    r = client.post("/v1/logs", content=json.dumps(json_logs()).encode(), headers=JS)
    assert r.status_code == 200
    (log,) = hub.rows("select body, severity_number, trace_id, span_id, event_name, attributes from logs "
                      "where service_name = 'json-logs'")  # fmt: skip
    assert json.loads(log[0]) == {"msg": "denied"} and log[1:5] == (17, TRACE_ID, SPAN_ID, "policy.denied")
    assert json.loads(log[5]) == {"bytes": "aGk="}


def test_json_span_with_bad_id_length_is_a_partial_success(hub: Hub, client: httpx.Client) -> None:
    r = client.post("/v1/traces", content=json.dumps(json_traces(span_id="abcd")), headers=JS)
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedSpans"] == "1"


def test_protobuf_partial_success(client: httpx.Client) -> None:
    req = ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="pb.gauge")
    m.gauge.data_points.add(time_unix_nano=now_ns(), as_double=1.0)
    m.gauge.data_points.add(time_unix_nano=now_ns(), as_double=float("nan"))
    r = client.post("/v1/metrics", content=req.SerializeToString(), headers=PB)
    resp = ExportMetricsServiceResponse.FromString(r.content)
    assert r.status_code == 200 and resp.partial_success.rejected_data_points == 1
    assert "value is not finite" in resp.partial_success.error_message


def test_summary_with_a_nan_quantile_value_is_reported_in_the_partial_success(client: httpx.Client) -> None:
    req = ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="pb.summary")
    m.summary.data_points.add(time_unix_nano=now_ns(), count=2, sum=1.0,
                              quantile_values=[{"quantile": 0.5, "value": float("nan")}])  # fmt: skip
    m.summary.data_points.add(
        time_unix_nano=now_ns(), count=2, sum=1.0, quantile_values=[{"quantile": 0.5, "value": 0.5}]
    )
    r = client.post("/v1/metrics", content=req.SerializeToString(), headers=PB)
    resp = ExportMetricsServiceResponse.FromString(r.content)
    assert r.status_code == 200 and resp.partial_success.rejected_data_points == 0  # a warning: points kept
    assert "dropped 1 summary quantiles (their points were stored): 1 x metric 'pb.summary': summary quantile " \
           "value is not finite" in resp.partial_success.error_message


def test_span_event_out_of_bounds_is_dropped_with_a_warning_and_the_span_stored(hub: Hub, client: httpx.Client) -> None:
    body = json_traces(span_id="eee19b7ec3c1b175")
    span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["events"] = [{"name": "ok", "timeUnixNano": str(now_ns())},
                      {"name": "in-ms", "timeUnixNano": str(now_ns() // 10**6)}]  # fmt: skip
    r = client.post("/v1/traces", content=json.dumps(body), headers=JS)
    assert r.status_code == 200
    partial = r.json()["partialSuccess"]
    assert "rejectedSpans" not in partial  # 0: the span is stored (a warning, as OTLP allows)
    assert partial["errorMessage"] == ("dropped 1 span events (their spans were stored): "
                                       "1 x span event time_unix_nano is before 2000-01-01 (nanoseconds since the "
                                       "epoch are expected)")  # fmt: skip
    (events,) = hub.rows("select events from spans where span_id = 'eee19b7ec3c1b175'")[0]
    assert [e["name"] for e in json.loads(events)] == ["ok"]


# -- bad input: exact status codes, google.rpc.Status bodies, and the server keeps serving --------------
BOMB = gzip.compress(b"\0" * (MAX_BODY * 4))
VALID_PB = ExportMetricsServiceRequest(resource_metrics=[{"scope_metrics": [{"metrics": [
    {"name": "x", "gauge": {"data_points": [{"time_unix_nano": 1_700_000_000_000_000_000, "as_int": 1}] * 20}}]}]}]).SerializeToString()  # fmt: skip

BAD_REQUESTS = [
    ("truncated-protobuf", "/v1/metrics", VALID_PB[:-3], PB, 400),
    ("garbage-protobuf", "/v1/traces", b"\xff\xff\xff\xff\xff", PB, 400),
    ("wrong-content-type", "/v1/logs", b"hello", {"Content-Type": "text/plain"}, 415),
    ("no-content-type", "/v1/logs", b"hello", {}, 415),
    ("bad-gzip", "/v1/metrics", b"\x1f\x8b\x08garbage", {**PB, "Content-Encoding": "gzip"}, 400),
    ("truncated-gzip", "/v1/metrics", gzip.compress(VALID_PB)[:-8], {**PB, "Content-Encoding": "gzip"}, 400),
    ("bad-deflate", "/v1/metrics", b"nope", {**PB, "Content-Encoding": "deflate"}, 400),
    ("unsupported-encoding", "/v1/metrics", VALID_PB, {**PB, "Content-Encoding": "br"}, 415),
    ("oversized-body", "/v1/metrics", b"\0" * (MAX_BODY + 1), PB, 413),
    ("gzip-bomb", "/v1/metrics", BOMB, {**PB, "Content-Encoding": "gzip"}, 413),
    ("invalid-json", "/v1/metrics", b'{"resourceMetrics": [', JS, 400),
    ("json-not-object", "/v1/metrics", b"[1, 2]", JS, 400),
    ("json-wrong-types", "/v1/metrics", b'{"resourceMetrics": [{"scopeMetrics": "x"}]}', JS, 400),
    ("json-bad-enum", "/v1/traces", json.dumps(json_traces()).replace('"kind": 3', '"kind": [3]').encode(),
     JS, 400),
    ("json-bad-int64", "/v1/traces", json.dumps(json_traces()).replace('"endTimeUnixNano": "', '"endTimeUnixNano": "x').encode(),
     JS, 400),
    ("json-bad-utf8", "/v1/logs", b'{"resourceLogs": [{"resource": {"attributes": [{"key": "\xff\xfe"}]}}]}', JS, 400),
    ("json-bad-id", "/v1/traces", json.dumps(json_traces(trace_id="zz!")).encode(), JS, 400),
    ("bad-tenant", "/v1/metrics", VALID_PB, {**PB, "X-Scope-OrgID": "x" * 300}, 400),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "headers", "status"), [r[1:] for r in BAD_REQUESTS],
                         ids=[r[0] for r in BAD_REQUESTS])  # fmt: skip
def test_bad_input_status_codes(client: httpx.Client, path: str, body: bytes, headers: dict[str, str],
                                status: int) -> None:  # fmt: skip
    r = client.post(path, content=body, headers=headers)
    assert r.status_code == status, r.content
    if r.headers["content-type"] == "application/json":
        assert r.json()["code"] == 3 and r.json()["message"]
    else:
        assert status_pb2.Status.FromString(r.content).code == 3
    assert_serving(client)


def test_wrong_method_and_unknown_path(client: httpx.Client) -> None:
    r = client.get("/v1/metrics")
    assert r.status_code == 405 and "POST" in r.headers["allow"]
    assert client.put("/v1/traces", content=b"").status_code == 405
    assert client.post("/v1/profiles", content=b"", headers=PB).status_code == 404
    assert_serving(client)


def test_rejections_are_counted(hub: Hub, client: httpx.Client) -> None:
    client.post("/v1/logs", content=b"x", headers={"Content-Type": "text/csv"})
    assert ("otlp_http", "unsupported_media_type") in hub.rejects
    assert b'hub_ingest_rejected_total{reason="unsupported_media_type",receiver="otlp_http"}' in hub.metrics.render()


def test_queue_full_is_503_with_retry_after() -> None:
    consumer = QueueFull()
    server = HttpServer(consumer)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            r = c.post("/v1/metrics", content=json.dumps(json_metrics("full")), headers=JS)
            assert r.status_code == 503 and r.headers["retry-after"] == "2"
            assert r.json()["code"] == 8 and r.json()["details"][0]["retryDelay"] == "2s"
            r = c.post("/v1/metrics", content=zlib.compress(VALID_PB), headers={**PB, "Content-Encoding": "deflate"})
            assert r.status_code == 503 and r.headers["retry-after"] == "2"
            status = status_pb2.Status.FromString(r.content)
            retry = error_details_pb2.RetryInfo()
            assert status.details[0].Unpack(retry) and retry.retry_delay.seconds == 2
        assert consumer.calls == 2
    finally:
        server.close()
