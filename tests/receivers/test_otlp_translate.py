"""The pure OTLP → rows translators: shapes, conversions, rejections, GenAI indexing, tenancy."""

from __future__ import annotations

import itertools
import json
import math
import time
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import ExponentialHistogramDataPoint

from hubcore.storage.tables import LOGS, METRIC_POINTS, SPANS
from receivers.otlp.translate import exponential_to_explicit, logs_to_rows, metrics_to_rows, traces_to_rows

T = 1_700_000_000_123_456_789


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def metrics_req(resource: dict[str, Any] | None = None) -> tuple[ExportMetricsServiceRequest, Any]:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(kv(k, v) for k, v in (resource or {}).items())
    return req, rm.scope_metrics.add()


def test_columns_match_the_store_tables() -> None:
    for rows, table in (
        (metrics_to_rows(ExportMetricsServiceRequest(), "t")[0], METRIC_POINTS),
        (logs_to_rows(ExportLogsServiceRequest(), "t")[0], LOGS),
        (traces_to_rows(ExportTraceServiceRequest(), "t")[0], SPANS),
    ):
        assert list(rows) == table.names
        assert table.to_arrow(rows).num_rows == 0


def test_sum_gauge_timestamps_and_genai_indexing() -> None:
    req, sm = metrics_req({"service.name": "svc", "deployment.environment": "dev", "team": "res-team",
                           "gen_ai.system": "res-provider"})  # fmt: skip
    m = sm.metrics.add(name="gen_ai.client.token.usage", unit="{token}")
    m.sum.aggregation_temporality = 1
    m.sum.is_monotonic = True
    m.sum.data_points.add(time_unix_nano=T, start_time_unix_nano=T - 1000, as_int=7,
                          attributes=[kv("gen_ai.request.model", "m1"), kv("gen_ai.token.type", "input"),
                                      kv("gen_ai.provider.name", "openai"), kv("team", "pt")])  # fmt: skip
    m.sum.data_points.add(time_unix_nano=T, as_double=2.5, attributes=[kv("other", 1)])
    g = sm.metrics.add(name="g")
    g.gauge.data_points.add(time_unix_nano=T, as_double=-1.0, attributes=[kv("gen_ai.request.model", 5)])
    cols, rejected, msg = metrics_to_rows(req, "t")
    assert (rejected, msg) == (0, None)
    assert cols["ts"] == [T // 1000] * 3 and cols["start_ts"] == [(T - 1000) // 1000, None, None]
    assert cols["kind"] == ["sum", "sum", "gauge"] and cols["temporality"] == ["delta", "delta", ""]
    assert cols["monotonic"] == [True, True, False] and cols["value"] == [7.0, 2.5, -1.0]
    assert cols["model"] == ["m1", None, "5"]  # a non-string value is stored as its JSON text
    assert cols["provider"] == ["openai", "res-provider", "res-provider"]  # resource as fallback
    assert cols["team"] == ["pt", "res-team", "res-team"] and cols["environment"] == ["dev"] * 3
    assert cols["token_type"] == ["input", None, None] and cols["service_name"] == ["svc"] * 3
    assert json.loads(cols["resource"][0])["gen_ai.system"] == "res-provider"
    assert json.loads(cols["attributes"][1]) == {"other": 1} and cols["source"] == ["otlp"] * 3
    assert METRIC_POINTS.to_arrow(cols).num_rows == 3


def test_histogram_and_its_rejections() -> None:
    req, sm = metrics_req()
    h = sm.metrics.add(name="h", unit="s")
    h.histogram.aggregation_temporality = 2
    h.histogram.data_points.add(time_unix_nano=T, count=3, sum=1.5, min=0.1, max=1.0, explicit_bounds=[0.5, 1.0],
                                bucket_counts=[1, 2, 0])  # fmt: skip
    h.histogram.data_points.add(time_unix_nano=T, count=0)  # no buckets, no sum: fine
    h.histogram.data_points.add(time_unix_nano=T, count=1, sum=math.nan, explicit_bounds=[1.0], bucket_counts=[1, 0])
    h.histogram.data_points.add(time_unix_nano=T, count=1, explicit_bounds=[1.0], bucket_counts=[1])
    h.histogram.data_points.add(count=1)
    h.histogram.data_points.add(time_unix_nano=T, count=1, explicit_bounds=[1.0, math.inf], bucket_counts=[0, 1, 0])
    h.histogram.data_points.add(time_unix_nano=T, count=1, explicit_bounds=[1e308, 1.5e308], bucket_counts=[0, 1, 0])
    h.histogram.data_points.add(time_unix_nano=T, count=1, explicit_bounds=[2.0, 1.0], bucket_counts=[0, 1, 0])
    h.histogram.data_points.add(time_unix_nano=T, count=1, explicit_bounds=[1.0, 1.0], bucket_counts=[0, 1, 0])
    cols, rejected, msg = metrics_to_rows(req, "t")
    assert rejected == 6 and msg is not None
    assert "histogram sum is not finite" in msg and "one more entry" in msg and "without a timestamp" in msg
    assert "explicit_bounds must be finite" in msg and "explicit_bounds must be strictly increasing" in msg
    assert cols["bounds"] == [[0.5, 1.0], None, [1e308, 1.5e308]]  # huge but finite bounds are fine
    assert cols["bucket_counts"] == [[1, 2, 0], None, [0, 1, 0]]
    assert cols["count"] == [3, 0, 1] and cols["sum"] == [1.5, None, None] and cols["min"] == [0.1, None, None]
    assert cols["value"] == [None] * 3 and cols["temporality"] == ["cumulative"] * 3


def test_histogram_count_must_match_its_buckets() -> None:
    req, sm = metrics_req()
    h = sm.metrics.add(name="h")
    h.histogram.data_points.add(time_unix_nano=T, count=5, explicit_bounds=[1.0], bucket_counts=[1, 2])
    h.histogram.data_points.add(time_unix_nano=T, count=3, explicit_bounds=[1.0], bucket_counts=[1, 2])
    cols, rejected, msg = metrics_to_rows(req, "t")
    assert rejected == 1 and msg is not None and "count must equal the sum of bucket_counts" in msg
    assert cols["count"] == [3] and cols["bucket_counts"] == [[1, 2]]


@pytest.mark.parametrize(
    ("value", "flags", "reason"),
    [(None, 0, "without a value"), (math.inf, 0, "not finite"), (1.0, 1, "no recorded value")],
)
def test_number_point_rejections(value: float | None, flags: int, reason: str) -> None:
    req, sm = metrics_req()
    m = sm.metrics.add(name="g")
    dp = m.gauge.data_points.add(time_unix_nano=T, flags=flags)
    if value is not None:
        dp.as_double = value
    m.gauge.data_points.add(time_unix_nano=T, as_int=1)
    sm.metrics.add(name="", gauge={"data_points": [{"time_unix_nano": T, "as_int": 1}]})
    cols, rejected, msg = metrics_to_rows(req, "t")
    assert rejected == 2 and cols["value"] == [1.0]
    assert msg is not None and reason in msg and "metric without a name" in msg


def test_exponential_to_explicit_scale_0() -> None:
    ep = ExponentialHistogramDataPoint(scale=0, zero_count=4, positive={"offset": 0, "bucket_counts": [1, 2, 3]},
                                       negative={"offset": 0, "bucket_counts": [5]})  # fmt: skip
    # negative (-2,-1] (most negative first), zero bucket [0, 0], then (1,2], (2,4], (4,8], (8, +inf)
    assert exponential_to_explicit(ep) == ([-1.0, 0.0, 2.0, 4.0, 8.0], [5, 4, 1, 2, 3, 0])


def test_exponential_to_explicit_scales_and_offsets() -> None:
    ep = ExponentialHistogramDataPoint(scale=1, zero_threshold=0.1, zero_count=1,
                                       positive={"offset": -2, "bucket_counts": [1, 0, 2]},
                                       negative={"offset": 1, "bucket_counts": [3, 4]})  # fmt: skip
    bounds, counts = exponential_to_explicit(ep)
    r2 = math.sqrt(2)
    assert bounds == pytest.approx([-(r2**2), -r2, 0.1, r2**-1, 1.0, r2])
    assert counts == [4, 3, 1, 1, 0, 2, 0]
    # negative scale: base 4 (scale -1)
    ep = ExponentialHistogramDataPoint(scale=-1, positive={"offset": 1, "bucket_counts": [2]})
    assert exponential_to_explicit(ep) == ([0.0, 16.0], [0, 2, 0])
    # high scale, many buckets: strictly increasing, counts kept
    ep = ExponentialHistogramDataPoint(scale=20, positive={"offset": 10_000, "bucket_counts": [1] * 160})
    bounds, counts = exponential_to_explicit(ep)
    assert all(a < b for a, b in itertools.pairwise(bounds)) and sum(counts) == 160


def test_exponential_histogram_out_of_range_is_rejected() -> None:
    req, sm = metrics_req()
    m = sm.metrics.add(name="e")
    m.exponential_histogram.data_points.add(time_unix_nano=T, scale=0, count=1,
                                            positive={"offset": 5000, "bucket_counts": [1]})  # fmt: skip
    m.exponential_histogram.data_points.add(time_unix_nano=T, scale=0, count=1, zero_threshold=100.0,
                                            positive={"offset": 0, "bucket_counts": [1]})  # fmt: skip
    m.exponential_histogram.data_points.add(time_unix_nano=T, scale=0, count=1, sum=3.0,
                                            positive={"offset": 1, "bucket_counts": [1]})  # fmt: skip
    cols, rejected, msg = metrics_to_rows(req, "t")
    assert rejected == 2 and cols["bounds"] == [[0.0, 4.0]] and cols["sum"] == [3.0]
    assert msg is not None and "increasing" in msg


def test_summary_rows() -> None:
    req, sm = metrics_req()
    m = sm.metrics.add(name="s")
    m.summary.data_points.add(time_unix_nano=T, count=10, sum=5.0, attributes=[kv("a", "b")],
                              quantile_values=[{"quantile": 0.5, "value": 0.4}, {"quantile": 1.0, "value": 2.0}])  # fmt: skip
    m.summary.data_points.add(time_unix_nano=T, count=1, sum=math.nan)
    cols, rejected, _ = metrics_to_rows(req, "t")
    assert rejected == 1
    assert cols["value"] == [5.0, 0.4, 2.0] and cols["count"] == [10, None, None]
    assert [json.loads(a) for a in cols["attributes"]] == [{"a": "b"}, {"a": "b", "quantile": "0.5"},
                                                           {"a": "b", "quantile": "1.0"}]  # fmt: skip


def test_tenant_from_resource_unless_the_header_named_one() -> None:
    req, sm = metrics_req({"tenant.id": "from-resource"})
    sm.metrics.add(name="g", gauge={"data_points": [{"time_unix_nano": T, "as_int": 1}]})
    assert metrics_to_rows(req, "default")[0]["tenant_id"] == ["from-resource"]
    assert metrics_to_rows(req, "hdr", resource_tenant=False)[0]["tenant_id"] == ["hdr"]
    req2, sm2 = metrics_req({"tenant_id": 42})  # not a string: ignored
    sm2.metrics.add(name="g", gauge={"data_points": [{"time_unix_nano": T, "as_int": 1}]})
    assert metrics_to_rows(req2, "default")[0]["tenant_id"] == ["default"]


def test_logs() -> None:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", "svc"))
    sl = rl.scope_logs.add(scope={"name": "scope"})
    sl.log_records.add(time_unix_nano=T, severity_number=9, body={"string_value": "hi"}, trace_id=b"\x01" * 16,
                       span_id=b"\x02" * 8, attributes=[kv("event.name", "e1")])  # fmt: skip
    sl.log_records.add(observed_time_unix_nano=T + 1000, body={"array_value": {"values": [{"int_value": 1}]}})
    sl.log_records.add(time_unix_nano=T, trace_id=b"\x01" * 3)
    cols, rejected, msg = logs_to_rows(req, "t")
    assert rejected == 1 and msg is not None and "16 bytes" in msg
    assert cols["ts"] == [T // 1000, (T + 1000) // 1000] and cols["observed_ts"] == [T // 1000, (T + 1000) // 1000]
    assert cols["body"] == ["hi", "[1]"] and cols["event_name"] == ["e1", None]
    assert cols["trace_id"] == ["01" * 16, None] and cols["span_id"] == ["02" * 8, None]
    assert cols["scope_name"] == ["scope", "scope"] and cols["severity_number"] == [9, 0]


def test_spans_and_their_rejections() -> None:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("gen_ai.provider.name", "res-prov"))
    ss = rs.scope_spans.add()
    good: dict[str, Any] = {"trace_id": b"\xab" * 16, "span_id": b"\xcd" * 8, "start_time_unix_nano": T,
                            "end_time_unix_nano": T + 3_000_000, "name": "chat", "kind": 3}  # fmt: skip
    ss.spans.add(**good, attributes=[kv("gen_ai.response.model", "m"), kv("error.type", "timeout")],
                 events=[{"name": "ev", "time_unix_nano": T, "attributes": [kv("k", True)]}],
                 status={"code": 2, "message": "bad"})  # fmt: skip
    ss.spans.add(**{**good, "trace_id": b"\0" * 16})
    ss.spans.add(**{**good, "span_id": b"\x01" * 4})
    ss.spans.add(**{**good, "end_time_unix_nano": T - 1})
    ss.spans.add(**{**good, "start_time_unix_nano": 0})
    cols, rejected, msg = traces_to_rows(req, "t")
    assert rejected == 4 and msg is not None and msg.startswith("rejected 4 spans: ")
    assert cols["trace_id"] == ["ab" * 16] and cols["span_id"] == ["cd" * 8] and cols["parent_span_id"] == [None]
    assert cols["kind"] == ["CLIENT"] and cols["status_code"] == ["ERROR"] and cols["status_message"] == ["bad"]
    assert cols["duration_ms"] == [3.0] and cols["model"] == ["m"] and cols["provider"] == ["res-prov"]
    assert cols["error_type"] == ["timeout"] and cols["source"] == ["otlp"]
    assert json.loads(cols["events"][0]) == [{"name": "ev", "ts": T // 1000, "attributes": {"k": True}}]
    assert SPANS.to_arrow(cols).num_rows == 1


def test_attribute_values_of_every_type() -> None:
    req, sm = metrics_req()
    attrs = [
        kv("s", "x"), kv("i", 3), kv("d", 0.5), kv("b", False), kv("empty", ""),
        KeyValue(key="bytes", value=AnyValue(bytes_value=b"hi")),
        KeyValue(key="arr", value=AnyValue(array_value={"values": [{"string_value": "a"}, {"int_value": 2}]})),
        KeyValue(key="map", value=AnyValue(kvlist_value={"values": [kv("k", "v")]})),
        KeyValue(key="unset", value=AnyValue()),
        kv("nan", math.nan),
    ]  # fmt: skip
    sm.metrics.add(name="g", gauge={"data_points": [{"time_unix_nano": T, "as_int": 1, "attributes": attrs}]})
    cols, _, _ = metrics_to_rows(req, "t")
    assert json.loads(cols["attributes"][0]) == {
        "s": "x", "i": 3, "d": 0.5, "b": False, "empty": "", "bytes": "aGk=", "arr": ["a", 2], "map": {"k": "v"},
        "unset": None, "nan": None,
    }  # fmt: skip


def test_counts_beyond_int64_are_rejected_not_stored() -> None:
    big = 2**64 - 1
    req, sm = metrics_req()
    h = sm.metrics.add(name="h")
    h.histogram.data_points.add(time_unix_nano=T, count=big)
    h.histogram.data_points.add(time_unix_nano=T, count=1, explicit_bounds=[1.0], bucket_counts=[big, 0])
    e = sm.metrics.add(name="e")
    e.exponential_histogram.data_points.add(time_unix_nano=T, count=1, zero_count=big)
    sm.metrics.add(name="s").summary.data_points.add(time_unix_nano=T, count=big, sum=1.0)
    cols, rejected, msg = metrics_to_rows(req, "t")
    assert rejected == 4 and cols["name"] == [] and msg is not None and "2**63-1" in msg


def test_histogram_points_breaking_the_data_model_are_rejected() -> None:
    req, sm = metrics_req()
    e = sm.metrics.add(name="e")
    ok = {"time_unix_nano": T, "scale": 0, "count": 3, "zero_count": 1, "positive": {"offset": 0, "bucket_counts": [2]}}
    e.exponential_histogram.data_points.add(**ok)  # stored
    e.exponential_histogram.data_points.add(**{**ok, "zero_threshold": math.nan})
    e.exponential_histogram.data_points.add(**{**ok, "zero_threshold": math.inf})
    e.exponential_histogram.data_points.add(**{**ok, "count": 1000})
    e.exponential_histogram.data_points.add(**{**ok, "scale": 2**31 - 1})
    e.exponential_histogram.data_points.add(**{**ok, "scale": -11})
    e.exponential_histogram.data_points.add(**{**ok, "min": math.nan})
    e.exponential_histogram.data_points.add(**{**ok, "min": 2.0, "max": 1.0})
    h = sm.metrics.add(name="h")
    hok: dict[str, Any] = {"time_unix_nano": T, "count": 1, "explicit_bounds": [1.0], "bucket_counts": [1, 0]}
    h.histogram.data_points.add(**hok, min=0.5, max=0.5)  # stored
    h.histogram.data_points.add(**hok, max=math.inf)
    h.histogram.data_points.add(**hok, min=math.nan, max=1.0)
    h.histogram.data_points.add(**hok, min=3.0, max=1.0)
    cols, rejected, msg = metrics_to_rows(req, "t")
    assert cols["name"] == ["e", "h"] and rejected == 10, msg
    assert msg is not None
    for reason in ("zero_threshold is not finite", "count must equal zero_count plus the bucket counts",
                   "scale outside -10..20", "min or max is not finite", "min is greater than max"):  # fmt: skip
        assert reason in msg, msg
    assert cols["min"] == [None, 0.5] and cols["count"] == [3, 1]


def test_summary_quantiles_outside_zero_to_one_are_rejected() -> None:
    req, sm = metrics_req()
    m = sm.metrics.add(name="s")
    for q in (0.99, 7.0, -0.1, math.nan):
        m.summary.data_points.add(time_unix_nano=T, count=1, sum=1.0, quantile_values=[{"quantile": q, "value": 1.0}])
    cols, rejected, msg = metrics_to_rows(req, "t")
    assert rejected == 3 and msg is not None and "3 x metric 's': summary quantile outside [0, 1]" in msg
    assert [json.loads(a).get("quantile") for a in cols["attributes"]] == [None, "0.99"]


def test_a_non_finite_summary_quantile_is_left_out_and_reported_and_its_point_kept() -> None:
    # a NaN quantile value had been skipped silently. A summary with no observations in its window reports
    # NaN quantiles (Go's client): its count and sum are real data, so the point is kept, the quantile left
    # out and the partial success says so (0 rejected with a message: a warning)
    req, sm = metrics_req()
    m = sm.metrics.add(name="s")
    for v in (0.4, math.nan, math.inf, -math.inf):
        m.summary.data_points.add(time_unix_nano=T, count=3, sum=1.0,
                                  quantile_values=[{"quantile": 0.5, "value": 0.25}, {"quantile": 0.99, "value": v}])  # fmt: skip
    cols, rejected, msg = metrics_to_rows(req, "t")
    assert rejected == 0
    assert msg == ("dropped 3 summary quantiles (their points were stored): "
                   "3 x metric 's': summary quantile value is not finite")  # fmt: skip
    # every point's count/sum row and its finite quantiles; the good point has both quantiles
    assert cols["value"] == [1.0, 0.25, 0.4] + [1.0, 0.25] * 3 and cols["count"] == [3, None, None] + [3, None] * 3
    assert [json.loads(a).get("quantile") for a in cols["attributes"][:3]] == [None, "0.5", "0.99"]


def test_span_events_with_impossible_times_are_dropped_and_reported_but_the_span_is_kept() -> None:
    far = time.time_ns() + 2 * DAY_NS
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    good: dict[str, Any] = {"trace_id": b"\xab" * 16, "span_id": b"\xcd" * 8, "start_time_unix_nano": T,
                            "end_time_unix_nano": T + 3_000_000, "name": "chat"}  # fmt: skip
    ss.spans.add(**good, events=[
        {"name": "ok", "time_unix_nano": T + 1000},
        {"name": "ms", "time_unix_nano": 1_700_000_000_000},
        {"name": "future", "time_unix_nano": far},
        {"name": "unset"},
    ])  # fmt: skip
    ss.spans.add(**{**good, "span_id": b"\xce" * 8}, events=[{"name": "only-bad", "time_unix_nano": 2**64 - 1}])
    ss.spans.add(**{**good, "span_id": b"\xcf" * 8, "start_time_unix_nano": 0},
                 events=[{"name": "of-a-rejected-span", "time_unix_nano": 1}])  # fmt: skip
    cols, rejected, msg = traces_to_rows(req, "t")
    assert cols["span_id"] == ["cd" * 8, "ce" * 8] and rejected == 1  # only the span without a start
    assert json.loads(cols["events"][0]) == [{"name": "ok", "ts": (T + 1000) // 1000, "attributes": {}}]
    assert cols["events"][1] is None  # every event dropped
    assert msg is not None and msg.startswith("rejected 1 spans: 1 x span without start or end time; "), msg
    assert "dropped 4 span events (their spans were stored): " in msg, msg
    for reason in ("2 x span event time_unix_nano is more than a day in the future",
                   "1 x span event time_unix_nano is before 2000-01-01", "1 x span event without a time_unix_nano"):  # fmt: skip
        assert reason in msg, msg
    # only dropped events: nothing rejected, but the message (an OTLP partial-success warning) says what
    req2 = ExportTraceServiceRequest()
    req2.resource_spans.add().scope_spans.add().spans.add(**good, events=[{"name": "ms", "time_unix_nano": 5}])
    cols, rejected, msg = traces_to_rows(req2, "t")
    assert (len(cols["span_id"]), rejected) == (1, 0)
    assert msg == (
        "dropped 1 span events (their spans were stored): 1 x span event time_unix_nano is before "
        "2000-01-01 (nanoseconds since the epoch are expected)"
    )


DAY_NS = 86_400 * 10**9


@pytest.mark.parametrize(
    ("t", "st", "reason"),
    [
        (1_700_000_000_000, 0, "before 2000-01-01"),  # ms, not ns
        (1_700_000_000, 0, "before 2000-01-01"),  # s
        (2**64 - 1, 0, "more than a day in the future"),
        (None, 0, "more than a day in the future"),  # now + 2 days
        (T, T + 1, "start_time_unix_nano is after time_unix_nano"),
    ],
    ids=["ms", "s", "max-uint64", "two-days-ahead", "start-after-time"],
)
def test_data_points_with_impossible_times_are_rejected(t: int | None, st: int, reason: str) -> None:
    t = t if t is not None else time.time_ns() + 2 * DAY_NS
    req, sm = metrics_req()
    sm.metrics.add(name="g").gauge.data_points.add(time_unix_nano=t, start_time_unix_nano=st, as_int=1)
    sm.metrics.add(name="c").sum.data_points.add(time_unix_nano=t, start_time_unix_nano=st, as_int=1)
    sm.metrics.add(name="h").histogram.data_points.add(time_unix_nano=t, start_time_unix_nano=st, count=0)
    sm.metrics.add(name="e").exponential_histogram.data_points.add(time_unix_nano=t, start_time_unix_nano=st)
    sm.metrics.add(name="s").summary.data_points.add(time_unix_nano=t, start_time_unix_nano=st, sum=1.0)
    cols, rejected, msg = metrics_to_rows(req, "t")
    assert rejected == 5 and cols["name"] == [] and msg is not None and reason in msg, msg
    # an hour ahead (a skewed clock) and a start equal to the time are fine
    soon = time.time_ns() + 3600 * 10**9
    req, sm = metrics_req()
    sm.metrics.add(name="g").gauge.data_points.add(time_unix_nano=soon, start_time_unix_nano=soon, as_int=1)
    assert metrics_to_rows(req, "t")[1] == 0


def test_log_records_and_spans_with_impossible_times_are_rejected() -> None:
    far = time.time_ns() + 2 * DAY_NS
    req = ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    sl.log_records.add(time_unix_nano=0, body={"string_value": "unset time: the time of receipt"})
    sl.log_records.add(time_unix_nano=0, observed_time_unix_nano=T, body={"string_value": "observed"})
    sl.log_records.add(time_unix_nano=1_700_000_000_000, body={"string_value": "ms"})
    sl.log_records.add(time_unix_nano=far, body={"string_value": "future"})
    sl.log_records.add(time_unix_nano=T, observed_time_unix_nano=1, body={"string_value": "bad observed"})
    cols, rejected, msg = logs_to_rows(req, "t")
    assert cols["body"] == ["unset time: the time of receipt", "observed"] and rejected == 3
    assert msg is not None and "time_unix_nano is before 2000-01-01" in msg and "in the future" in msg
    assert "observed_time_unix_nano is before 2000-01-01" in msg

    req2 = ExportTraceServiceRequest()
    ss = req2.resource_spans.add().scope_spans.add()
    good: dict[str, Any] = {"trace_id": b"\xab" * 16, "span_id": b"\xcd" * 8, "start_time_unix_nano": T,
                            "end_time_unix_nano": T + 3_000_000, "name": "chat"}  # fmt: skip
    ss.spans.add(**good)
    ss.spans.add(**{**good, "start_time_unix_nano": 1, "end_time_unix_nano": 2**64 - 1})
    ss.spans.add(**{**good, "end_time_unix_nano": far})
    ss.spans.add(**{**good, "start_time_unix_nano": 1_700_000_000_000_000})  # µs
    cols, rejected, msg = traces_to_rows(req2, "t")
    assert cols["name"] == ["chat"] and rejected == 3 and msg is not None
    assert "2 x start_time_unix_nano is before 2000-01-01" in msg and "1 x end_time_unix_nano is more than a day" in msg
