"""Evaluate a rule's condition over the embedded store: parameterised SQL over ``events`` / ``derived_series``.

Each evaluation returns the *instances* for which the condition holds now: one per tenant and group
(the ``group_by`` dimensions become alert labels, named as in the metric contract), with the value.

    >>> from processors.alerting.rules import parse_condition
    >>> sql, params = threshold_sql(parse_condition({"type": "threshold", "metric": "m", "aggregation": "p95",
    ...     "window": "5m", "group_by": ["model"], "value": 1}), "acme", 600.0)
    >>> "quantile_cont(value, 0.95)" in sql and params[-1] == 1
    True
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import duckdb

from processors.alerting.rules import DIMENSIONS, Anomaly, Composite, Condition, Threshold

Health = Literal["ok", "nodata"]

COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}  # fmt: skip
_AGG = {
    "count": "CAST(count(*) AS DOUBLE)",
    "sum": "sum(value)",
    "avg": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "p50": "quantile_cont(value, 0.5)",
    "p90": "quantile_cont(value, 0.9)",
    "p95": "quantile_cont(value, 0.95)",
    "p99": "quantile_cont(value, 0.99)",
}
_SERIES_NAME_COLUMNS = ("name", "metric", "metric_name", "series", "__name__")
_BAD_LABEL_CHARS = re.compile(r"[^A-Za-z0-9_]")


class StoreLike(Protocol):
    def cursor(self) -> duckdb.DuckDBPyConnection: ...


@dataclass(frozen=True)
class Instance:
    """The condition holds for this tenant and label set, with this value."""

    tenant_id: str
    labels: dict[str, str]
    value: float

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.tenant_id, tuple(sorted(self.labels.items()))


def _in(expr: str, values: tuple[str, ...], params: list[Any]) -> str:
    params.extend(values)
    return f"{expr} IN ({', '.join('?' * len(values))})"


def threshold_sql(cond: Threshold, tenant_id: str | None, now_s: float) -> tuple[str, list[Any]]:
    """``(sql, params)``: one row per tenant and group: tenant_id, g0..gN, value, n."""
    params: list[Any] = []
    groups = [f"CAST({DIMENSIONS[g][0]} AS VARCHAR) AS g{i}" for i, g in enumerate(cond.group_by)]
    if cond.aggregation == "ratio":
        matched = " AND ".join(_in(DIMENSIONS[d][0], v, params) for d, v in cond.match)
        agg = f"avg(CASE WHEN {matched} THEN 1.0 ELSE 0.0 END)"
    elif cond.aggregation == "rate":
        agg = f"count(*) / {float(cond.window_s)!r}"
    else:
        agg = _AGG[cond.aggregation]
    where = ["ts >= make_timestamp(?)", "ts <= make_timestamp(?)"]
    params += [int((now_s - cond.window_s) * 1e6), int(now_s * 1e6)]
    if cond.event_type is not None:
        where.append("event_type = ?")
        params.append(cond.event_type)
    if cond.metric is not None:
        where.append("name = ?")
        params.append(cond.metric)
    if tenant_id is not None:
        where.append("tenant_id = ?")
        params.append(tenant_id)
    if cond.aggregation in _AGG and cond.aggregation != "count":
        where.append("value IS NOT NULL")
    where += [_in(DIMENSIONS[d][0], v, params) for d, v in cond.filters]
    group_by = ", ".join(["tenant_id", *(f"g{i}" for i in range(len(cond.group_by)))])
    sql = (
        f"SELECT {', '.join(['tenant_id', *groups])}, {agg} AS v, count(*) AS n FROM events "
        f"WHERE {' AND '.join(where)} GROUP BY {group_by} HAVING count(*) >= ?"
    )
    params.append(cond.min_count)
    return sql, params


class Evaluator:
    """Evaluates conditions with a fresh store cursor each time (thread-safe)."""

    def __init__(self, store: StoreLike) -> None:
        self.store = store

    def evaluate(self, cond: Condition, tenant_id: str | None, now_s: float) -> tuple[list[Instance], Health]:
        """Instances for which ``cond`` holds at ``now_s``, and whether there was data to look at."""
        if isinstance(cond, Threshold):
            return self._threshold(cond, tenant_id, now_s), "ok"
        if isinstance(cond, Anomaly):
            return self._anomaly(cond, tenant_id, now_s)
        return self._composite(cond, tenant_id, now_s)

    def _threshold(self, cond: Threshold, tenant_id: str | None, now_s: float) -> list[Instance]:
        sql, params = threshold_sql(cond, tenant_id, now_s)
        compare = COMPARE[cond.op]
        out = []
        for row in self.store.cursor().execute(sql, params).fetchall():
            tenant, *groups, value, _n = row
            if value is None or not compare(float(value), cond.value):
                continue
            labels = {DIMENSIONS[g][1]: str(v) for g, v in zip(cond.group_by, groups, strict=True) if v}
            out.append(Instance(str(tenant), labels, float(value)))
        return out

    def _anomaly(self, cond: Anomaly, tenant_id: str | None, now_s: float) -> tuple[list[Instance], Health]:
        cur = self.store.cursor()
        cols = {
            str(r[0]): str(r[1]).upper()
            for r in cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'derived_series'"
            ).fetchall()
        }
        name_col = next((c for c in _SERIES_NAME_COLUMNS if c in cols), None)
        time_col = "ts" if "ts" in cols else ("timestamp" if "timestamp" in cols else None)
        if name_col is None or time_col is None or "value" not in cols:
            return [], "nodata"  # the table (or the columns this rule needs) is not there yet
        labels_col = "labels" if "labels" in cols else None
        tenant_col = "tenant_id" if "tenant_id" in cols else None
        ts_expr = (
            f'"{time_col}"'
            if cols[time_col].startswith("TIMESTAMP")
            else f'make_timestamp(CAST("{time_col}" AS BIGINT))'
        )
        where = [f'"{name_col}" = ?', f"{ts_expr} >= make_timestamp(?)", f"{ts_expr} <= make_timestamp(?)"]
        params: list[Any] = [cond.series, int((now_s - cond.window_s) * 1e6), int(now_s * 1e6)]
        if tenant_id is not None and tenant_col:
            where.append(f"{tenant_col} = ?")
            params.append(tenant_id)
        sel_tenant = tenant_col or "NULL"
        sel_labels = f"CAST({labels_col} AS VARCHAR)" if labels_col else "NULL"
        if labels_col and cols[labels_col].startswith("MAP"):
            sel_labels = f"CAST(to_json({labels_col}) AS VARCHAR)"
        # "last": the newest point's value (the highest of a timestamp's points, should it have several)
        agg = f"arg_max(value, ({ts_expr}, value))" if cond.aggregation == "last" else "max(value)"
        sql = (
            f"SELECT {sel_tenant} AS t, {sel_labels} AS l, {agg} AS v FROM derived_series "
            f"WHERE {' AND '.join(where)} GROUP BY t, l"
        )
        rows = cur.execute(sql, params).fetchall()
        if not rows:
            return [], "nodata"
        compare = COMPARE[cond.op]
        out = []
        for tenant, raw_labels, value in rows:
            labels = _labels_of(raw_labels)
            if any(labels.get(k) != v for k, v in cond.filters):
                continue
            if value is not None and compare(float(value), cond.value):
                out.append(Instance(str(tenant or tenant_id or "default"), labels, float(value)))
        return out, "ok"

    def _composite(self, cond: Composite, tenant_id: str | None, now_s: float) -> tuple[list[Instance], Health]:
        results = [self.evaluate(c, tenant_id, now_s) for c in cond.conditions]
        health: Health = "nodata" if all(h == "nodata" for _, h in results) else "ok"
        if cond.op == "or":
            seen: dict[Any, Instance] = {}
            for instances, _ in results:
                for inst in instances:
                    seen.setdefault(inst.key, inst)
            return list(seen.values()), health
        acc = results[0][0]
        for instances, _ in results[1:]:
            acc = [
                Instance(a.tenant_id, {**b.labels, **a.labels}, a.value)
                for a in acc
                for b in instances
                if a.tenant_id == b.tenant_id and all(b.labels[k] == v for k, v in a.labels.items() if k in b.labels)
            ]
        unique = {i.key: i for i in acc}
        return list(unique.values()), health


def _labels_of(raw: Any) -> dict[str, str]:
    """Labels from a JSON object text (or a dict); names made Alertmanager-safe."""
    if raw is None:
        return {}
    data = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
    if not isinstance(data, dict):
        return {}
    labels = {}
    for k, v in data.items():
        if k in ("tenant_id", "__name__") or v is None:
            continue
        name = _BAD_LABEL_CHARS.sub("_", str(k))
        labels[name if not name[:1].isdigit() else f"_{name}"] = str(v)
    return labels
