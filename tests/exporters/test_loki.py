"""The Loki exporter at the wire level: a local endpoint decodes exactly what was pushed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cramjam
import msgspec
import pytest

from exporters.loki import LokiExporter, LokiExporterConfig
from exporters.loki.protos import logproto_pb2
from exporters.loki.push import parse_labels
from hubcore.config import NativeEventsConfig
from processors.native_events import NativeEventsProcessor
from tests.exporters._server import RecordingServer, Request
from tests.exporters._util import FAST_RETRY, queue_in
from tests.helpers.events import make_event, now_iso


def events_for(tenant: str, events: list[dict[str, Any]]) -> dict[str, list[Any]]:
    res = NativeEventsProcessor(NativeEventsConfig()).process(
        [msgspec.json.encode(e) for e in events], tenant_id=tenant
    )
    assert not res.rejected
    return res.columns


def decode(req: Request) -> list[tuple[dict[str, str], list[tuple[int, str]]]]:
    """(labels, [(ns, line)]) per stream, for either encoding."""
    if req.headers["content-type"] == "application/x-protobuf":
        push = logproto_pb2.PushRequest.FromString(bytes(cramjam.snappy.decompress_raw(req.body)))
        return [
            (parse_labels(s.labels), [(e.timestamp.seconds * 10**9 + e.timestamp.nanos, e.line) for e in s.entries])
            for s in push.streams
        ]
    body = json.loads(req.body)
    return [(s["stream"], [(int(ts), line) for ts, line in s["values"]]) for s in body["streams"]]


def logql_json(line: str) -> dict[str, Any]:
    """What LogQL's ``| json`` stage extracts: nested keys joined with ``_``."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}_{k}" if prefix else k, v)
        elif not isinstance(value, list):
            out[prefix] = value

    walk("", json.loads(line))
    return out


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_events_and_logs_reach_loki_as_sent(tmp_path: Path, encoding: str) -> None:
    fail = [(429, {"Retry-After": "0"}), (503, {})]
    with RecordingServer(fail=fail) as srv:
        cfg = LokiExporterConfig(
            endpoint=srv.url,
            encoding=encoding,
            flush_interval=0.05,  # type: ignore[arg-type]
            sending_queue=queue_in(tmp_path / "q"),
            retry_on_failure=FAST_RETRY,
        )
        ex = LokiExporter(cfg)
        ex.start()
        late = make_event("security", timestamp=now_iso(-30), payload={"source_ip": "10.9.9.9"})
        early = make_event("security", timestamp=now_iso(-60))
        t1 = events_for("t1", [make_event("cost"), late, early])
        t2 = events_for("t2", [make_event("telemetry", correlation_id="c-1")])
        ex.export("events", t1)
        ex.export("events", t2)
        ex.export(
            "logs",
            {
                "tenant_id": ["t1"],
                "ts": [t1["ts"][0]],
                "observed_ts": [None],
                "service_name": ["chat-api"],
                "severity_number": [17],
                "severity_text": [None],
                "body": ["boom"],
                "trace_id": ["ab" * 16],
                "span_id": ["cd" * 8],
                "attributes": ['{"http.route": "/x"}'],
                "resource": ['{"service.name": "chat-api", "deployment.environment.name": "staging"}'],
            },
        )
        assert ex.flush(10)
        ex.shutdown(5)
    assert len(srv.requests) == len(srv.accepted) + 2  # the 429 and the 503 were retried
    assert {r.headers["x-scope-orgid"] for r in srv.accepted} == {"t1", "t2"}
    by_tenant: dict[str, list[tuple[dict[str, str], list[tuple[int, str]]]]] = {}
    for r in srv.accepted:  # the three exports may take one flush or several
        decoded = decode(r)
        first_ts = [values[0][0] for _labels, values in decoded]
        assert first_ts == sorted(first_ts)  # streams ordered by their first entry
        by_tenant.setdefault(r.headers["x-scope-orgid"], []).extend(decoded)
    streams: dict[tuple[tuple[str, str], ...], list[tuple[int, str]]] = {}
    for labels, values in by_tenant["t1"]:
        streams.setdefault(tuple(sorted(labels.items())), []).extend(values)
    sec = streams[(("environment", "production"), ("event_type", "security"), ("severity", "warning"),
                   ("source_module", "llm-sentinel"), ("tenant_id", "t1"))]  # fmt: skip
    assert [ts for ts, _ in sec] == sorted(ts for ts, _ in sec)  # time order within the stream
    assert [ts for ts, _ in sec] == sorted(
        t * 1000 for t, e in zip(t1["ts"], t1["event_type"], strict=True) if e == "security"
    )
    fields = logql_json(sec[1][1])
    assert fields["payload_threat_type"] == "prompt_injection" and fields["payload_source_ip"] == "10.9.9.9"
    assert fields["tags_team"] == "search" and fields["event_id"] == late["event_id"]
    assert "tenant_id" not in fields and "event_type" not in fields  # stream labels are not repeated
    log_stream = streams[(("environment", "staging"), ("service_name", "chat-api"), ("severity", "error"),
                          ("tenant_id", "t1"))]  # fmt: skip
    line = logql_json(log_stream[0][1])
    assert line["body"] == "boom" and line["trace_id"] == "ab" * 16 and line["attributes_http.route"] == "/x"
    ((labels, values),) = by_tenant["t2"]
    assert labels["event_type"] == "telemetry" and logql_json(values[0][1])["correlation_id"] == "c-1"


def test_permanent_error_is_dead_lettered_with_reason(tmp_path: Path) -> None:
    with RecordingServer(fail=[(400, {})]) as srv:
        cfg = LokiExporterConfig(endpoint=srv.url, flush_interval=0.05, sending_queue=queue_in(tmp_path / "q"))
        ex = LokiExporter(cfg)
        ex.start()
        ex.export("events", events_for("t1", [make_event("cost")]))
        assert ex.flush(10)
        ex.export("events", events_for("t1", [make_event("cost")]))
        assert ex.flush(10)
        ex.shutdown(5)
    dead = ex.dead_letter.entries()
    assert len(dead) == 1 and dead[0]["status"] == 400 and "HTTP 400" in dead[0]["reason"]
    assert dead[0]["exporter"] == "loki" and dead[0]["body_b64"]
    assert dead[0]["records"] == 1
    assert len(srv.requests) == 2 and len(srv.accepted) == 1  # not retried; the next batch goes on
