"""Native events from Kafka arrive through the Collector as OTLP log records marked
``hub.native_event = true``; the hub routes their bodies to the native pipeline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import httpx
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub

from tests.helpers.events import make_event
from tests.helpers.hub import running_hub
from tests.receivers.test_otlp_support import GrpcServer, HttpServer, make_hub


def test_marked_log_records_become_native_events(tmp_path: Path) -> None:
    good, bad = make_event("cost"), make_event("cost", payload={"amount": -1})
    req = logs_service_pb2.ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.add(key="service.name").value.string_value = "otel-collector"
    sl = rl.scope_logs.add()
    for ev in (good, bad):
        rec = sl.log_records.add(time_unix_nano=1)
        rec.body.string_value = json.dumps(ev)
        rec.attributes.add(key="hub.native_event").value.bool_value = True
        rec.attributes.add(key="hub.kafka_topic").value.string_value = "platform.events.llm-costops"
    plain = sl.log_records.add(time_unix_nano=1_700_000_000_000_000_000)
    plain.body.string_value = "an ordinary log line"
    with running_hub(tmp_path, grpc=False) as hub:
        r = httpx.post(f"{hub.otlp_http}/v1/logs", content=req.SerializeToString(),
                       headers={"Content-Type": "application/x-protobuf", "X-Scope-OrgID": "kafka-t"})  # fmt: skip
        assert r.status_code == 200
        assert hub.sql("SELECT event_id, tenant_id FROM events") == [(good["event_id"], "kafka-t")]
        assert hub.sql("SELECT body FROM logs") == [("an ordinary log line",)]
        dlq = httpx.get(f"{hub.api}/api/v1/dlq", headers={"X-Scope-OrgID": "kafka-t"}).json()
        assert dlq["total"] == 1 and dlq["entries"][0]["receiver"] == "kafka"


def _native_logs(*bodies: str) -> logs_service_pb2.ExportLogsServiceRequest:
    req = logs_service_pb2.ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    for body in bodies:
        rec = sl.log_records.add()
        rec.body.string_value = body
        rec.attributes.add(key="hub.native_event").value.bool_value = True
    return req


def test_rejected_native_events_are_reported_in_partial_success(tmp_path: Path) -> None:
    """Both transports: the refused hub.native_event records are counted in rejected_log_records."""
    good, negative = make_event("cost"), make_event("cost", payload={"amount": -3})
    req = _native_logs(json.dumps(good), json.dumps(negative), "{not json")
    hub = make_hub(tmp_path)
    http = HttpServer(hub.pipeline, on_reject=hub.on_reject)
    grpc_server = GrpcServer(hub.pipeline, on_reject=hub.on_reject)
    try:
        r = httpx.post(f"{http.url}/v1/logs", content=req.SerializeToString(),
                       headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
        assert r.status_code == 200
        answers = [logs_service_pb2.ExportLogsServiceResponse.FromString(r.content)]
        with grpc.insecure_channel(grpc_server.target) as channel:
            answers.append(LogsServiceStub(channel).Export(req, timeout=10))
        for resp in answers:
            partial = resp.partial_success
            assert partial.rejected_log_records == 2, resp
            assert "payload.amount must be a positive number" in partial.error_message
            assert "malformed JSON" in partial.error_message
            assert partial.error_message.startswith("rejected 2 native events")
        assert hub.rows("SELECT event_id FROM events") == [(good["event_id"],)]  # the resend was a duplicate
        assert ("otlp_http", "partial_success") in hub.rejects and ("otlp_grpc", "partial_success") in hub.rejects
        # ordinary records still count with them
        plain = _native_logs(json.dumps(make_event("cost", payload={"amount": 0})))
        bad_id = plain.resource_logs[0].scope_logs[0].log_records.add(time_unix_nano=time.time_ns())
        bad_id.trace_id = b"short"
        with grpc.insecure_channel(grpc_server.target) as channel:
            partial = LogsServiceStub(channel).Export(plain, timeout=10).partial_success
        assert partial.rejected_log_records == 2
        assert "native events" in partial.error_message and "1 x trace_id must be 16 bytes" in partial.error_message
    finally:
        http.close()
        grpc_server.close()
        hub.store.shutdown()
