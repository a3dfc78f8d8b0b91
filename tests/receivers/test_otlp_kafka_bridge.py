"""Native events from Kafka arrive through the Collector as OTLP log records marked
``hub.native_event = true``; the hub routes their bodies to the native pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from tests.helpers.events import make_event
from tests.helpers.hub import running_hub


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
