"""Compile a :class:`~hubcore.query.model.Query` to parameterised DuckDB SQL over ``events``.

Identifiers come only from allow-lists (columns, functions, bucket widths); every user value — filter
values, tag keys and payload paths (bound as JSON paths) — is a ``?`` parameter.

    >>> from hubcore.query.model import parse_query
    >>> q = parse_query({"time_range": {"start": 0, "end": 3600},
    ...                  "metric": {"event_type": "cost"},
    ...                  "aggregation": {"functions": ["sum"], "group_by": ["team"]}}, tenant="t1", now_us=0)
    >>> c = compile_query(q)
    >>> c.sql.splitlines()[0][:49]
    'SELECT g0, CASE WHEN count(TRY_CAST(trunc(v) AS B'
    >>> c.params
    ['t1', 0, 3600000000, 'cost', 1001]
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from hubcore.query.composite import COMPOSITES, Part
from hubcore.query.model import BUCKETS, FieldRef, Filter, Query, QueryError

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


def exact_sum_sql(x: str, where: str | None = None, params: list[Any] | tuple[Any, ...] = ()) -> tuple[str, list[Any]]:
    """The sum of the DOUBLE column ``x`` [over the rows where ``where`` holds, whose ``?`` take ``params``]
    as SQL that gives the same bits whatever order the rows are added in: DuckDB's ``sum`` of DOUBLEs adds
    them in parallel in no fixed order, so two reads of one sum (a team's spend) differed in their last digits.

    Each value is split into three integers, summed exactly (an integer sum does not depend on the order),
    and the three sums are combined into a DOUBLE once: within about one unit in the last place of the exact
    sum. The parts: the integer part, then the fraction's first 40 bits and the next 62 (the fraction scaled
    by 2**40 and 2**102). Exact for every value from 2**-50 (about 8.9e-16; a smaller one is rounded to a
    multiple of 2**-102, about 2e-31) up to 2**63 (about 9.2e18). A group holding a larger value, an
    infinity or a NaN is summed with ``fsum`` (Kahan summation; a NaN or an infinity gives what ``sum``
    gives). No value (no row, all NULL): NULL, as ``sum``.

        >>> text, params = exact_sum_sql("v", "event_type = ?", ["cost"])
        >>> text.count("sum(TRY_CAST("), text.count("FILTER (WHERE event_type = ?)"), params
        (3, 6, ['cost', 'cost', 'cost', 'cost', 'cost', 'cost'])
    """
    if where is None:
        return _EXACT_SUM.format(x=x, only=""), []
    return _EXACT_SUM.format(x=x, only=f" FILTER (WHERE {where})"), list(params) * _EXACT_SUM.count("{only}")


_WHOLE: Final = "TRY_CAST(trunc({x}) AS BIGINT)"  # NULL for 2**63 and up, infinities and NaN
_FRACTION: Final = "({x} - trunc({x}))"  # exact, as scaling by a power of two is
_MID: Final = f"TRY_CAST(trunc({_FRACTION} * {2.0**40!r}) AS BIGINT)"
_LOW: Final = f"TRY_CAST(({_FRACTION} * {2.0**40!r} - trunc({_FRACTION} * {2.0**40!r})) * {2.0**62!r} AS BIGINT)"
#: ``{x}``: the column; ``{only}``: a FILTER clause of every aggregate, or nothing.
_EXACT_SUM: Final = (
    f"CASE WHEN count({_WHOLE}){{only}} = count({{x}}){{only}} THEN CAST(sum({_WHOLE}){{only}} AS DOUBLE) + "
    f"CAST(sum({_MID}){{only}} AS DOUBLE) * {2.0**-40!r} + CAST(sum({_LOW}){{only}} AS DOUBLE) * {2.0**-102!r} "
    "ELSE fsum({x}){only} END"
)
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


def _part_cond(part: Part) -> tuple[str, list[Any]]:
    """The condition that selects the events of ``part``, and its parameters."""
    cond, params = "event_type = ?", [part.event_type]
    if part.name is not None:
        cond, params = cond + " AND name = ?", [*params, part.name]
    if part.status is not None:
        cond, params = cond + " AND status = ?", [*params, part.status]
    return cond, params


def _part_sql(part: Part) -> tuple[str, list[Any]]:
    cond, params = _part_cond(part)
    if part.value is None:
        return f"count(*) FILTER (WHERE {cond})", params
    if part.value == "tokens":  # integers: a HUGEINT sum, exact in any order
        return f"{part.agg}(tok) FILTER (WHERE {cond})", params
    return exact_sum_sql("v", cond, params)  # USD: the same bits in any order


def compile_query(query: Query) -> CompiledSql:
    """One page of the query: ``limit + 1`` rows (one extra says "more") in the total order of
    :func:`export_key`, right after ``query.after`` (a later page) or past ``offset`` rows (a first page), of
    the events received by ``query.received_by_us``; :func:`compile_export` with those, so that pages read
    one after the other are the rows of one answer (:mod:`hubcore.query.paging`)."""
    page = query if query.limit is None else replace(query, limit=query.limit + 1)
    after = None if query.after is None else list(query.after)
    return compile_export(page, after=after, received_by_us=query.received_by_us)


#: Aggregates whose floating-point result depends on the order the rows are added in: DuckDB's parallel
#: aggregation adds them in no fixed order, so two runs of one query may differ in the last bits. ``sum`` and
#: ``avg`` are not (:func:`exact_sum_sql`; of whole numbers a HUGEINT sum), nor are the composites.
ORDER_DEPENDENT: Final = frozenset({"stddev"})
#: Numeric columns of whole numbers: their ``sum`` (a HUGEINT) and ``avg`` (that sum over the count) are
#: exact as DuckDB computes them; ``stddev`` is computed in DOUBLEs even of these.
INTEGER_COLUMNS: Final = frozenset({"input_tokens", "output_tokens", "total_tokens"})


def order_dependent(query: Query) -> set[str]:
    """The labels of the value columns of :func:`export_key` whose result depends on the order the rows are
    added in (what an export sorted on them computes in a fixed order): ``stddev``.

        >>> from hubcore.query.model import parse_query
        >>> body = {"aggregation": {"functions": ["sum", "avg", "stddev", "p95"], "group_by": ["model"]},
        ...         "sort": [{"field": "sum"}, {"field": "avg"}, {"field": "stddev"}, {"field": "p95"}]}
        >>> sorted(order_dependent(parse_query(body, tenant="t", now_us=10**15)))
        ['stddev']
    """
    if query.metric.composite:  # counts, token sums and exact USD sums
        return set()
    return {k.label for k in export_key(query) if k.kind == "value" and k.label in ORDER_DEPENDENT}


@dataclass(frozen=True, slots=True)
class KeyColumn:
    """One column of an export's resume key: its output ``label``, its name in the SQL (``bucket``, ``g0``,
    ``a0``), its direction, and what it holds (``bucket``: a timestamp, ``group``: a string or NULL,
    ``value``: an aggregate, a number or NULL)."""

    label: str
    sql: str
    descending: bool
    kind: Literal["bucket", "group", "value"]


def export_key(query: Query) -> list[KeyColumn]:
    """The columns that order a query's rows totally: the sort's, then every bucket and group column not
    sorted on. A result row is one (bucket, groups) combination, so no two rows share a key; a query
    without bucket or groups has at most one row, and an empty key.

        >>> from hubcore.query.model import parse_query
        >>> q = parse_query({"aggregation": {"time_bucket": "1h", "functions": ["p95"], "group_by": ["model"]},
        ...                  "sort": [{"field": "p95", "order": "desc"}]}, tenant="t", now_us=10**15)
        >>> [(k.label, k.sql, k.descending) for k in export_key(q)]
        [('p95', 'a0', True), ('bucket', 'bucket', False), ('model', 'g0', False)]
    """
    agg = query.aggregation
    cols = query.output_columns
    ngroup = (1 if agg.time_bucket else 0) + len(agg.group_by)
    if not ngroup:
        return []
    names = (["bucket"] if agg.time_bucket else []) + [f"g{i}" for i in range(len(agg.group_by))]
    names += [f"a{i}" for i in range(len(cols) - ngroup)]

    def column(i: int, descending: bool) -> KeyColumn:
        kind = "value" if i >= ngroup else ("bucket" if names[i] == "bucket" else "group")
        return KeyColumn(cols[i], names[i], descending, kind)  # type: ignore[arg-type]

    key = [column(cols.index(s.column), s.descending) for s in query.sort]
    sorted_on = {k.label for k in key}
    return key + [column(i, False) for i in range(ngroup) if cols[i] not in sorted_on]


def compile_export(query: Query, *, after: list[Any] | None = None, received_by_us: int | None = None) -> CompiledSql:
    """A query for an export: every row (at most ``limit``) in the total order of :func:`export_key`.

    ``after`` (the key of the last row an earlier answer sent; ``[]`` for the one row of a query without
    groups) starts right after that row, in place of ``offset``. ``received_by_us`` leaves out events
    received after it (a resumed export reads what the first answer read, whatever arrived since), and
    a ``stddev`` sorted on is computed in a fixed order (``stddev_samp(v ORDER BY v)``; sums and averages
    are the same bits in any order: :func:`exact_sum_sql`), so that every answer orders the rows alike to
    the last bit.

        >>> from hubcore.query.model import parse_query
        >>> q = parse_query({"aggregation": {"functions": ["stddev"], "group_by": ["model"]},
        ...                  "sort": [{"field": "stddev", "order": "desc"}]}, tenant="t", now_us=10**15, paged=False)
        >>> c = compile_export(q, after=[2.5, None])
        >>> c.sql.splitlines()[0], c.sql.splitlines()[-2:]
        ('SELECT * FROM (SELECT g0, stddev_samp(v ORDER BY v) AS a0', ['WHERE ((a0 < ? OR a0 IS NULL))', 'ORDER BY 2 DESC NULLS LAST, 1 ASC NULLS LAST'])
    """
    key = export_key(query)
    select, params, order = _select(query, extra=_received_by(received_by_us), stable=order_dependent(query))
    order = [f"{o} NULLS LAST" for o in order]  # DuckDB's default, written out: _after_sql relies on it
    s = _Sql()
    if after is None:
        s.add(select, *params)
    else:
        if len(after) != len(key):
            raise QueryError("cursor", "belongs to another export; send the same request with its next_cursor")
        s.add(f"SELECT * FROM ({select}", *params)
        s.add(")")
        cond, cond_params = _after_sql(key, after)
        s.add(f"WHERE {cond}", *cond_params)
    s.add("ORDER BY " + ", ".join(order))
    if query.limit is not None:
        s.add("LIMIT ?", query.limit)
    if after is None and query.offset:
        s.add("OFFSET ?", query.offset)
    return CompiledSql("\n".join(s.parts), s.params, query.output_columns)


def _received_by(received_by_us: int | None) -> list[tuple[str, list[Any]]]:
    if received_by_us is None:
        return []
    return [("(received_at IS NULL OR received_at <= make_timestamp(?))", [received_by_us])]


def _after_sql(key: list[KeyColumn], after: list[Any]) -> tuple[str, list[Any]]:
    """Rows after the row whose key is ``after``, in the order ``key`` gives (NULLs last in either
    direction, as the ORDER BY says; a NaN is above every number, as DuckDB orders it)."""
    terms: list[str] = []
    params: list[Any] = []
    same: list[str] = []  # the earlier columns equal to the last row's
    same_params: list[Any] = []
    for col, value in zip(key, after, strict=True):
        mark = "make_timestamp(?)" if col.kind == "bucket" else "?"
        if value is None:  # nothing sorts after a NULL in this column; the rows that tie go on
            same.append(f"{col.sql} IS NULL")
            continue
        beyond = f"({col.sql} {'<' if col.descending else '>'} {mark} OR {col.sql} IS NULL)"
        terms.append(" AND ".join([*same, beyond]))
        params += [*same_params, value]
        same.append(f"{col.sql} = {mark}")
        same_params.append(value)
    return (" OR ".join(f"({t})" for t in terms) or "false"), params


def _select(
    query: Query,
    *,
    extra: list[tuple[str, list[Any]]] | None = None,
    stable: set[str] | frozenset[str] = frozenset(),
) -> tuple[str, list[Any], list[str]]:
    """``SELECT ... GROUP BY`` of the query (``extra`` WHERE conditions; the value columns named in
    ``stable`` aggregated in a fixed order), its parameters and the ORDER BY terms."""
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
    extra = list(extra or [])
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
        if query.samples and comp.samples is not None:  # its denominator's events, in the same scan
            cond, cond_params = _part_cond(comp.parts[comp.samples])
            outer.append(f"count(*) FILTER (WHERE {cond}) AS a1")
            outer_params += cond_params
    else:
        fld = query.metric.field
        if fld is None:
            inner_cols.append(("value AS v", []))
        else:
            expr, ps = field_sql(fld, numeric=True)
            inner_cols.append((f"{expr} AS v", ps))
        integers = fld is not None and fld.kind == "column" and fld.name in INTEGER_COLUMNS
        for i, fn in enumerate(agg.functions):
            text = "count(*)" if fn == "count" and fld is None else _AGG[fn]
            if fn in ("sum", "avg") and not integers:  # DOUBLEs: the same bits in any order
                total = exact_sum_sql("v")[0]
                text = total if fn == "sum" else f"({total}) / nullif(count(v), 0)"
            if fn in stable and fn in ORDER_DEPENDENT:
                text = text.replace("(v)", "(v ORDER BY v)")
            outer.append(f"{text} AS a{i}")
    where, where_params = where_sql(query, extra=extra)
    ncols = len(outer)
    ngroup = (1 if agg.time_bucket else 0) + len(agg.group_by)
    cols = query.output_columns
    order_by = [f"{cols.index(s.column) + 1} {'DESC' if s.descending else 'ASC'}" for s in query.sort]
    seen = {cols.index(s.column) + 1 for s in query.sort}
    order_by += [f"{i} ASC" for i in range(1, ncols + 1) if i not in seen]
    s = _Sql()
    s.add("SELECT " + ", ".join(outer), *outer_params)
    s.add("FROM (SELECT " + ", ".join(c for c, _ in inner_cols), *(p for _, ps in inner_cols for p in ps))
    s.add(f"      FROM events WHERE {where})", *where_params)
    if ngroup:
        s.add("GROUP BY " + ", ".join(str(i) for i in range(1, ngroup + 1)))
    return "\n".join(s.parts), s.params, order_by


def _placeholders(formula: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(formula) if name]
