"""Alert rules: their JSON shape, validation (errors name the offending key) and the built-in defaults.

A rule is ``{"name", "condition", "for", "severity", "labels", "annotations"}``; the condition is one of

* ``threshold``: an aggregation of ``events`` over a window compared with a value, per group;
* ``anomaly``: ``max(anomaly_score)`` of the ``derived_series`` table over a window (> 1 = anomalous), or
  its newest value there (``"aggregation": "last"``, PromQL's ``last_over_time``);
* ``composite``: ``{"op": "and" | "or", "conditions": [...]}`` of the above (matched on shared labels).

>>> r = parse_rule({"name": "GPT4oSlow", "for": "5m", "condition": {"type": "threshold",
...     "metric": "gen_ai.client.operation.duration", "filters": {"model": "gpt-4o"},
...     "aggregation": "p95", "window": "5m", "op": ">", "value": 2000}}, tenant_id="acme")
>>> (r.for_s, r.condition.window_s, r.severity)
(300.0, 300.0, 'warning')
>>> try:
...     parse_rule({"name": "x", "condition": {"type": "threshold", "aggregation": "p42", "window": "5m",
...                                           "value": 1}})
... except RuleError as e:
...     print(e)
condition.aggregation: must be one of avg, count, max, min, p50, p90, p95, p99, rate, ratio, sum; got 'p42'
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hubcore import durations

#: Filter / group-by dimensions of ``events``: name -> (SQL expression, alert label name).
DIMENSIONS: dict[str, tuple[str, str]] = {
    "event_type": ("event_type", "event_type"),
    "model": ("model", "gen_ai_request_model"),
    "provider": ("provider", "gen_ai_provider_name"),
    "team": ("team", "team"),
    "project": ("project", "project"),
    "environment": ("environment", "environment"),
    "source_module": ("source_module", "job"),
    "user_id": ("user_id", "user_id"),
    "name": ("name", "name"),
    "status": ("status", "status"),
    "severity": ("severity", "event_severity"),
    "operation": ("json_extract_string(payload, '$.operation')", "gen_ai_operation_name"),
    "source_ip": ("json_extract_string(payload, '$.source_ip')", "payload_source_ip"),
    "threat_level": ("json_extract_string(payload, '$.threat_level')", "threat_level"),
    "error_type": ("json_extract_string(payload, '$.error_type')", "error_type"),
    "policy_id": ("json_extract_string(payload, '$.policy_id')", "policy_id"),
}
EVENT_TYPES = ("telemetry", "security", "cost", "governance", "metadata", "policy")
AGGREGATIONS = ("avg", "count", "max", "min", "p50", "p90", "p95", "p99", "rate", "ratio", "sum")
#: An anomaly condition's reduction of its window: the highest point, or the newest one.
ANOMALY_AGGREGATIONS = ("max", "last")
OPS = (">", ">=", "<", "<=", "==", "!=")
SEVERITIES = ("info", "warning", "critical")
RESERVED_LABELS = frozenset({"alertname", "severity", "tenant_id", "escalated"})
MAX_WINDOW_S = 7 * 86_400.0
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class RuleError(ValueError):
    """A rule is invalid: ``field`` is the dotted key (``condition.window``), ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Threshold:
    aggregation: str
    op: str
    value: float
    window_s: float
    event_type: str | None = "telemetry"
    metric: str | None = None
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    match: tuple[tuple[str, tuple[str, ...]], ...] = ()
    group_by: tuple[str, ...] = ()
    min_count: int = 1


@dataclass(frozen=True)
class Anomaly:
    op: str = ">"
    value: float = 1.0
    window_s: float = 300.0
    series: str = "anomaly_score"
    filters: tuple[tuple[str, str], ...] = ()
    aggregation: str = "max"  # "last": the newest point in the window (PromQL's last_over_time)


@dataclass(frozen=True)
class Composite:
    op: str
    conditions: tuple[Condition, ...]


Condition = Threshold | Anomaly | Composite


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    condition: Condition
    for_s: float = 0.0
    severity: str = "warning"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    tenant_id: str | None = None  # None: every tenant (built-in and config rules)
    builtin: bool = False
    spec: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.spec, "id": self.id, "tenant_id": self.tenant_id, "builtin": self.builtin}


