"""The OTLP receivers as the hub service wires them (gRPC and HTTP ports of a running hub)."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.helpers.hub import running_hub
from tests.receivers.test_otlp_support import sdk_metrics, sdk_spans


def test_running_hub_accepts_otlp_over_grpc_and_http(tmp_path: Path) -> None:
    with running_hub(tmp_path) as hub:
        metrics = GrpcMetricExporter(endpoint=hub.grpc_target, insecure=True, timeout=10)
        assert metrics.export(sdk_metrics({"service.name": "svc-grpc"})) is MetricExportResult.SUCCESS
        metrics.shutdown()
        spans = HttpSpanExporter(endpoint=f"{hub.otlp_http}/v1/traces", timeout=10)
        assert spans.export(sdk_spans({"service.name": "svc-http"})) is SpanExportResult.SUCCESS
        spans.shutdown()
        assert hub.sql("select count(*) from metric_points where service_name = 'svc-grpc'")[0][0] >= 7
        assert hub.sql("select count(*) from spans where service_name = 'svc-http' and source = 'otlp'") == [(2,)]
