"""The whole hub wired together: every receiver on its default path lands in one store.

REST, WebSocket, the gRPC event stream, OTLP gRPC (the SDK's own exporters) and OTLP HTTP all reach
the same tables, with the tenant each sends.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from websockets.sync.client import connect

from receivers.native_grpc.client import EventStreamClient
from tests.helpers.events import make_event
from tests.helpers.hub import running_hub

_ = InMemoryMetricReader  # the periodic reader below is what the SDK users run


def test_every_receiver_reaches_the_store(tmp_path: Path) -> None:
    with running_hub(tmp_path) as hub:
        # REST
        r = httpx.post(f"{hub.api}/api/v1/events", json=[make_event("cost")], headers={"X-Scope-OrgID": "rest-t"})
        assert r.status_code == 202
        # WebSocket
        with connect(hub.api.replace("http", "ws") + "/ws/events?tenant=ws-t") as ws:
            ws.send(json.dumps([make_event("security")]))
            assert json.loads(ws.recv(10))["accepted"] == 1
        # gRPC event stream on the OTLP gRPC port
        with EventStreamClient(hub.grpc_target, tenant_id="grpc-t") as client:
            ack = client.send([make_event("policy"), make_event("telemetry")])
            assert ack.accepted == 2
        # OTLP metrics over gRPC from the SDK
        resource = Resource.create({"service.name": "chat-api", "tenant_id": "otlp-t"})
        exporter = GrpcMetricExporter(endpoint=hub.grpc_target, insecure=True)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
        provider = MeterProvider(resource=resource, metric_readers=[reader])
        hist = provider.get_meter("test").create_histogram("gen_ai.client.operation.duration", unit="s")
        hist.record(1.5, {"gen_ai.request.model": "gpt-4o", "gen_ai.system": "openai", "gen_ai.operation.name": "chat"})
        provider.force_flush()
        provider.shutdown()
        # OTLP traces over HTTP from the SDK
        tp = TracerProvider(resource=Resource.create({"service.name": "chat-api"}))
        tp.add_span_processor(SimpleSpanProcessor(HttpSpanExporter(endpoint=f"{hub.otlp_http}/v1/traces",
                                                                   headers={"X-Scope-OrgID": "http-t"})))  # fmt: skip
        with tp.get_tracer("t").start_as_current_span("chat gpt-4o") as span:
            span.set_attribute("gen_ai.request.model", "gpt-4o")
        tp.shutdown()

        events = dict(hub.sql("SELECT tenant_id, count(*) FROM events GROUP BY 1"))
        assert events == {"rest-t": 1, "ws-t": 1, "grpc-t": 2}
        otlp = hub.sql(
            "SELECT DISTINCT tenant_id, name, model, provider, operation FROM metric_points WHERE source = 'otlp'"
        )
        assert otlp == [("otlp-t", "gen_ai.client.operation.duration", "gpt-4o", "openai", "chat")]
        spans = hub.sql("SELECT tenant_id, name, model FROM spans WHERE source = 'otlp'")
        assert spans == [("http-t", "chat gpt-4o", "gpt-4o")]
        text = httpx.get(f"{hub.api}/metrics").text
        for receiver in ("rest", "websocket", "grpc_stream", "otlp_grpc", "otlp_http"):
            assert f'receiver="{receiver}"' in text, receiver
