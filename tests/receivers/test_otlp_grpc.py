"""OTLP/gRPC: the real OpenTelemetry SDK exporters against the receiver, a real pipeline and store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import format_span_id, format_trace_id

from tests.receivers.test_otlp_support import (
    EXP_HISTOGRAM,
    GrpcServer,
    Hub,
    QueueFull,
    make_hub,
    sdk_logs,
    sdk_metrics,
    sdk_spans,
)

METRICS_EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
TRACES_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = make_hub(tmp_path_factory.mktemp("otlp-grpc"))
    yield h
    h.store.shutdown()


@pytest.fixture(scope="module")
def server(hub: Hub) -> Iterator[GrpcServer]:
    s = GrpcServer(hub.pipeline, on_reject=hub.on_reject, max_message_bytes=1 << 20)
    yield s
    s.close()


@pytest.fixture(scope="module")
def channel(server: GrpcServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as ch:
        yield ch


def raw_call(channel: grpc.Channel, method: str, body: bytes, metadata: Any = None) -> bytes:
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    result: bytes = call(body, timeout=10, metadata=metadata)
    return result


def metrics_request(*, n: int = 1, nan_sum: bool = False, t: int | None = None) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "raw-client"
    m = rm.scope_metrics.add().metrics.add(name="raw.requests", unit="1")
    m.sum.aggregation_temporality = 2
    m.sum.is_monotonic = True
    ts = t if t is not None else time.time_ns()
    for i in range(n):
        m.sum.data_points.add(time_unix_nano=ts, as_int=i)
    if nan_sum:
        h = rm.scope_metrics[0].metrics.add(name="raw.latency", unit="s")
        h.histogram.aggregation_temporality = 1
        h.histogram.data_points.add(time_unix_nano=ts, count=1, sum=float("nan"), explicit_bounds=[1.0],
                                    bucket_counts=[1, 0])  # fmt: skip
    return req


def test_sdk_metrics_every_kind_are_stored_with_genai_columns(hub: Hub, server: GrpcServer) -> None:
    exporter = OTLPMetricExporter(endpoint=server.target, insecure=True, timeout=10)
    assert exporter.export(sdk_metrics({"service.name": "grpc-metrics", "deployment.environment": "staging",
                                        "team": "ml-platform"})) is MetricExportResult.SUCCESS  # fmt: skip
    exporter.shutdown()
    rows = hub.rows(
        "select name, kind, temporality, monotonic, value, model, provider, operation, token_type, error_type,"
        " team, environment, unit, source, tenant_id, count, bounds, bucket_counts, sum, min, max"
        " from metric_points where service_name = 'grpc-metrics' order by name, model, token_type"
    )
    by_name: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        by_name.setdefault(r[0], []).append(r)
    tokens = by_name["gen_ai.client.token.usage"]
    assert [(r[1], r[2], r[3], r[4]) for r in tokens] == [("sum", "delta", True, 30.0), ("sum", "delta", True, 120.0)]
    # old names: gen_ai.response.model -> model, gen_ai.system -> provider
    assert [(r[5], r[6], r[7], r[8]) for r in tokens] == [
        ("claude-3-5-sonnet", "anthropic", "chat", "output"),
        ("gpt-4o", "openai", "chat", "input"),
    ]
    assert {(r[10], r[11], r[12], r[13], r[14]) for r in tokens} == {
        ("ml-platform", "staging", "{token}", "otlp", "default")
    }
    (inflight,) = by_name["llm.requests.inflight"]
    assert (inflight[1], inflight[2], inflight[3], inflight[4]) == ("sum", "cumulative", False, 2.0)
    (gauge,) = by_name["llm.gpu.utilization"]
    assert (gauge[1], gauge[2], gauge[4]) == ("gauge", "", 0.75)
    exp = {r[9]: r for r in by_name[EXP_HISTOGRAM]}
    ok, err = exp[None], exp["timeout"]
    assert ok[1] == "histogram" and ok[2] == "delta" and ok[15] == 5 and ok[18] == pytest.approx(6.2)
    assert (ok[19], ok[20]) == (0.2, 3.2)
    bounds, counts = ok[16], ok[17]
    assert len(counts) == len(bounds) + 1 and sum(counts) == 5 and bounds == sorted(bounds)
    for v in (0.2, 0.4, 0.8, 1.6, 3.2):  # every value sits in a bucket whose bounds enclose it
        i = next(k for k, b in enumerate(bounds) if v <= b * (1 + 1e-9))
        assert counts[i] >= 1 and (i == 0 or bounds[i - 1] < v)
    assert err[15] == 1 and (err[5], err[7]) == ("gpt-4o", "chat")
    (ttft,) = by_name["gen_ai.server.time_to_first_token"]
    assert ttft[1] == "histogram" and ttft[16][:3] == [0.0, 5.0, 10.0] and ttft[15] == 3
    assert sum(ttft[17]) == 3 and ttft[5] == "llama-3-70b"


def test_sdk_traces_and_logs_are_stored(hub: Hub, server: GrpcServer) -> None:
    spans = sdk_spans({"service.name": "grpc-traces"})
    exporter = OTLPSpanExporter(endpoint=server.target, insecure=True, timeout=10)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    client = next(s for s in spans if s.name == "chat gpt-4o")
    rows = hub.rows(
        "select trace_id, span_id, parent_span_id, kind, status_code, status_message, model, provider, operation,"
        " error_type, duration_ms, events, attributes, source from spans where service_name = 'grpc-traces'"
        " order by start_ts"
    )
    assert len(rows) == 2
    parent, child = rows
    assert child[0] == format_trace_id(client.context.trace_id) == parent[0]
    assert child[1] == format_span_id(client.context.span_id)
    assert child[2] == parent[1] and parent[2] is None
    assert child[3:10] == ("CLIENT", "ERROR", "429 from provider", "gpt-4o", "openai", "chat", "rate_limited")
    assert parent[3] == "SERVER" and child[10] >= 0 and child[13] == "otlp"
    assert json.loads(child[11])[0]["name"] == "gen_ai.content.prompt"
    assert json.loads(child[12])["gen_ai.usage.input_tokens"] == 120

    logs = sdk_logs({"service.name": "grpc-logs"})
    log_exporter = OTLPLogExporter(endpoint=server.target, insecure=True, timeout=10)
    assert log_exporter.export(logs) is LogRecordExportResult.SUCCESS
    log_exporter.shutdown()
    rows = hub.rows(
        "select body, severity_number, severity_text, event_name, trace_id, span_id, scope_name, attributes"
        " from logs where service_name = 'grpc-logs' order by severity_number desc"
    )
    assert len(rows) == 2
    warn, info = rows
    assert warn[:3] == ("prompt blocked by policy", 13, "WARN") and len(warn[4]) == 32 and len(warn[5]) == 16
    assert warn[6] == "test.genai" and json.loads(warn[7])["policy.id"] == "pii-1"
    assert json.loads(info[0]) == {"decision": "allow", "score": 0.1} and info[3] == "policy.evaluated"


def test_tenant_from_metadata_then_resource_then_default(hub: Hub, server: GrpcServer) -> None:
    exporter = OTLPMetricExporter(endpoint=server.target, insecure=True, headers={"x-scope-orgid": "acme"})
    assert (
        exporter.export(sdk_metrics({"service.name": "tenant-h", "tenant_id": "ignored"})) is MetricExportResult.SUCCESS
    )
    exporter.shutdown()
    exporter = OTLPMetricExporter(endpoint=server.target, insecure=True)
    assert (
        exporter.export(sdk_metrics({"service.name": "tenant-r", "tenant.id": "globex"})) is MetricExportResult.SUCCESS
    )
    exporter.shutdown()
    tenants = dict(hub.rows("select distinct service_name, tenant_id from metric_points "
                            "where service_name like 'tenant-%'"))  # fmt: skip
    assert tenants == {"tenant-h": "acme", "tenant-r": "globex"}


def test_partial_success_counts_rejected_points(hub: Hub, channel: grpc.Channel) -> None:
    before = hub.count("metric_points", "service_name = 'raw-client'")
    resp = ExportMetricsServiceResponse.FromString(
        raw_call(channel, METRICS_EXPORT, metrics_request(n=3, nan_sum=True).SerializeToString())
    )
    assert resp.partial_success.rejected_data_points == 1
    assert "'raw.latency': histogram sum is not finite" in resp.partial_success.error_message
    assert hub.count("metric_points", "service_name = 'raw-client'") == before + 3
    assert ("otlp_grpc", "partial_success") in hub.rejects
    # and the generated stub (a deserialising client) reads the same answer
    stub_resp = MetricsServiceStub(channel).Export(metrics_request(n=1), timeout=10)
    assert not stub_resp.HasField("partial_success")


@pytest.mark.parametrize(
    ("method", "body"),
    [
        (METRICS_EXPORT, metrics_request(n=50).SerializeToString()[:-7]),  # truncated
        (LOGS_EXPORT, b"\xff\xff\xff\xff\x0f"),  # garbage varint
        (TRACES_EXPORT, b"\x0a\x05\x0a\x03"),  # length prefix past the end
    ],
    ids=["truncated-metrics", "garbage-logs", "bad-length-traces"],
)
def test_bad_protobuf_is_invalid_argument_and_server_keeps_serving(
    hub: Hub, channel: grpc.Channel, method: str, body: bytes
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        raw_call(channel, method, body)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid" in (info.value.details() or "")
    assert ("otlp_grpc", "malformed") in hub.rejects
    assert raw_call(channel, METRICS_EXPORT, metrics_request().SerializeToString()) == b""


def test_bad_tenant_and_oversized_message(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        raw_call(channel, METRICS_EXPORT, b"", metadata=(("x-scope-orgid", "x" * 200),))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:  # above max_receive_message_length: grpc itself refuses
        raw_call(channel, METRICS_EXPORT, metrics_request(n=60_000).SerializeToString())
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert raw_call(channel, LOGS_EXPORT, ExportLogsServiceRequest().SerializeToString()) == b""
    assert raw_call(channel, TRACES_EXPORT, ExportTraceServiceRequest().SerializeToString()) == b""


def test_queue_full_is_resource_exhausted_with_retry_info(tmp_path: Path) -> None:
    consumer = QueueFull()
    server = GrpcServer(consumer)
    try:
        with grpc.insecure_channel(server.target) as channel:
            with pytest.raises(grpc.RpcError) as info:
                raw_call(channel, METRICS_EXPORT, metrics_request().SerializeToString())
            err: Any = info.value
            assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            trailers = dict(err.trailing_metadata())
            status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
            assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
            retry = error_details_pb2.RetryInfo()
            assert status.details[0].Unpack(retry) and retry.retry_delay.seconds == 2
            assert error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]) == retry
            # an empty request stores nothing, so it never reaches the full queue
            assert raw_call(channel, METRICS_EXPORT, b"") == b""
        assert consumer.calls == 1
    finally:
        server.close()
