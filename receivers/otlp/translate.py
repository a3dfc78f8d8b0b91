"""Decoded OTLP export requests → column dicts for the embedded store (pure functions, the hot path).

Each function returns ``(columns, rejected, error_message)``: ``columns`` maps every column of
:data:`hubcore.storage.tables.METRIC_POINTS` / ``LOGS`` / ``SPANS`` to a list (timestamps in integer
microseconds, JSON columns as JSON text), ``rejected`` counts the data points / log records / spans that
were refused and ``error_message`` says why (OTLP partial success), or is None when nothing was refused or
left out (span events dropped from spans that are stored give a message with ``rejected`` 0: a warning,
as OTLP's partial success allows).

    >>> from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    >>> req = ExportMetricsServiceRequest()
    >>> m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="gen_ai.client.token.usage")
    >>> _ = m.gauge.data_points.add(time_unix_nano=1_700_000_000_000_000_000, as_int=42)
    >>> _ = m.gauge.data_points.add(as_int=1)  # no timestamp: rejected
    >>> cols, rejected, msg = metrics_to_rows(req, "t1")
    >>> cols["ts"], cols["value"], cols["kind"], rejected, msg
    ([1700000000000000], [42.0], ['gauge'], 1, "rejected 1 data points: 1 x metric 'gen_ai.client.token.usage': data point without a timestamp")

Rows carry ``source='otlp'``, the tenant (``tenant_id`` unless ``resource_tenant`` and the resource has a
``tenant_id``/``tenant.id`` attribute), ``service_name`` from ``service.name``, every resource attribute
in ``resource``, and the indexed GenAI columns (see :data:`receivers.otlp._values.INDEXED_ATTRIBUTES`),
point attributes first, resource attributes as fallback.

Metric kinds: ``gauge``, ``sum`` (``temporality`` delta/cumulative, ``monotonic``), ``histogram``
(explicit ``bounds`` + ``bucket_counts``, ``count``/``sum``/``min``/``max``; ``value`` is null),
exponential histograms as ``histogram`` rows (see :func:`exponential_to_explicit`), and ``summary``: one
row with ``value = sum`` plus ``count``/``sum``, and one row per quantile with ``value`` = the quantile's
value and attribute ``quantile`` (``"0.99"``), as Prometheus exposes summaries. Exemplars and span links
are not stored.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Any

import msgspec
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import ExponentialHistogramDataPoint

from hubcore.storage.tables import LOGS, METRIC_POINTS, SPANS
from receivers.otlp._values import (
    Rejections,
    any_value,
    attributes_dict,
    indexed,
    resource_info,
    to_json,
)

__all__ = [
    "GENAI_METRIC_NAMES",
    "Rows",
    "exponential_to_explicit",
    "logs_to_rows",
    "metrics_to_rows",
    "traces_to_rows",
]

#: ``(columns, rejected, error_message)``
Rows = tuple[dict[str, list[Any]], int, str | None]

#: GenAI semantic-convention metrics (names are kept as sent; this set is for documentation and callers).
GENAI_METRIC_NAMES = frozenset(
    {
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "gen_ai.server.request.duration",
        "gen_ai.server.time_to_first_token",
        "gen_ai.server.time_per_output_token",
    }
)

_TEMPORALITY = {0: "", 1: "delta", 2: "cumulative"}
_SPAN_KIND = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
_NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_I64_MAX = 2**63 - 1  # counts are uint64 in OTLP, BIGINT in the store: larger ones would poison a batch
_MIN_TIME_NS = 946_684_800_000_000_000  # 2000-01-01T00:00:00Z: earlier is a unit mistake (ms or s, not ns)
_MAX_AHEAD_NS = 86_400_000_000_000  # a day: later is a broken clock (or 2**64-1)
_MIN_SCALE, _MAX_SCALE = -10, 20  # exponential histogram scales allowed by the OTLP data model
_isfinite = math.isfinite
_encode = msgspec.json.Encoder().encode  # hot loops inline attributes_dict() and to_json()


def _time_reason(t: int, field: str = "time_unix_nano") -> str:
    """Why the timestamp ``t`` (ns, non-zero, before 2000 or more than a day ahead) is refused."""
    if t < _MIN_TIME_NS:
        return f"{field} is before 2000-01-01 (nanoseconds since the epoch are expected)"
    return f"{field} is more than a day in the future"


def _point_time_reason(t: int, st: int, latest: int) -> str | None:
    """Why a data point's ``time_unix_nano`` / ``start_time_unix_nano`` (ns, 0 = unset) are refused."""
    if t < _MIN_TIME_NS or t > latest:
        return _time_reason(t)
    if st > t:
        return "start_time_unix_nano is after time_unix_nano"
    return None


