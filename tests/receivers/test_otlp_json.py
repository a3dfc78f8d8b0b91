"""OTLP/JSON decoding: the same messages as protobuf's json_format, hex ids, leniency and strictness."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.exporter.otlp.proto.common._internal._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hubcore.errors import PermanentError
from receivers.otlp.json_codec import decode_json, encode_json
from tests.receivers.test_otlp_support import sdk_logs, sdk_metrics, sdk_spans

ID_KEYS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


def otlp_json(message: Message, *, camel: bool = True) -> bytes:
    """protobuf's JSON mapping with the ids rewritten as hex: OTLP/JSON."""
    tree = json_format.MessageToDict(message, preserving_proto_field_name=not camel)

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ID_KEYS and isinstance(v, str):
                    node[k] = base64.b64decode(v).hex()
                else:
                    fix(v)
        elif isinstance(node, list):
            for x in node:
                fix(x)

    fix(tree)
    return json.dumps(tree).encode()


@pytest.mark.parametrize("camel", [True, False], ids=["lowerCamelCase", "proto-names"])
def test_sdk_requests_round_trip(camel: bool) -> None:
    for message in (encode_metrics(sdk_metrics()), encode_spans(sdk_spans()), encode_logs(sdk_logs())):
        assert decode_json(type(message), otlp_json(message, camel=camel)) == message


def span_json(**span: Any) -> bytes:
    base = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "s"}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{**base, **span}]}]}]}).encode()


def the_span(body: bytes) -> Any:
    return decode_json(ExportTraceServiceRequest, body).resource_spans[0].scope_spans[0].spans[0]


def test_lenient_where_the_spec_is() -> None:
    s = the_span(span_json(kind="SPAN_KIND_SERVER", startTimeUnixNano=12, endTimeUnixNano="13", status=None,
                           futureField={"x": 1}, droppedEventsCount=2))  # fmt: skip
    assert (s.kind, s.start_time_unix_nano, s.end_time_unix_nano, s.dropped_events_count) == (2, 12, 13, 2)
    assert the_span(span_json(kind="SPAN_KIND_FROM_THE_FUTURE")).kind == 0  # unknown enum name ignored
    b64 = base64.b64encode(bytes.fromhex("5b8efff798038103d269b633813fc60c")).decode()
    assert the_span(span_json(traceId=b64)).trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    body = json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "g", "gauge": {"dataPoints": [
        {"asDouble": "NaN"}, {"asDouble": "-Infinity"}, {"asDouble": "2.5"}, {"asInt": 7}]}}]}]}]})  # fmt: skip
    points = decode_json(ExportMetricsServiceRequest, body.encode()).resource_metrics[0].scope_metrics[0]
    values = [p.as_double or p.as_int for p in points.metrics[0].gauge.data_points]
    assert math.isnan(values[0]) and values[1:] == [-math.inf, 2.5, 7]


@pytest.mark.parametrize(
    "body",
    [
        span_json(startTimeUnixNano="soon"),
        span_json(startTimeUnixNano=-1),
        span_json(startTimeUnixNano=1.5),
        span_json(name=5),
        span_json(kind=[3]),
        span_json(attributes={"key": "x"}),
        span_json(attributes=["x"]),
        span_json(traceId="not base64!"),
        span_json(status="ok"),
        json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"arrayValue": {"values": [
            {"arrayValue": {"values": []}}]}}}]}]}]}).replace("[]", "[" + '{"arrayValue": {"values": [' * 80 + "]}}" * 80
        + "]").encode(),  # too deep
    ],
    ids=["int64-text", "negative-uint", "float-for-int", "int-for-string", "list-for-enum", "object-for-array",
         "string-in-message-array", "bad-id", "string-for-message", "too-deep"],
)  # fmt: skip
def test_strict_about_types(body: bytes) -> None:
    message_type = ExportLogsServiceRequest if body.startswith(b'{"resourceLogs"') else ExportTraceServiceRequest
    with pytest.raises(PermanentError) as info:
        decode_json(message_type, body)  # type: ignore[type-var]
    assert info.value.reason == "malformed"


@pytest.mark.parametrize("value", [True, False], ids=["true", "false"])
def test_a_boolean_for_a_double_is_refused(value: bool) -> None:
    """Like every other wrong JSON type: upb alone would store ``"asDouble": true`` as 1.0."""
    body = json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "g", "gauge": {"dataPoints": [
        {"timeUnixNano": "1700000000000000000", "asDouble": value}]}}]}]}]}).encode()  # fmt: skip
    with pytest.raises(PermanentError, match="as_double must be a number, got a boolean") as info:
        decode_json(ExportMetricsServiceRequest, body)
    assert info.value.reason == "malformed"
    with pytest.raises(PermanentError, match="must be a number"):
        attribute = {"key": "k", "value": {"doubleValue": True}}
        decode_json(ExportTraceServiceRequest, span_json(events=[{"attributes": [attribute]}]))


def test_encode_json_is_lower_camel_case_with_string_int64() -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    resp = ExportLogsServiceResponse()
    resp.partial_success.rejected_log_records = 3
    assert json.loads(encode_json(resp)) == {"partialSuccess": {"rejectedLogRecords": "3"}}
