"""``spans`` rows → OTLP ``ExportTraceServiceRequest`` (grouped by service.name), for Tempo's OTLP/HTTP.

>>> req = spans_request([span_from_row({"trace_id": "ab" * 16, "span_id": "cd" * 8, "name": "chat",
...     "start_ts": 1_000, "end_ts": 3_000, "service_name": "svc", "kind": "CLIENT", "status_code": "ERROR",
...     "model": "gpt-4o", "attributes": '{"x": 1}'})])
>>> rs = req.resource_spans[0]; sp = rs.scope_spans[0].spans[0]
>>> rs.resource.attributes[0].value.string_value, sp.end_time_unix_nano, sp.kind, sp.status.code
('svc', 3000000, 3, 2)
>>> sorted(a.key for a in sp.attributes)
['gen_ai.request.model', 'x']
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

SCOPE_NAME = "llm-analytics-hub"
_KIND = {"UNSPECIFIED": 0, "INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
_STATUS = {"UNSET": 0, "OK": 1, "ERROR": 2}
_INDEXED = (
    ("model", "gen_ai.request.model"),
    ("provider", "gen_ai.provider.name"),
    ("operation", "gen_ai.operation.name"),
    ("error_type", "error.type"),
    ("event_id", "hub.event_id"),
)

#: (service name, resource JSON, span) — the unit a request is split into
SpanRecord = tuple[str, str | None, trace_pb2.Span]


def any_value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(x) for x in v if x is not None)
        return out
    if isinstance(v, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(key_values(v))
        return out
    return AnyValue(string_value=str(v))


def key_values(attrs: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items() if v is not None]


def _json_dict(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def span_from_row(row: Mapping[str, Any]) -> SpanRecord:
    """One ``spans`` row (timestamps in µs, ids in hex) as an OTLP span."""
    attrs = _json_dict(row.get("attributes"))
    for col, key in _INDEXED:
        if row.get(col) and key not in attrs:
            attrs[key] = row[col]
    span = trace_pb2.Span(
        trace_id=bytes.fromhex(row["trace_id"]),
        span_id=bytes.fromhex(row["span_id"]),
        parent_span_id=bytes.fromhex(row["parent_span_id"]) if row.get("parent_span_id") else b"",
        name=row.get("name") or "",
        kind=_KIND.get(str(row.get("kind") or "").upper().removeprefix("SPAN_KIND_"), 0),  # type: ignore[arg-type]
        start_time_unix_nano=int(row["start_ts"]) * 1000,
        end_time_unix_nano=int(row.get("end_ts") or row["start_ts"]) * 1000,
        attributes=key_values(attrs),
        status=trace_pb2.Status(
            code=_STATUS.get(str(row.get("status_code") or "UNSET").upper().removeprefix("STATUS_CODE_"), 0),  # type: ignore[arg-type]
            message=row.get("status_message") or "",
        ),
    )
    if row.get("events"):
        try:
            events = json.loads(row["events"])
        except ValueError:
            events = []
        for e in events if isinstance(events, list) else []:
            if isinstance(e, dict):
                span.events.add(
                    name=str(e.get("name", "")),
                    time_unix_nano=int(e.get("ts") or row["start_ts"]) * 1000,
                    attributes=key_values(e.get("attributes") or {}),
                )
    return row.get("service_name") or "unknown_service", row.get("resource"), span


def spans_request(records: Sequence[SpanRecord]) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    groups: dict[tuple[str, str | None], list[trace_pb2.Span]] = {}
    for service, resource, span in records:
        groups.setdefault((service, resource), []).append(span)
    for (service, resource), spans in groups.items():
        rs = req.resource_spans.add()
        res_attrs = {"service.name": service, **{k: v for k, v in _json_dict(resource).items() if k != "service.name"}}
        rs.resource.attributes.extend(key_values(res_attrs))
        ss = rs.scope_spans.add()
        ss.scope.name = SCOPE_NAME
        ss.spans.extend(spans)
    return req