def _min_max_reason(p: Any) -> str | None:
    """Why a histogram point's ``min``/``max`` are refused (both optional)."""
    lo = p.min if p.HasField("min") else None
    hi = p.max if p.HasField("max") else None
    if (lo is not None and not _isfinite(lo)) or (hi is not None and not _isfinite(hi)):
        return "histogram min or max is not finite"
    if lo is not None and hi is not None and lo > hi:
        return "histogram min is greater than max"
    return None


def _columns(names: list[str], rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    if not rows:
        return {n: [] for n in names}
    return {n: list(col) for n, col in zip(names, zip(*rows, strict=True), strict=True)}


# -- metrics --------------------------------------------------------------------------------------------
_METRIC_NAMES = METRIC_POINTS.names


def metrics_to_rows(req: ExportMetricsServiceRequest, tenant_id: str, *, resource_tenant: bool = True) -> Rows:
    """Rows of ``metric_points``; rejected counts data points (OTLP ``rejected_data_points``)."""
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    rej = Rejections()
    dropped = Rejections()  # NaN summary quantiles left out of points that are stored
    latest = time.time_ns() + _MAX_AHEAD_NS
    for rm in req.resource_metrics:
        tenant, service, res_json, defaults = resource_info(rm.resource, tenant_id, resource_tenant)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                name, unit = m.name, m.unit
                data = m.WhichOneof("data")
                if data is None:
                    continue
                if not name:
                    rej.add("metric without a name", _point_count(m, data))
                    continue
                if data == "gauge" or data == "sum":
                    if data == "sum":
                        temporality = _TEMPORALITY.get(m.sum.aggregation_temporality, "")
                        monotonic = m.sum.is_monotonic
                        points = m.sum.data_points
                    else:
                        temporality, monotonic, points = "", False, m.gauge.data_points
                    for dp in points:
                        t = dp.time_unix_nano
                        which = dp.WhichOneof("value")
                        if which == "as_double":
                            value = dp.as_double
                            if not _isfinite(value):
                                rej.add(f"metric {name!r}: value is not finite")
                                continue
                        elif which == "as_int":
                            value = float(dp.as_int)
                        else:
                            rej.add(f"metric {name!r}: data point without a value")
                            continue
                        if not t:
                            rej.add(f"metric {name!r}: data point without a timestamp")
                            continue
                        if dp.flags & _NO_RECORDED_VALUE:
                            rej.add(f"metric {name!r}: data point flagged 'no recorded value'")
                            continue
                        st = dp.start_time_unix_nano
                        if t < _MIN_TIME_NS or t > latest or st > t:
                            rej.add(f"metric {name!r}: {_point_time_reason(t, st, latest)}")
                            continue
                        a = {kv.key: kv.value.string_value or any_value(kv.value) for kv in dp.attributes}
                        append((
                            tenant, t // 1000, st // 1000 if st else None, name, data, temporality, monotonic,
                            value, None, None, None, None, None, None, unit, service,
                            *indexed(a, defaults), _encode(a).decode(), res_json, "otlp",
                        ))  # fmt: skip
                elif data == "histogram":
                    temporality = _TEMPORALITY.get(m.histogram.aggregation_temporality, "")
                    for hp in m.histogram.data_points:
                        t = hp.time_unix_nano
                        bounds = list(hp.explicit_bounds)
                        counts = list(hp.bucket_counts)
                        s = hp.sum if hp.HasField("sum") else None
                        reason = None
                        st = hp.start_time_unix_nano
                        if not t:
                            reason = "data point without a timestamp"
                        elif t < _MIN_TIME_NS or t > latest or st > t:
                            reason = _point_time_reason(t, st, latest)
                        elif hp.flags & _NO_RECORDED_VALUE:
                            reason = "data point flagged 'no recorded value'"
                        elif (hp.HasField("min") or hp.HasField("max")) and (mm := _min_max_reason(hp)):
                            reason = mm
                        elif counts and len(counts) != len(bounds) + 1:
                            reason = "bucket_counts must have one more entry than explicit_bounds"
                        elif s is not None and not _isfinite(s):
                            reason = "histogram sum is not finite"
                        elif not _isfinite(sum(bounds)) and not all(map(_isfinite, bounds)):
                            reason = "explicit_bounds must be finite"
                        elif any(b >= c for b, c in itertools.pairwise(bounds)):
                            reason = "explicit_bounds must be strictly increasing"
                        elif hp.count > _I64_MAX or (counts and max(counts) > _I64_MAX):
                            reason = "count above 2**63-1"
                        elif counts and sum(counts) != hp.count:
                            reason = "count must equal the sum of bucket_counts"
                        if reason is not None:
                            rej.add(f"metric {name!r}: {reason}")
                            continue
                        a = {kv.key: kv.value.string_value or any_value(kv.value) for kv in hp.attributes}
                        append((
                            tenant, t // 1000, st // 1000 if st else None, name, "histogram", temporality, False,
                            None, hp.count, s, hp.min if hp.HasField("min") else None,
                            hp.max if hp.HasField("max") else None, bounds or None, counts or None, unit, service,
                            *indexed(a, defaults), _encode(a).decode(), res_json, "otlp",
                        ))  # fmt: skip
                elif data == "exponential_histogram":
                    temporality = _TEMPORALITY.get(m.exponential_histogram.aggregation_temporality, "")
                    for ep in m.exponential_histogram.data_points:
                        t = ep.time_unix_nano
                        s = ep.sum if ep.HasField("sum") else None
                        st = ep.start_time_unix_nano
                        if not t:
                            rej.add(f"metric {name!r}: data point without a timestamp")
                            continue
                        if t < _MIN_TIME_NS or t > latest or st > t:
                            rej.add(f"metric {name!r}: {_point_time_reason(t, st, latest)}")
                            continue
                        if ep.flags & _NO_RECORDED_VALUE:
                            rej.add(f"metric {name!r}: data point flagged 'no recorded value'")
                            continue
                        if s is not None and not _isfinite(s):
                            rej.add(f"metric {name!r}: histogram sum is not finite")
                            continue
                        if not _isfinite(ep.zero_threshold):
                            rej.add(f"metric {name!r}: exponential histogram zero_threshold is not finite")
                            continue
                        if not _MIN_SCALE <= ep.scale <= _MAX_SCALE:
                            rej.add(f"metric {name!r}: exponential histogram scale outside {_MIN_SCALE}..{_MAX_SCALE}")
                            continue
                        if (ep.HasField("min") or ep.HasField("max")) and (mm := _min_max_reason(ep)):
                            rej.add(f"metric {name!r}: {mm}")
                            continue
                        try:
                            bounds, counts = exponential_to_explicit(ep)
                        except (OverflowError, ValueError) as exc:
                            rej.add(f"metric {name!r}: {exc}")
                            continue
                        if ep.count > _I64_MAX or max(counts) > _I64_MAX:
                            rej.add(f"metric {name!r}: count above 2**63-1")
                            continue
                        if sum(counts) != ep.count:  # zero_count + positive + negative bucket counts
                            rej.add(f"metric {name!r}: count must equal zero_count plus the bucket counts")
                            continue
                        a = attributes_dict(ep.attributes)
                        append((
                            tenant, t // 1000, st // 1000 if st else None, name, "histogram", temporality, False,
                            None, ep.count, s, ep.min if ep.HasField("min") else None,
                            ep.max if ep.HasField("max") else None, bounds, counts, unit, service,
                            *indexed(a, defaults), to_json(a), res_json, "otlp",
                        ))  # fmt: skip
                elif data == "summary":
                    for qp in m.summary.data_points:
                        t = qp.time_unix_nano
                        s = qp.sum
                        st = qp.start_time_unix_nano
                        if not t:
                            rej.add(f"metric {name!r}: data point without a timestamp")
                            continue
                        if t < _MIN_TIME_NS or t > latest or st > t:
                            rej.add(f"metric {name!r}: {_point_time_reason(t, st, latest)}")
                            continue
                        if qp.flags & _NO_RECORDED_VALUE:
                            rej.add(f"metric {name!r}: data point flagged 'no recorded value'")
                            continue
                        if not _isfinite(s):
                            rej.add(f"metric {name!r}: summary sum is not finite")
                            continue
                        if qp.count > _I64_MAX:
                            rej.add(f"metric {name!r}: count above 2**63-1")
                            continue
                        if not all(0.0 <= q.quantile <= 1.0 for q in qp.quantile_values):
                            rej.add(f"metric {name!r}: summary quantile outside [0, 1]")
                            continue
                        a = attributes_dict(qp.attributes)
                        idx = indexed(a, defaults)
                        ts, sts = t // 1000, (st // 1000 if st else None)
                        append((
                            tenant, ts, sts, name, "summary", "", False, s, qp.count, s, None, None, None, None,
                            unit, service, *idx, to_json(a), res_json, "otlp",
                        ))  # fmt: skip
                        for q in qp.quantile_values:
                            if not _isfinite(q.value):
                                # a summary with no observations in its window reports NaN quantiles (Go's
                                # client, the Collector's prometheus receiver): its count and sum are kept,
                                # the quantile is left out and reported as a warning
                                dropped.add(f"metric {name!r}: summary quantile value is not finite")
                                continue
                            qa = dict(a)
                            qa["quantile"] = repr(q.quantile)
                            append((
                                tenant, ts, sts, name, "summary", "", False, q.value, None, None, None, None,
                                None, None, unit, service, *idx, to_json(qa), res_json, "otlp",
                            ))  # fmt: skip
    message = "; ".join(
        m for m in (rej.message("data points"), dropped.message("summary quantiles (their points were stored)",
                                                                 verb="dropped")) if m
    )  # fmt: skip
    return _columns(_METRIC_NAMES, rows), rej.count, message or None


def _point_count(m: Any, data: str) -> int:
    return len(getattr(m, data).data_points)


def exponential_to_explicit(ep: ExponentialHistogramDataPoint) -> tuple[list[float], list[int]]:
    """Explicit ``(bounds, bucket_counts)`` with the same counts as an exponential histogram point.

    ``base = 2 ** (2 ** -scale)``; positive bucket ``offset + i`` holds ``(base**(offset+i),
    base**(offset+i+1)]``, so its upper bound is ``base**(offset+i+1)``. Negative bucket ``offset + j``
    holds ``[-base**(offset+j+1), -base**(offset+j))`` and becomes the explicit bucket with upper bound
    ``-base**(offset+j)`` (most negative first; the first explicit bucket is open below). The zero
    bucket (``|x| <= zero_threshold``) becomes the bucket with upper bound ``zero_threshold``. A last
    bucket ``(largest bound, +inf)`` with count 0 closes the list, so ``len(counts) == len(bounds) + 1``
    as for any OTLP explicit histogram. Bucket edges are exact only up to floating point; counts are
    never moved between buckets. Raises OverflowError/ValueError for indexes out of float range or
    bounds that are not increasing (a zero threshold above the first positive bound).
    """
    try:
        return _exponential_to_explicit(ep)
    except OverflowError:
        raise OverflowError("exponential histogram bucket index out of float range") from None


def _exponential_to_explicit(ep: ExponentialHistogramDataPoint) -> tuple[list[float], list[int]]:
    exp = 2.0**-ep.scale
    bounds: list[float] = []
    counts: list[int] = []
    neg = ep.negative
    neg_counts = list(neg.bucket_counts)
    if neg_counts:
        off = neg.offset
        for j in range(len(neg_counts) - 1, -1, -1):
            bounds.append(-(2.0 ** ((off + j) * exp)))
            counts.append(neg_counts[j])
    bounds.append(ep.zero_threshold)
    counts.append(ep.zero_count)
    pos = ep.positive
    pos_counts = list(pos.bucket_counts)
    if pos_counts:
        off = pos.offset
        bounds.extend(2.0 ** ((off + i + 1) * exp) for i in range(len(pos_counts)))
        counts.extend(pos_counts)
    counts.append(0)
    if any(b >= c for b, c in itertools.pairwise(bounds)):
        raise ValueError("exponential histogram buckets do not give increasing bounds")
    if not all(_isfinite(b) for b in (bounds[0], bounds[-1])):
        raise OverflowError("exponential histogram bucket index out of range")
    return bounds, counts


# -- logs -----------------------------------------------------------------------------------------------
_LOG_NAMES = LOGS.names


def logs_to_rows(req: ExportLogsServiceRequest, tenant_id: str, *, resource_tenant: bool = True) -> Rows:
    """Rows of ``logs``. ``ts`` is the record's time, else its observed time, else the time of receipt.

    A string body is stored as is, any other body as JSON text. Records with a trace/span id of the wrong
    length are rejected (``rejected_log_records``).
    """
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    rej = Rejections()
    now_ns = time.time_ns()
    latest = now_ns + _MAX_AHEAD_NS
    for rl in req.resource_logs:
        tenant, service, res_json, _defaults = resource_info(rl.resource, tenant_id, resource_tenant)
        for sl in rl.scope_logs:
            scope = sl.scope.name or None
            for lr in sl.log_records:
                tid, sid = lr.trace_id, lr.span_id
                if (tid and len(tid) != 16) or (sid and len(sid) != 8):
                    rej.add("trace_id must be 16 bytes and span_id 8 bytes")
                    continue
                t = lr.time_unix_nano  # 0: unset (then the observed time, else the time of receipt)
                obs = lr.observed_time_unix_nano
                if t and (t < _MIN_TIME_NS or t > latest):
                    rej.add(_time_reason(t))
                    continue
                if obs and (obs < _MIN_TIME_NS or obs > latest):
                    rej.add(_time_reason(obs, "observed_time_unix_nano"))
                    continue
                ts = (t or obs or now_ns) // 1000
                which = lr.body.WhichOneof("value") if lr.HasField("body") else None
                if which == "string_value":
                    body: str | None = lr.body.string_value
                elif which is None:
                    body = None
                else:
                    body = to_json(any_value(lr.body))
                a = attributes_dict(lr.attributes)
                event_name = lr.event_name or a.get("event.name")
                append((
                    tenant, ts, (obs or t or now_ns) // 1000, service, lr.severity_number,
                    lr.severity_text or None, body, event_name if type(event_name) is str else None,
                    tid.hex() if tid else None, sid.hex() if sid else None, scope, to_json(a), res_json,
                ))  # fmt: skip
    return _columns(_LOG_NAMES, rows), rej.count, rej.message("log records")


# -- traces ---------------------------------------------------------------------------------------------
_SPAN_NAMES = SPANS.names


def traces_to_rows(req: ExportTraceServiceRequest, tenant_id: str, *, resource_tenant: bool = True) -> Rows:
    """Rows of ``spans``; ids as lowercase hex, ``kind``/``status_code`` as upper-case names.

    Spans without a 16-byte trace id and 8-byte span id, without start/end time or ending before they
    start are rejected (``rejected_spans``). Span events go to the ``events`` JSON column
    (``[{"name", "ts" (µs), "attributes"}]``); an event whose time is unset or outside the bounds of every
    OTLP time (2000-01-01 .. now + 1 day) is left out and its span stored: it is not a rejected span, so
    ``rejected`` does not count it, but ``error_message`` says so (``dropped 1 span events ...``; OTLP's
    partial success with a zero count and a message is a warning).
    """
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    rej = Rejections()
    dropped = Rejections()  # span events left out of spans that are stored
    latest = time.time_ns() + _MAX_AHEAD_NS
    for rs in req.resource_spans:
        tenant, service, res_json, defaults = resource_info(rs.resource, tenant_id, resource_tenant)
        for ss in rs.scope_spans:
            for sp in ss.spans:
                tid, sid, pid = sp.trace_id, sp.span_id, sp.parent_span_id
                start, end = sp.start_time_unix_nano, sp.end_time_unix_nano
                if len(tid) != 16 or len(sid) != 8 or (pid and len(pid) != 8):
                    rej.add("trace_id must be 16 bytes, span_id and parent_span_id 8 bytes")
                    continue
                if not tid.strip(b"\0") or not sid.strip(b"\0"):
                    rej.add("trace_id and span_id must not be all zeros")
                    continue
                if not start or not end:
                    rej.add("span without start or end time")
                    continue
                if end < start:
                    rej.add("span ends before it starts")
                    continue
                if start < _MIN_TIME_NS or end > latest:
                    bad = ("start_time_unix_nano", start) if start < _MIN_TIME_NS else ("end_time_unix_nano", end)
                    rej.add(_time_reason(bad[1], bad[0]))
                    continue
                a = attributes_dict(sp.attributes)
                model, provider, operation, _tt, error_type, *_rest = indexed(a, defaults)
                events = _span_events(sp.events, latest, dropped) if sp.events else None
                append((
                    tenant, start // 1000, end // 1000, tid.hex(), sid.hex(), pid.hex() if pid else None,
                    sp.name, _SPAN_KIND.get(sp.kind, "UNSPECIFIED"), (end - start) / 1e6,
                    _STATUS.get(sp.status.code, "UNSET"), sp.status.message or None, service,
                    model, provider, operation, error_type, None, to_json(a), res_json, events, "otlp",
                ))  # fmt: skip
    message = "; ".join(
        m for m in (rej.message("spans"), dropped.message("span events (their spans were stored)", verb="dropped")) if m
    )
    return _columns(_SPAN_NAMES, rows), rej.count, message or None


def _span_events(events: Any, latest: int, dropped: Rejections) -> str | None:
    """The ``events`` JSON of a span; an event whose time is unset, before 2000 or more than a day ahead
    is left out and counted in ``dropped`` (the span itself is kept: the event is an annotation of it)."""
    kept = []
    for e in events:
        t = e.time_unix_nano
        if not t:
            dropped.add("span event without a time_unix_nano")
            continue
        if t < _MIN_TIME_NS or t > latest:
            dropped.add(f"span event {_time_reason(t)}")
            continue
        kept.append({"name": e.name, "ts": t // 1000, "attributes": attributes_dict(e.attributes)})
    return to_json(kept) if kept else None