def parse_duration(value: Any, key: str, *, allow_zero: bool = False) -> float:
    """Seconds from a number or ``"90s"``, ``"5m"``, ``"2h"``, ``"1d"``, ``"500ms"`` (at most 7 days;
    the grammar is :func:`hubcore.durations.parse_duration`)."""
    try:
        return durations.parse_duration(value, allow_zero=allow_zero, maximum=MAX_WINDOW_S)
    except durations.DurationError as exc:
        raise RuleError(key, str(exc)) from None


def _obj(data: Any, key: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise RuleError(key, f"must be an object, got {type(data).__name__}")
    for k in data:
        if k not in allowed:
            raise RuleError(_k(key, str(k)), f"unknown key (allowed: {', '.join(sorted(allowed))})")
    for k in required:
        if k not in data:
            raise RuleError(_k(key, k), "is required")
    return data


def _k(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _choice(data: dict[str, Any], name: str, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = data.get(name, default)
    if value not in choices:
        raise RuleError(_k(key, name), f"must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def _number(data: dict[str, Any], name: str, key: str, default: float | None = None) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise RuleError(_k(key, name), f"must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise RuleError(_k(key, name), "is too large") from None
    if not math.isfinite(number):  # JSON's 1e400 decodes as infinity, and was stored as null
        raise RuleError(_k(key, name), f"must be a finite number, got {value!r}")
    return number


def _filters(data: Any, key: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if data is None:
        return ()
    obj = _obj(data, key, set(DIMENSIONS))
    out = []
    for dim, value in sorted(obj.items()):
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v for v in values):
            raise RuleError(_k(key, dim), f"must be a non-empty string or list of strings, got {value!r}")
        out.append((dim, tuple(values)))
    return tuple(out)


def _threshold(data: dict[str, Any], key: str) -> Threshold:
    allowed = {"type", "event_type", "metric", "filters", "aggregation", "match", "window", "group_by", "op",
               "value", "min_count"}  # fmt: skip
    _obj(data, key, allowed, ("aggregation", "window", "value"))
    aggregation = _choice(data, "aggregation", key, AGGREGATIONS)
    event_type = data.get("event_type", "telemetry")
    if event_type is not None and event_type not in EVENT_TYPES:
        raise RuleError(_k(key, "event_type"), f"must be one of {', '.join(EVENT_TYPES)} or null; got {event_type!r}")
    metric = data.get("metric")
    if metric is not None and (not isinstance(metric, str) or not metric):
        raise RuleError(_k(key, "metric"), f"must be a non-empty string, got {metric!r}")
    match = _filters(data.get("match"), _k(key, "match"))
    if aggregation == "ratio" and not match:
        raise RuleError(_k(key, "match"), "is required for aggregation 'ratio' (the matching share of events)")
    if aggregation != "ratio" and match:
        raise RuleError(_k(key, "match"), "is only used with aggregation 'ratio'")
    group_by = data.get("group_by", [])
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise RuleError(_k(key, "group_by"), f"must be a list of dimension names, got {group_by!r}")
    for i, g in enumerate(group_by):
        if g not in DIMENSIONS:
            raise RuleError(f"{key}.group_by.{i}", f"unknown dimension {g!r} (known: {', '.join(sorted(DIMENSIONS))})")
    min_count = data.get("min_count", 1)
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise RuleError(_k(key, "min_count"), f"must be an integer >= 1, got {min_count!r}")
    return Threshold(
        aggregation=aggregation, op=_choice(data, "op", key, OPS, ">"), value=_number(data, "value", key),
        window_s=parse_duration(data.get("window"), _k(key, "window")), event_type=event_type, metric=metric,
        filters=_filters(data.get("filters"), _k(key, "filters")), match=match, group_by=tuple(group_by),
        min_count=min_count,
    )  # fmt: skip


def _anomaly(data: dict[str, Any], key: str) -> Anomaly:
    _obj(data, key, {"type", "series", "filters", "window", "op", "value", "aggregation"})
    filters = data.get("filters") or {}
    if not isinstance(filters, dict) or not all(isinstance(v, str) for v in filters.values()):
        raise RuleError(_k(key, "filters"), f"must be an object of label -> string, got {filters!r}")
    for label in filters:
        if not _NAME.match(str(label)):
            raise RuleError(_k(key, f"filters.{label}"), "is not a valid label name")
    series = data.get("series", "anomaly_score")
    if not isinstance(series, str) or not series:
        raise RuleError(_k(key, "series"), f"must be a non-empty string, got {series!r}")
    return Anomaly(
        op=_choice(data, "op", key, OPS, ">"), value=_number(data, "value", key, 1.0),
        window_s=parse_duration(data.get("window", 300.0), _k(key, "window")), series=series,
        filters=tuple(sorted(filters.items())), aggregation=_choice(data, "aggregation", key, ANOMALY_AGGREGATIONS, "max"),
    )  # fmt: skip


def parse_condition(data: Any, key: str = "condition", depth: int = 0) -> Condition:
    """Validate one condition (recursively for composites)."""
    if not isinstance(data, dict):
        raise RuleError(key, f"must be an object, got {type(data).__name__}")
    kind = _choice(data, "type", key, ("threshold", "anomaly", "composite"))
    if kind == "threshold":
        return _threshold(data, key)
    if kind == "anomaly":
        return _anomaly(data, key)
    if depth >= 3:
        raise RuleError(key, "composite conditions nest at most 3 deep")
    _obj(data, key, {"type", "op", "conditions"}, ("op", "conditions"))
    op = _choice(data, "op", key, ("and", "or"))
    items = data["conditions"]
    if not isinstance(items, list) or len(items) < 2:
        raise RuleError(_k(key, "conditions"), "must be a list of at least 2 conditions")
    return Composite(op, tuple(parse_condition(c, f"{key}.conditions.{i}", depth + 1) for i, c in enumerate(items)))


def _strings(data: Any, key: str, *, labels: bool) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RuleError(key, f"must be an object of name -> string, got {type(data).__name__}")
    for name, value in data.items():
        if not isinstance(value, str):
            raise RuleError(_k(key, str(name)), f"must be a string, got {value!r}")
        if not _NAME.match(str(name)):
            raise RuleError(_k(key, str(name)), "is not a valid name ([A-Za-z_][A-Za-z0-9_]*)")
        if labels and name in RESERVED_LABELS:
            raise RuleError(_k(key, str(name)), "is set by the hub (alertname, severity, tenant_id, escalated)")
    return dict(data)


def parse_rule(data: Any, *, tenant_id: str | None = None, rule_id: str = "", builtin: bool = False) -> Rule:
    """Validate a rule's JSON. Raises :class:`RuleError` naming the key at fault."""
    allowed = {"name", "condition", "for", "severity", "labels", "annotations", "tenant_id", "enabled"}
    obj = _obj(data, "", allowed, ("name", "condition"))
    name = obj["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise RuleError("name", f"must match [A-Za-z_][A-Za-z0-9_]* (it becomes the alertname), got {name!r}")
    condition = parse_condition(obj["condition"])
    spec = {k: v for k, v in obj.items() if k != "tenant_id"}
    return Rule(
        id=rule_id, name=name, condition=condition,
        for_s=parse_duration(obj.get("for", 0), "for", allow_zero=True),
        severity=_choice(obj, "severity", "", SEVERITIES, "warning"),
        labels=_strings(obj.get("labels"), "labels", labels=True),
        annotations=_strings(obj.get("annotations"), "annotations", labels=False),
        tenant_id=tenant_id, builtin=builtin, spec=spec,
    )  # fmt: skip


_LATENCY = "gen_ai.client.operation.duration"


def _anomaly_rule(severity: str, op: str, value: float, summary: str, what: str) -> dict[str, Any]:
    """A tier of the built-in ``LLMAnomalyDetected`` rule (``anomaly_alert`` compared with ``value``)."""
    return {
        "name": "LLMAnomalyDetected",
        "condition": {"type": "anomaly", "series": "anomaly_alert", "aggregation": "last", "op": op, "value": value,
                      "window": "10m"},
        "for": "0s", "severity": severity, "labels": {"team": "llm-platform"},
        "annotations": {
            "summary": summary + " {{ $labels.for }} (model {{ $labels.model_alias }}, tenant {{ $labels.tenant_id }})",
            "description": f"The anomaly model announced {what} of query " + "{{ $labels.for }} (score {{ $value }}).",
            "runbook_url": "docs/runbooks/LLMAnomalyDetected.md",
        },
    }  # fmt: skip


#: The default rules (every tenant), named after their runbooks in ``docs/runbooks/``.
BUILTIN_RULE_SPECS: tuple[dict[str, Any], ...] = (
    {
        "name": "LLMErrorRateHigh",
        "condition": {"type": "threshold", "metric": _LATENCY, "aggregation": "ratio", "match": {"status": "error"},
                      "window": "5m", "group_by": ["model", "team"], "op": ">", "value": 0.05, "min_count": 5},
        "for": "5m", "severity": "warning", "labels": {"team": "llm-platform"},
        "annotations": {"summary": "Error rate of {{ $labels.gen_ai_request_model }} is {{ $value }} (> 5%)",
                        "runbook_url": "docs/runbooks/LLMErrorRateHigh.md"},
    },
    {
        "name": "LLMLatencyP95High",
        "condition": {"type": "threshold", "metric": _LATENCY, "aggregation": "p95", "window": "5m",
                      "group_by": ["model", "team"], "op": ">", "value": 5000},
        "for": "10m", "severity": "warning", "labels": {"team": "llm-platform"},
        "annotations": {"summary": "p95 latency of {{ $labels.gen_ai_request_model }} is {{ $value }} ms (> 5 s)",
                        "runbook_url": "docs/runbooks/LLMLatencyP95High.md"},
    },
    {
        "name": "LLMPromptInjectionBurstFromIP",
        "condition": {"type": "threshold", "event_type": "security", "metric": "prompt_injection",
                      "aggregation": "count", "window": "5m", "group_by": ["source_ip"], "op": ">=", "value": 10},
        "for": "0s", "severity": "critical", "labels": {"team": "security"},
        "annotations": {"summary": "{{ $value }} prompt injections from {{ $labels.payload_source_ip }} in 5 minutes",
                        "runbook_url": "docs/runbooks/LLMPromptInjectionBurstFromIP.md"},
    },
    # anomaly_alert is written by the analytics service's anomaly models at each run, per series: the
    # newest anomaly_score while the detector has announced that anomaly (its debounce, recovery and
    # one-alert-per-event rules), else 0. The rule follows the newest point of the window (PromQL's
    # last_over_time): the run that withdraws an announcement (a 0) resolves it at once, and the window
    # spans several runs, so one late run does not; the stack's vmalert rules of this name fire on the
    # same series with the same expression.
    _anomaly_rule("warning", ">", 0, "Anomalous", "an anomaly"),
    # The detector's critical severity (score >= 4): in benchmarks/anomaly_eval.py 65-100 % of critical
    # alerts fall in a labelled window (NAB 5 of 6, real LLM traffic 17 of 21, M4 76 of 80, operational
    # 11 of 17), against 17-67 % of low ones, so only this tier pages.
    _anomaly_rule("critical", ">=", 4, "Critical anomaly of", "a critical anomaly"),
    {
        # budget_exhaustion_alert is written by the analytics service each time it re-evaluates a budget
        # (``budget_every``, 2 minutes by default, and on POST/PUT; never on a read): 1 while exhaustion is
        # predicted within the budget's own alert_within_days. The rule follows the newest value in the
        # window: the evaluation that writes 0 (a raised amount, slower spend) resolves it at once, and the
        # window spans several evaluations so that one late run does not.
        "name": "LLMBudgetExhaustionPredicted",
        "condition": {"type": "anomaly", "series": "budget_exhaustion_alert", "aggregation": "last", "op": ">=",
                      "value": 1, "window": "10m"},
        "for": "0s", "severity": "warning", "labels": {"team": "finops"},
        "annotations": {"summary": "Budget {{ $labels.budget_id }} is predicted to run out within its alert window",
                        "runbook_url": "docs/runbooks/LLMBudgetExhaustionPredicted.md"},
    },
)  # fmt: skip


def builtin_rules() -> list[Rule]:
    """The built-in rules; ids are ``builtin-<name>``, plus ``-<severity>`` for a name with several tiers."""
    tiers = Counter(s["name"] for s in BUILTIN_RULE_SPECS)
    return [
        parse_rule(s, rule_id=f"builtin-{s['name']}" + (f"-{s['severity']}" if tiers[s["name"]] > 1 else ""),
                   builtin=True)
        for s in BUILTIN_RULE_SPECS
    ]  # fmt: skip
