"""Compile a :class:`~hubcore.query.model.Query` to parameterised DuckDB SQL over ``events``.

Identifiers come only from allow-lists (columns, functions, bucket widths); every user value — filter
values, tag keys and payload paths (bound as JSON paths) — is a ``?`` parameter.

    >>> from hubcore.query.model import parse_query
    >>> q = parse_query({"time_range": {"start": 0, "end": 3600},
    ...                  "metric": {"event_type": "cost"},
    ...                  "aggregation": {"functions": ["sum"], "group_by": ["team"]}}, tenant="t1", now_us=0)
    >>> c = compile_query(q)
    >>> c.sql.splitlines()[0]
    'SELECT g0, sum(v) AS a0'
    >>> c.params
    ['t1', 0, 3600000000, 'cost', 1001, 0]
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Final

from hubcore.query.composite import COMPOSITES, Part
from hubcore.query.model import BUCKETS, FieldRef, Filter, Query

_INTERVALS: Final = {
    "1m": "INTERVAL 1 MINUTE", "5m": "INTERVAL 5 MINUTE", "15m": "INTERVAL 15 MINUTE",
    "1h": "INTERVAL 1 HOUR", "6h": "INTERVAL 6 HOUR", "1d": "INTERVAL 1 DAY",
}  # fmt: skip
_AGG: Final = {
    "sum": "sum(v)", "avg": "avg(v)", "count": "count(v)", "min": "min(v)", "max": "max(v)",
    "p50": "quantile_cont(v, 0.5)", "p95": "quantile_cont(v, 0.95)", "p99": "quantile_cont(v, 0.99)",
    "stddev": "stddev_samp(v)",
}  # fmt: skip
_CMP: Final = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
#: HUGEINT: two BIGINT counts near 2**62 must not overflow the addition (the ingest bound is 2**53, but
#: rows written before it, or by other writers, may hold anything a BIGINT holds).
TOKENS_SQL: Final = "(CAST(coalesce(input_tokens, 0) AS HUGEINT) + coalesce(output_tokens, 0))"


@dataclass(frozen=True, slots=True)
class CompiledSql:
    """SQL text, its parameters and the output column names, in the order the SQL selects them."""

    sql: str
    params: list[Any]
    columns: list[str]


class _Sql:
    """A fragment builder that keeps parameters in the order their ``?`` appear."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, text: str, *params: Any) -> _Sql:
        self.parts.append(text)
        self.params.extend(params)
        return self


def field_sql(ref: FieldRef, *, numeric: bool = False) -> tuple[str, list[Any]]:
    """SQL for one field: an allow-listed column, or ``json_extract_string(tags|payload, ?)``."""
    if ref.kind == "column":
        return (TOKENS_SQL if ref.name == "total_tokens" else ref.name), []
    src = "tags" if ref.kind == "tag" else "payload"
    expr = f"json_extract_string({src}, ?)"
    return (f"TRY_CAST({expr} AS DOUBLE)" if numeric else expr), [ref.json_path]


def filter_sql(f: Filter) -> tuple[str, list[Any]]:
    """One WHERE condition. ``ne``/``not_in`` keep rows where the field is missing (NULL)."""
    numeric_value = isinstance(f.value, int | float) or (
        isinstance(f.value, tuple) and all(isinstance(v, int | float) for v in f.value)
    )
    as_number = f.field.numeric or (f.field.kind != "column" and numeric_value)
    expr, params = field_sql(f.field, numeric=as_number)
    values = list(f.value) if isinstance(f.value, tuple) else [f.value]
    if not f.field.numeric and not as_number:
        values = [str(v) for v in values]
    if f.op in _CMP:
        return f"{expr} {_CMP[f.op]} ?", [*params, *values]
    if f.op == "ne":
        return f"{expr} IS DISTINCT FROM ?", [*params, *values]
    marks = ", ".join("?" * len(values))
    if f.op == "in":
        return f"{expr} IN ({marks})", [*params, *values]
    if f.op == "not_in":
        return f"NOT coalesce({expr} IN ({marks}), false)", [*params, *values]
    if f.op == "contains":
        return f"contains({expr}, ?)", [*params, *values]
    return f"regexp_matches({expr}, ?)", [*params, *values]  # regex


