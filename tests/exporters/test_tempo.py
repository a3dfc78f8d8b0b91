"""The Tempo exporter at the wire level: the endpoint decodes the OTLP protobuf it was sent."""

from __future__ import annotations

import json
import time
from pathlib import Path

import msgspec
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporters.tempo import TempoExporter, TempoExporterConfig
from hubcore.config import NativeEventsConfig
from processors.native_events import NativeEventsProcessor
from tests.exporters._server import RecordingServer, Request
from tests.exporters._util import FAST_RETRY, queue_in, wait_for
from tests.helpers.events import make_event


def test_spans_and_event_traces_reach_tempo(tmp_path: Path) -> None:
    now_us = int(time.time() * 1e6)
    spans = {
        "tenant_id": ["t1", "t1", "t2"],
        "start_ts": [now_us, now_us + 10, now_us + 20],
        "end_ts": [now_us + 1500, now_us + 900, now_us + 30],
        "trace_id": ["11" * 16, "11" * 16, "22" * 16],
        "span_id": ["a1" * 8, "a2" * 8, "b1" * 8],
        "parent_span_id": [None, "a1" * 8, None],
        "name": ["chat gpt-4o", "retrieve", "embed"],
        "kind": ["CLIENT", "INTERNAL", "SERVER"],
        "status_code": ["ERROR", "UNSET", "OK"],
        "status_message": ["timeout", None, None],
        "service_name": ["chat-api", "chat-api", "rag"],
        "model": ["gpt-4o", None, None],
        "attributes": ['{"gen_ai.usage.input_tokens": 12, "retry": true}', None, None],
        "resource": ['{"service.name": "chat-api", "deployment.environment.name": "prod"}', None, None],
        "events": [json.dumps([{"name": "exception", "ts": now_us + 1400, "attributes": {"exception.type": "Timeout"}}]),
                   None, None],
    }  # fmt: skip
    events = [make_event("telemetry", correlation_id="chain-1"), make_event("security", correlation_id="chain-1")]
    cols = (
        NativeEventsProcessor(NativeEventsConfig())
        .process([msgspec.json.encode(e) for e in events], tenant_id="t1")
        .columns
    )
    with RecordingServer(fail=[(502, {}), (429, {"Retry-After": "0"})]) as srv:
        ex = TempoExporter(
            TempoExporterConfig(
                endpoint=srv.url,
                flush_interval=0.05,
                sending_queue=queue_in(tmp_path / "q"),
                retry_on_failure=FAST_RETRY,
            )
        )
        ex.start()
        ex.export("spans", spans)
        ex.export("events", cols)
        assert ex.flush(10)
        ex.shutdown(5)
    assert len(srv.requests) == len(srv.accepted) + 2
    got: dict[str, list[tuple[str, object]]] = {}
    for req in srv.accepted:
        assert req.path == "/v1/traces" and req.headers["content-type"] == "application/x-protobuf"
        msg = ExportTraceServiceRequest.FromString(req.body)
        for rs in msg.resource_spans:
            res = {a.key: a.value.string_value for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                assert ss.scope.name == "llm-analytics-hub"
                for sp in ss.spans:
                    got.setdefault(req.headers["x-scope-orgid"], []).append((res["service.name"], sp))
    assert sorted(s.name for _svc, s in got["t2"]) == ["embed"]
    t1 = {s.name: (svc, s) for svc, s in got["t1"]}
    svc, chat = t1["chat gpt-4o"]
    assert svc == "chat-api" and chat.trace_id == bytes.fromhex("11" * 16) and chat.kind == 3
    assert (chat.start_time_unix_nano, chat.end_time_unix_nano) == (now_us * 1000, (now_us + 1500) * 1000)
    assert chat.status.code == 2 and chat.status.message == "timeout"
    attrs = {a.key: a.value for a in chat.attributes}
    assert attrs["gen_ai.usage.input_tokens"].int_value == 12 and attrs["retry"].bool_value
    assert attrs["gen_ai.request.model"].string_value == "gpt-4o"
    assert chat.events[0].name == "exception" and chat.events[0].time_unix_nano == (now_us + 1400) * 1000
    assert t1["retrieve"][1].parent_span_id == bytes.fromhex("a1" * 8)
    chain = [s for _svc, s in got["t1"] if s.name.startswith(("telemetry", "security"))]
    assert len(chain) == 2 and chain[0].trace_id == chain[1].trace_id  # one trace per correlation id
    assert {svc for svc, s in got["t1"] if s in chain} == {"llm-observatory", "llm-sentinel"}


def test_a_throttled_tenant_does_not_hold_the_others_back(tmp_path: Path) -> None:
    throttled = {"noisy"}

    def per_tenant(req: Request) -> tuple[int, dict[str, str]] | None:
        return (429, {}) if req.headers.get("x-scope-orgid") in throttled else None

    def spans(tenant: str, n: int) -> dict[str, list[object]]:
        now_us = int(time.time() * 1e6)
        return {
            "tenant_id": [tenant] * n, "start_ts": [now_us + i for i in range(n)], "end_ts": [now_us + 99] * n,
            "trace_id": [f"{abs(hash(tenant)):032x}"[:32]] * n, "span_id": [f"{i + 1:016x}" for i in range(n)],
            "name": [f"{tenant}-{i}" for i in range(n)], "service_name": ["svc"] * n,
        }  # fmt: skip

    with RecordingServer(decide=per_tenant) as srv:
        ex = TempoExporter(
            TempoExporterConfig(
                endpoint=srv.url,
                flush_interval=0.05,
                sending_queue=queue_in(tmp_path / "q"),
                retry_on_failure=FAST_RETRY,
            )
        )
        ex.start()
        ex.export("spans", spans("noisy", 2))
        ex.export("spans", spans("good", 3))
        got = wait_for(lambda: {r.headers["x-scope-orgid"] for r in srv.accepted}, lambda t: "good" in t, timeout=15)
        assert got == {"good"} and ex.spans_sent == 3
        throttled.clear()
        assert ex.flush(15)
        ex.shutdown(5)
    names = sorted(
        sp.name
        for req in srv.accepted
        for rs in ExportTraceServiceRequest.FromString(req.body).resource_spans
        for ss in rs.scope_spans
        for sp in ss.spans
    )
    assert names == ["good-0", "good-1", "good-2", "noisy-0", "noisy-1"] and ex.spans_sent == 5
    assert not ex.dead_letter.entries()
