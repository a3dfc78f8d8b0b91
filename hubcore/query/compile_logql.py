"""Compile a :class:`~hubcore.query.model.Query` to LogQL over the raw native events in Loki.

Streams carry ``tenant_id, source_module, event_type, severity, environment``; the line is the native
event as JSON, which ``| json`` flattens (``payload.threat_type`` → ``payload_threat_type``,
``tags.team`` → ``tags_team``; docs/runbooks/README.md).

    >>> from hubcore.query.model import parse_query
    >>> q = parse_query({"time_range": {"start": 0, "end": 3600},
    ...                  "metric": {"event_type": "security"},
    ...                  "filters": [{"field": "payload.threat_type", "operator": "eq", "value": "prompt_injection"}],
    ...                  "aggregation": {"time_bucket": "5m", "functions": ["count"]}}, tenant="t", now_us=0)
    >>> print(compile_logql(q).queries["count"])
    sum(count_over_time({tenant_id="t", event_type="security"} | json | payload_threat_type="prompt_injection" [5m]))
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

from hubcore.query.compile_promql import duration, quote, re_escape
from hubcore.query.composite import COMPOSITES, Part
from hubcore.query.ir import misspelt_composite
from hubcore.query.model import BUCKETS, FieldRef, Filter, Query, QueryError

STREAM_LABELS: Final = ("tenant_id", "source_module", "event_type", "severity", "environment")
#: event column → the label ``| json`` gives it (columns that depend on event_type are below)
COLUMN_LABELS: Final = {
    "model": "payload_model", "provider": "payload_provider", "team": "tags_team", "project": "tags_project",
    "user_id": "tags_user_id", "asset_id": "payload_asset_id", "event_id": "event_id",
    "correlation_id": "correlation_id", "schema_version": "schema_version",
    "input_tokens": "payload_input_tokens", "output_tokens": "payload_output_tokens",
}  # fmt: skip
BY_TYPE: Final = {
    "name": {"telemetry": "payload_metric_name", "cost": "payload_cost_type", "security": "payload_threat_type",
             "governance": "payload_policy_id", "policy": "payload_policy_id", "metadata": "payload_name"},
    "status": {"telemetry": "payload_status", "security": "payload_action_taken", "governance": "payload_action",
               "policy": "payload_result", "metadata": "payload_action"},
    "value": {"telemetry": "payload_value", "cost": "payload_amount", "security": "payload_confidence",
              "policy": "payload_evaluation_time"},
}  # fmt: skip
_OVER_TIME: Final = {"sum": "sum_over_time", "avg": "avg_over_time", "min": "min_over_time", "max": "max_over_time",
                     "stddev": "stddev_over_time"}  # fmt: skip
_QUANTILES: Final = {"p50": "0.5", "p95": "0.95", "p99": "0.99"}
_CMP: Final = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_BAD = re.compile(r"[^A-Za-z0-9_]")


class Unsupported(QueryError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, f"not expressible in LogQL: {message}", reason="unsupported_by_backend")


@dataclass(frozen=True, slots=True)
class LogPlan:
    queries: dict[str, str]
    start_s: float
    end_s: float
    step_s: int | None
    group_labels: tuple[str, ...] = ()


def label_of(ref: FieldRef, event_type: str | None, where: str) -> str:
    """The Loki label (stream or ``| json``-extracted) of an event field."""
    if ref.kind == "tag":
        return "tags_" + _BAD.sub("_", ref.name.replace(".", "_"))
    if ref.kind == "payload":
        return "payload_" + _BAD.sub("_", ref.name.replace(".", "_"))
    if ref.name in STREAM_LABELS:
        return ref.name
    if ref.name in COLUMN_LABELS:
        return COLUMN_LABELS[ref.name]
    if ref.name in BY_TYPE:
        by_type = BY_TYPE[ref.name]
        if event_type not in by_type:
            raise Unsupported(where, f"field {ref.name!r} needs metric.event_type, one of {', '.join(by_type)}")
        return by_type[event_type]
    raise Unsupported(where, f"field {ref.label!r} has no Loki label")


def _matcher(label: str, f: Filter, where: str) -> str:
    if f.op in ("gt", "gte", "lt", "lte") or (f.op in ("eq", "ne") and isinstance(f.value, int | float)):
        return f"{label} {_CMP[f.op]} {f.value}"
    if f.op in ("eq", "ne"):
        return f"{label}{_CMP[f.op]}{quote(f.value)}"
    if f.op in ("in", "not_in"):
        alt = "|".join(re_escape(v) for v in f.value)
        return f"{label}{'=~' if f.op == 'in' else '!~'}{quote(alt)}"
    if f.op == "contains":
        return f"{label}=~{quote('.*' + re_escape(f.value) + '.*')}"
    return f"{label}=~{quote(f.value)}"


def _pipeline(query: Query, event_type: str | None, extra: tuple[str, ...] = ()) -> str:
    stream = [] if query.tenant == "*" else [f"tenant_id={quote(query.tenant)}"]
    if event_type is not None:
        stream.append(f"event_type={quote(event_type)}")
    post: list[str] = []
    if query.metric.name is not None and not query.metric.composite:
        post.append(f"{label_of(FieldRef('column', 'name'), event_type, 'metric.name')}={quote(query.metric.name)}")
    for i, f in enumerate(query.filters):
        label = label_of(f.field, event_type, f"filters[{i}].field")
        m = _matcher(label, f, f"filters[{i}]")
        in_stream = label in STREAM_LABELS and f.op in ("eq", "ne", "regex", "in", "not_in", "contains")
        (stream if in_stream else post).append(m)
    if not stream:
        stream.append('tenant_id=~".+"')
    post += list(extra)
    return "{" + ", ".join(stream) + "} | json" + "".join(f" | {p}" for p in post)


def _by(labels: tuple[str, ...]) -> str:
    return f"by ({', '.join(labels)})"


def _part(query: Query, part: Part, groups: tuple[str, ...], window: str) -> str:
    extra = [f"payload_metric_name={quote(part.name)}"] if part.name else []
    if part.status:
        extra.append(f"{BY_TYPE['status'][part.event_type]}={quote(part.status)}")
    pipe = _pipeline(query, part.event_type, tuple(extra))
    head = f"sum {_by(groups)} " if groups else "sum"
    if part.value is None:
        return f"{head}(count_over_time({pipe} [{window}]))"
    tokens = ("payload_input_tokens", "payload_output_tokens")
    fields = tokens if part.value == "tokens" else (BY_TYPE["value"][part.event_type],)
    terms = [f'{head}(sum_over_time({pipe} | unwrap {f} | __error__="" [{window}]))' for f in fields]
    return terms[0] if len(terms) == 1 else "(" + " + ".join(terms) + ")"


def check_name(query: Query) -> None:
    """A 422 naming the composite (as the embedded store's, :func:`hubcore.query.catalog.unknown_name_error`)
    for a name given as a bare string close to a composite's (``"metric": "error_rat"``): Loki reads a metric
    name only with its event type (the label it is in depends on it), which the string form never has.

        >>> from hubcore.query.model import parse_query
        >>> check_name(parse_query({"metric": "cost_per_reqest"}, tenant="t", now_us=0))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        hubcore.query.ir.QueryError: metric: ... did you mean 'cost_per_request'? ...
    """
    m = query.metric
    if m.near_composite is not None and m.event_type is None:
        raise misspelt_composite(
            m, "a metric name the loki backend reads without its event type",
            f'a metric name is read with "metric": {{"event_type": "telemetry", "name": {json.dumps(m.name)}}}',
        )  # fmt: skip


def compile_logql(query: Query) -> LogPlan:
    check_name(query)
    agg = query.aggregation
    window = agg.time_bucket or duration(query.time_range.seconds)
    step = BUCKETS[agg.time_bucket] if agg.time_bucket else None
    tr = query.time_range
    m = query.metric
    queries: dict[str, str] = {}
    if m.composite:
        comp = COMPOSITES[m.composite]
        groups = tuple(label_of(g, "telemetry", f"aggregation.group_by[{i}]") for i, g in enumerate(agg.group_by))
        texts = {name: _part(query, p, groups, window) for name, p in comp.parts.items()}
        texts["seconds"] = str(step or int(tr.seconds))
        queries[comp.name] = f"{comp.numerator.format(**texts)} / {comp.denominator.format(**texts)}"
        return LogPlan(queries, tr.start_us / 1e6, tr.end_us / 1e6, step, groups)
    groups = tuple(label_of(g, m.event_type, f"aggregation.group_by[{i}]") for i, g in enumerate(agg.group_by))
    pipe = _pipeline(query, m.event_type)
    for fn in agg.functions:
        if fn == "count" and m.field is None:
            head = f"sum {_by(groups)} " if groups else "sum"
            queries[fn] = f"{head}(count_over_time({pipe} [{window}]))"
            continue
        fld = m.field or FieldRef("column", "value")
        if fld.label == "total_tokens":
            raise Unsupported("metric.field", "total_tokens; ask for input_tokens and output_tokens")
        unwrap = label_of(fld, m.event_type, "metric.field")
        body = f'{pipe} | unwrap {unwrap} | __error__="" [{window}]'
        if fn == "count":
            queries[fn] = f"sum {_by(groups)} (count_over_time({body}))" if groups else f"sum(count_over_time({body}))"
        elif fn == "sum":
            queries[fn] = f"sum {_by(groups)} (sum_over_time({body}))" if groups else f"sum(sum_over_time({body}))"
        elif fn in _QUANTILES:
            queries[fn] = f"quantile_over_time({_QUANTILES[fn]}, {body}) {_by(groups)}"
        else:
            queries[fn] = f"{_OVER_TIME[fn]}({body}) {_by(groups)}"
    return LogPlan(queries, tr.start_us / 1e6, tr.end_us / 1e6, step, groups)