def where_sql(query: Query, *, extra: list[tuple[str, list[Any]]] | None = None) -> tuple[str, list[Any]]:
    """``tenant AND time AND metric AND filters`` (the tenant condition is first and always there)."""
    conds: list[tuple[str, list[Any]]] = []
    if query.tenant != "*":
        conds.append(("tenant_id = ?", [query.tenant]))
    tr = query.time_range
    conds.append(("ts >= make_timestamp(?) AND ts < make_timestamp(?)", [tr.start_us, tr.end_us]))
    m = query.metric
    if m.event_type is not None:
        conds.append(("event_type = ?", [m.event_type]))
    if m.name is not None:
        conds.append(("name = ?", [m.name]))
    conds += extra or []
    conds += [filter_sql(f) for f in query.filters]
    return " AND ".join(c for c, _ in conds), [p for _, ps in conds for p in ps]


def _part_sql(part: Part) -> tuple[str, list[Any]]:
    cond, params = "event_type = ?", [part.event_type]
    if part.name is not None:
        cond, params = cond + " AND name = ?", [*params, part.name]
    if part.status is not None:
        cond, params = cond + " AND status = ?", [*params, part.status]
    if part.value is None:
        return f"count(*) FILTER (WHERE {cond})", params
    col = "tok" if part.value == "tokens" else "v"
    return f"{part.agg}({col}) FILTER (WHERE {cond})", params


def compile_query(query: Query, *, page: bool = True) -> CompiledSql:
    """The whole query. With ``page``, ``LIMIT limit+1 OFFSET offset`` (one extra row says "more")."""
    agg = query.aggregation
    inner_cols: list[tuple[str, list[Any]]] = []
    outer: list[str] = []
    outer_params: list[Any] = []
    if agg.time_bucket:
        inner_cols.append((f"time_bucket({_INTERVALS[agg.time_bucket]}, ts) AS b", []))
        outer.append("b AS bucket")
    for i, g in enumerate(agg.group_by):
        expr, ps = field_sql(g)
        inner_cols.append((f"{expr} AS g{i}", ps))
        outer.append(f"g{i}")
    extra: list[tuple[str, list[Any]]] = []
    if query.metric.composite:
        comp = COMPOSITES[query.metric.composite]
        inner_cols += [("event_type, name, status, value AS v", []), (f"{TOKENS_SQL} AS tok", [])]
        marks = ", ".join("?" * len(comp.event_types))
        extra.append((f"event_type IN ({marks})", list(comp.event_types)))
        texts: dict[str, str] = {}
        params_of: dict[str, list[Any]] = {}
        for name in {*_placeholders(comp.numerator), *_placeholders(comp.denominator)}:
            if name == "seconds":
                seconds = BUCKETS[agg.time_bucket] if agg.time_bucket else query.time_range.seconds
                texts[name], params_of[name] = "CAST(? AS DOUBLE)", [float(seconds)]
            else:
                texts[name], params_of[name] = _part_sql(comp.parts[name])
        # parameters follow the order in which the {placeholders} appear in the text
        order = _placeholders(comp.numerator) + _placeholders(comp.denominator)
        formula_params = [p for name in order for p in params_of[name]]
        num = comp.numerator.format(**texts)
        den = comp.denominator.format(**texts)
        outer.append(f"CAST({num} AS DOUBLE) / nullif({den}, 0) AS a0")
        outer_params += formula_params
    else:
        fld = query.metric.field
        if fld is None:
            inner_cols.append(("value AS v", []))
        else:
            expr, ps = field_sql(fld, numeric=True)
            inner_cols.append((f"{expr} AS v", ps))
        for i, fn in enumerate(agg.functions):
            text = "count(*)" if fn == "count" and fld is None else _AGG[fn]
            outer.append(f"{text} AS a{i}")
    where, where_params = where_sql(query, extra=extra)
    ncols = len(outer)
    ngroup = (1 if agg.time_bucket else 0) + len(agg.group_by)
    cols = query.output_columns
    order = [f"{cols.index(s.column) + 1} {'DESC' if s.descending else 'ASC'}" for s in query.sort]
    seen = {cols.index(s.column) + 1 for s in query.sort}
    order += [f"{i} ASC" for i in range(1, ncols + 1) if i not in seen]
    s = _Sql()
    s.add("SELECT " + ", ".join(outer), *outer_params)
    s.add("FROM (SELECT " + ", ".join(c for c, _ in inner_cols), *(p for _, ps in inner_cols for p in ps))
    s.add(f"      FROM events WHERE {where})", *where_params)
    if ngroup:
        s.add("GROUP BY " + ", ".join(str(i) for i in range(1, ngroup + 1)))
    s.add("ORDER BY " + ", ".join(order))
    if page and query.limit is not None:
        s.add("LIMIT ? OFFSET ?", query.limit + 1, query.offset)
    elif query.limit is not None:
        s.add("LIMIT ? OFFSET ?", query.limit, query.offset)
    return CompiledSql("\n".join(s.parts), s.params, cols)


def _placeholders(formula: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(formula) if name]
