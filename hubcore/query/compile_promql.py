"""Compile a :class:`~hubcore.query.model.Query` to PromQL/MetricsQL over the hub's metric contract.

Series and labels follow docs/runbooks/README.md ("Metric contract"): histograms
``gen_ai_client_operation_duration_seconds_bucket/_sum/_count``, counters ``llm_cost_usd_total``,
``llm_security_threats_total``...; labels ``tenant_id``, ``job``, ``gen_ai_request_model``, ``team``...
Results are scaled back to the embedded store's units (durations in ms), so both backends agree.

    >>> from hubcore.query.model import parse_query
    >>> q = parse_query({"time_range": {"start": 0, "end": 86400},
    ...                  "metric": {"event_type": "telemetry", "name": "gen_ai.client.operation.duration"},
    ...                  "aggregation": {"time_bucket": "1h", "functions": ["p95"], "group_by": ["model"]}},
    ...                 tenant="t1", now_us=0)
    >>> print(compile_promql(q).queries["p95"])
    histogram_quantile(0.95, sum by (le, gen_ai_request_model) (rate(gen_ai_client_operation_duration_seconds_bucket{tenant_id="t1"}[1h]))) * 1000

Range queries use ``step`` = the bucket; without a bucket one instant query covers the whole range.
Anything the metric contract cannot express (min/max of a histogram, a payload path that is not a
label, ``gt`` on a label) raises :class:`Unsupported` (a :class:`QueryError` naming the field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from hubcore.query.composite import COMPOSITES, Part
from hubcore.query.ir import misspelt_composite
from hubcore.query.model import BUCKETS, FieldRef, Filter, Query, QueryError

#: event field (label form) → Prometheus label, on every hub series
COMMON_LABELS: Final = {
    "model": "gen_ai_request_model", "provider": "gen_ai_provider_name", "team": "team", "project": "project",
    "environment": "environment", "source_module": "job", "tags.team": "team", "tags.project": "project",
    "payload.model": "gen_ai_request_model", "payload.provider": "gen_ai_provider_name",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Series:
    base: str  # histogram base name (without _bucket/_sum/_count) or counter name
    kind: str  # "histogram" | "counter"
    scale: float = 1.0  # multiply to get the embedded store's unit
    labels: dict[str, str] = field(default_factory=dict)  # extra field → label
    functions: tuple[str, ...] = ("count", "sum", "avg", "p50", "p95", "p99")


_HIST_LABELS = {"payload.operation": "gen_ai_operation_name", "payload.error_type": "error_type"}
HISTOGRAMS: Final = {
    "gen_ai.client.operation.duration": Series("gen_ai_client_operation_duration_seconds", "histogram", 1000.0,
                                               _HIST_LABELS),
    "gen_ai.server.time_to_first_token": Series("gen_ai_server_time_to_first_token_seconds", "histogram", 1000.0,
                                                _HIST_LABELS),
    "gen_ai.client.token.usage": Series("gen_ai_client_token_usage", "histogram", 1.0,
                                        {**_HIST_LABELS, "payload.token_type": "gen_ai_token_type"}),
}  # fmt: skip
COUNTERS: Final = {
    "cost": Series("llm_cost_usd_total", "counter", 1.0, {"name": "cost_type", "payload.cost_type": "cost_type"},
                   ("sum",)),
    "security": Series("llm_security_threats_total", "counter", 1.0,
                       {"name": "threat_type", "payload.threat_type": "threat_type",
                        "payload.threat_level": "threat_level", "status": "action", "payload.action_taken": "action"},
                       ("count",)),
    "governance": Series("llm_governance_violations_total", "counter", 1.0,
                         {"name": "policy_id", "payload.policy_id": "policy_id",
                          "payload.violation_type": "violation_type", "payload.regulation": "regulation"},
                         ("count",)),
    "policy": Series("llm_policy_evaluations_total", "counter", 1.0,
                     {"name": "policy_id", "payload.policy_id": "policy_id", "status": "result",
                      "payload.result": "result"}, ("count",)),
}  # fmt: skip
_ERROR_MATCHER = 'error_type!=""'
_QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99"}


class Unsupported(QueryError):
    """The query has no equivalent over the metric contract."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, f"not expressible in PromQL: {message}", reason="unsupported_by_backend")


@dataclass(frozen=True, slots=True)
class PromPlan:
    """One PromQL expression per output column; ``step`` set for range queries (seconds)."""

    queries: dict[str, str]
    start_s: float
    end_s: float
    step_s: int | None
    group_labels: tuple[str, ...]


def quote(value: object) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_RE_META = re.compile(r"([.^$*+?()\[\]{}|\\])")


def re_escape(value: object) -> str:
    """Escape RE2 metacharacters only (``gpt-4o`` stays readable, ``a.b`` becomes ``a\\.b``)."""
    return _RE_META.sub(r"\\\1", str(value))


def duration(seconds: float) -> str:
    s = max(1, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def _series(query: Query) -> Series:
    m = query.metric
    if m.event_type in COUNTERS and m.name is None:
        return COUNTERS[m.event_type]
    if m.event_type in COUNTERS:
        return COUNTERS[m.event_type]  # name becomes a label matcher (cost_type, threat_type...)
    if m.event_type not in (None, "telemetry"):
        raise Unsupported("metric.event_type", f"event_type {m.event_type!r} has no metric series")
    if m.name is None:
        raise Unsupported("metric.name", "telemetry needs a metric name")
    if m.name not in HISTOGRAMS:
        raise Unsupported("metric.name", f"{m.name!r} is not in the metric contract ({', '.join(HISTOGRAMS)})")
    return HISTOGRAMS[m.name]


def _label(series: Series, ref: FieldRef | str, where: str) -> str:
    key = ref if isinstance(ref, str) else ref.label
    label = series.labels.get(key) or COMMON_LABELS.get(key)
    if label is None:
        raise Unsupported(where, f"field {key!r} is not a label of {series.base}")
    return label


def _matcher(series: Series, f: Filter, where: str) -> str:
    if f.field.label == "status" and series.kind == "histogram":
        if f.op not in ("eq", "ne") or f.value not in ("ok", "error"):
            raise Unsupported(where, "status only supports eq/ne 'ok' or 'error' (the error_type label)")
        is_error = (f.value == "error") == (f.op == "eq")
        return 'error_type!=""' if is_error else 'error_type=""'
    label = _label(series, f.field, f"{where}.field")
    values = f.value if isinstance(f.value, tuple) else (f.value,)
    if f.op == "eq":
        return f"{label}={quote(f.value)}"
    if f.op == "ne":
        return f"{label}!={quote(f.value)}"
    if f.op in ("in", "not_in"):
        alt = "|".join(re_escape(v) for v in values)
        return f"{label}{'=~' if f.op == 'in' else '!~'}{quote(alt)}"
    if f.op == "contains":
        return f"{label}=~{quote('.*' + re_escape(f.value) + '.*')}"
    if f.op == "regex":
        return f"{label}=~{quote(f.value)}"
    raise Unsupported(f"{where}.operator", f"operator {f.op!r} cannot match a label")


def selector(query: Query, series: Series, extra: tuple[str, ...] = ()) -> str:
    matchers = [] if query.tenant == "*" else [f"tenant_id={quote(query.tenant)}"]
    m = query.metric
    if m.name is not None and series.kind == "counter":
        matchers.append(f"{_label(series, 'name', 'metric.name')}={quote(m.name)}")
    if m.field is not None and m.field.label in ("input_tokens", "output_tokens"):
        matchers.append(f"gen_ai_token_type={quote(m.field.label.split('_')[0])}")
    matchers += [_matcher(series, f, f"filters[{i}]") for i, f in enumerate(query.filters)]
    matchers += list(extra)
    return "{" + ", ".join(matchers) + "}"


def _by(labels: tuple[str, ...]) -> str:
    return f"sum by ({', '.join(labels)}) " if labels else "sum "


def _scaled(expr: str, scale: float) -> str:
    return expr if scale == 1.0 else f"{expr} * {scale:g}"


def _part(query: Query, part: Part, groups: tuple[str, ...], window: str) -> str:
    if part.event_type == "cost":
        return f"{_by(groups)}(increase(llm_cost_usd_total{selector(query, COUNTERS['cost'])}[{window}]))"
    hist = HISTOGRAMS[part.name or ""]
    if part.value == "tokens":
        usage = HISTOGRAMS["gen_ai.client.token.usage"]
        return f"{_by(groups)}(increase({usage.base}_sum{selector(query, usage)}[{window}]))"
    total = f"{_by(groups)}(increase({hist.base}_count{selector(query, hist)}[{window}]))"
    if part.status == "error":
        err_sel = selector(query, hist, (_ERROR_MATCHER,))
        errors = f"{_by(groups)}(increase({hist.base}_count{err_sel}[{window}]))"
        return f"({errors} or 0 * {total})"
    return total


def check_name(query: Query) -> None:
    """A 422 naming the composite (as the embedded store's, :func:`hubcore.query.catalog.unknown_name_error`)
    for a name given as a bare string close to a composite's (``"metric": "error_rat"``) that is not a
    histogram of the metric contract: the only metric names this backend reads (a name of another series
    VictoriaMetrics holds is refused too, ``metric.name`` "not in the metric contract"), so it is a typo.

        >>> from hubcore.query.model import parse_query
        >>> check_name(parse_query({"metric": "error_rat"}, tenant="t", now_us=0))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        hubcore.query.ir.QueryError: metric: 'error_rat' is neither a composite metric nor ... did you mean 'error_rate'? ...
    """
    m = query.metric
    if m.near_composite is not None and m.name not in HISTOGRAMS:
        raise misspelt_composite(
            m, f"a metric name of the metric contract ({', '.join(HISTOGRAMS)})",
            'the contract\'s counters are read by event type, "metric": {"event_type": "cost"} '
            f"({', '.join(COUNTERS)})",
        )  # fmt: skip


def compile_promql(query: Query) -> PromPlan:
    check_name(query)
    agg = query.aggregation
    window = agg.time_bucket or duration(query.time_range.seconds)
    step = BUCKETS[agg.time_bucket] if agg.time_bucket else None
    tr = query.time_range
    queries: dict[str, str] = {}
    if query.metric.composite:
        comp = COMPOSITES[query.metric.composite]
        probe = HISTOGRAMS["gen_ai.client.operation.duration"]
        groups = tuple(_label(probe, g, f"aggregation.group_by[{i}]") for i, g in enumerate(agg.group_by))
        seconds = step or int(tr.seconds)
        texts = {name: _part(query, p, groups, window) for name, p in comp.parts.items()}
        texts["seconds"] = str(seconds)
        num, den = comp.numerator.format(**texts), comp.denominator.format(**texts)
        queries[comp.name] = f"{num} / {den}"
        return PromPlan(queries, tr.start_us / 1e6, tr.end_us / 1e6, step, groups)
    series = _series(query)
    groups = tuple(_label(series, g, f"aggregation.group_by[{i}]") for i, g in enumerate(agg.group_by))
    sel = selector(query, series)
    for i, fn in enumerate(agg.functions):
        if fn not in series.functions:
            raise Unsupported(
                f"aggregation.functions[{i}]", f"{fn!r} of {series.base}; use {', '.join(series.functions)}"
            )
        if series.kind == "counter":
            queries[fn] = f"{_by(groups)}(increase({series.base}{sel}[{window}]))"
            continue
        fld = query.metric.field
        base = "gen_ai_client_token_usage" if fld is not None and fld.label.endswith("tokens") else series.base
        scale = 1.0 if base != series.base else series.scale
        s_sum = f"{_by(groups)}(increase({base}_sum{sel}[{window}]))"
        s_count = f"{_by(groups)}(increase({base}_count{sel}[{window}]))"
        if fn == "count":
            queries[fn] = s_count
        elif fn == "sum":
            queries[fn] = _scaled(s_sum, scale)
        elif fn == "avg":
            queries[fn] = _scaled(f"{s_sum} / {s_count}", scale)
        else:
            by = ", ".join(("le", *groups))
            inner = f"sum by ({by}) (rate({base}_bucket{sel}[{window}]))"
            queries[fn] = _scaled(f"histogram_quantile({_QUANTILES[fn]}, {inner})", scale)
    return PromPlan(queries, tr.start_us / 1e6, tr.end_us / 1e6, step, groups)
