"""The unified query: a small typed IR, parsed and validated from the API's JSON body.

Every backend (DuckDB SQL, PromQL, LogQL) compiles a :class:`Query`; nothing downstream sees raw JSON.

    >>> q = parse_query({"time_range": {"last": "24h"},
    ...                  "metric": {"event_type": "telemetry", "name": "gen_ai.client.operation.duration"},
    ...                  "filters": [{"field": "tags.team", "operator": "eq", "value": "search"}],
    ...                  "aggregation": {"time_bucket": "1h", "functions": ["p95"], "group_by": ["model"]}},
    ...                 tenant="t1", now_us=86_400_000_000 * 400)
    >>> q.output_columns
    ['bucket', 'model', 'p95']
    >>> q.filters[0].field.label
    'tags.team'

Errors are :class:`QueryError` (HTTP 422 by default) naming the offending field (``filters[0].operator``).
The IR itself (:class:`Query` and its parts, the allow-lists, the limits) is :mod:`hubcore.query.ir`; this
module parses into it and re-exports its names.
"""

from __future__ import annotations

import difflib
import math
import re
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hubcore.query.composite import COMPOSITES
from hubcore.query.ir import (
    _LAST,
    _PATH,
    _UNIT_S,
    ALL_TENANTS,
    BUCKETS,
    DEFAULT_LIMIT,
    FUNCTIONS,
    KEY_PATTERN,
    MAX_BUCKETS,
    MAX_IN_VALUES,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_PATH_KEYS,
    MAX_RANGE_DAYS,
    NUMERIC_COLUMNS,
    NUMERIC_OPERATORS,
    OPERATORS,
    STRING_COLUMNS,
    STRING_OPERATORS,
    Aggregation,
    FieldRef,
    Filter,
    Metric,
    Query,
    QueryError,
    SortKey,
    TimeRange,
    closest_composite,
    decode_offset_cursor,
)
from hubcore.times import MAX_TIME_S, MIN_TIME_S

#: The IR (the types, the allow-lists and the limits) is :mod:`hubcore.query.ir`; its names are re-exported here.
__all__ = [
    "ALL_TENANTS",
    "BUCKETS",
    "DEFAULT_LIMIT",
    "FUNCTIONS",
    "KEY_PATTERN",
    "MAX_BUCKETS",
    "MAX_IN_VALUES",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "MAX_PATH_KEYS",
    "MAX_RANGE_DAYS",
    "NUMERIC_COLUMNS",
    "NUMERIC_OPERATORS",
    "OPERATORS",
    "STRING_COLUMNS",
    "STRING_OPERATORS",
    "Aggregation",
    "FieldRef",
    "Filter",
    "Metric",
    "Query",
    "QueryError",
    "SortKey",
    "TimeRange",
    "closest_composite",
    "decode_offset_cursor",
    "parse_field",
    "parse_query",
    "re2_error",
    "with_samples",
]


# -- parsing ----------------------------------------------------------------------------------------


def parse_field(raw: Any, where: str, *, allow_numeric: bool = True) -> FieldRef:
    if not isinstance(raw, str) or not raw:
        raise QueryError(where, "must be a field name such as 'model', 'tags.team' or 'payload.metric_name'")
    for prefix, kind in (("tags.", "tag"), ("payload.", "payload")):
        if raw.startswith(prefix):
            path = raw[len(prefix) :]
            if not _PATH.fullmatch(path):
                raise QueryError(where, f"bad field path {raw!r}: letters, digits, '_' or '-', up to 5 dotted parts")
            return FieldRef(kind, path)  # type: ignore[arg-type]
    if raw in STRING_COLUMNS or (allow_numeric and raw in NUMERIC_COLUMNS):
        return FieldRef("column", raw)
    known = ", ".join(STRING_COLUMNS + (NUMERIC_COLUMNS if allow_numeric else ()))
    raise QueryError(where, f"unknown field {raw!r}; known fields: {known}, tags.<key>, payload.<path>")


def _parse_filter(raw: Any, i: int) -> Filter:
    where = f"filters[{i}]"
    if not isinstance(raw, dict):
        raise QueryError(where, "must be an object {field, operator, value}")
    fld = parse_field(raw.get("field"), f"{where}.field")
    op = raw.get("operator", raw.get("op", "eq"))
    if op not in OPERATORS:
        raise QueryError(f"{where}.operator", f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    allowed = NUMERIC_OPERATORS if fld.numeric else (OPERATORS if fld.kind != "column" else STRING_OPERATORS)
    if op not in allowed:
        kind = "numeric" if fld.numeric else "string"
        raise QueryError(
            f"{where}.operator",
            f"operator {op!r} is not valid for {kind} field {fld.label!r}; use {', '.join(allowed)}",
        )
    value = raw.get("value")
    vwhere = f"{where}.value"
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            raise QueryError(vwhere, f"operator {op!r} needs a list of 1-{MAX_IN_VALUES} values")
        for v in value:
            _check_scalar(v, fld, vwhere)
        value = tuple(value)
    elif op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise QueryError(vwhere, f"operator {op!r} needs a number")
    elif op in ("contains", "regex"):
        if not isinstance(value, str) or not value or len(value) > 1000:
            raise QueryError(vwhere, f"operator {op!r} needs a non-empty string of at most 1000 characters")
        if op == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise QueryError(vwhere, f"bad regex {value!r}: {exc}") from None
            refused = re2_error(value)
            if refused is not None:
                raise QueryError(vwhere, f"bad regex {value!r} (RE2 syntax): {refused}")
    else:
        _check_scalar(value, fld, vwhere)
    return Filter(fld, op, value)


_re2_lock = threading.Lock()
_re2_db: Any = None


def re2_error(pattern: str) -> str | None:
    """Why RE2 (the store's regex engine, and Loki's and Prometheus' dialect) refuses ``pattern``, or None.

    Python's ``re`` accepts look-arounds, back-references and possessive quantifiers that RE2 does not; the
    pattern is compiled by DuckDB's ``regexp_matches`` on a private in-memory database.

        >>> re2_error("^gpt-4") is None
        True
        >>> re2_error("gpt(?=-4)")
        'invalid perl operator: (?='
    """
    global _re2_db
    import duckdb

    with _re2_lock:
        if _re2_db is None:
            _re2_db = duckdb.connect(":memory:")
        try:
            _re2_db.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
        except duckdb.InvalidInputException as exc:
            return str(exc).splitlines()[0].removeprefix("Invalid Input Error: ")
    return None


def _check_scalar(value: Any, fld: FieldRef, where: str) -> None:
    if fld.numeric:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise QueryError(where, f"field {fld.label!r} is numeric; got {value!r}")
    elif not isinstance(value, str | int | float) or isinstance(value, bool) or len(str(value)) > 1000:
        raise QueryError(where, "must be a string or number (at most 1000 characters)")


def _parse_metric(raw: Any) -> Metric:
    if raw is None:
        return Metric()
    if isinstance(raw, str) and raw not in COMPOSITES:
        return replace(_parse_metric({"name": raw}), near_composite=closest_composite(raw))
    if isinstance(raw, str):
        raw = {"composite": raw}
    if not isinstance(raw, dict):
        raise QueryError("metric", "must be an object {event_type, name, field} or a composite metric name")
    unknown = set(raw) - {"event_type", "name", "field", "composite"}
    if unknown:
        raise QueryError("metric", f"unknown key(s) {sorted(unknown)}; use event_type, name, field or composite")
    composite = raw.get("composite")
    if composite is not None:
        if not isinstance(composite, str):
            raise QueryError("metric.composite", f"must be a composite metric name: {', '.join(COMPOSITES)}")
        if composite not in COMPOSITES:
            raise QueryError("metric.composite", f"unknown composite {composite!r}; known: {', '.join(COMPOSITES)}")
        if len(raw) > 1:
            raise QueryError("metric", "a composite metric takes no event_type, name or field")
        return Metric(composite=composite)
    event_type, name = raw.get("event_type"), raw.get("name")
    for key, val in (("event_type", event_type), ("name", name)):
        if val is not None and (not isinstance(val, str) or not val.strip() or len(val) > 256):
            raise QueryError(f"metric.{key}", "must be a non-blank string of at most 256 characters")
    if name in COMPOSITES and event_type is None and raw.get("field") is None:
        return Metric(composite=name)
    fld = None
    if raw.get("field") is not None:
        fld = parse_field(raw["field"], "metric.field")
        if fld.kind == "column" and not fld.numeric:
            raise QueryError("metric.field", f"field {fld.label!r} is not numeric; use {', '.join(NUMERIC_COLUMNS)} "
                             "or payload.<path>")  # fmt: skip
        if fld.kind == "tag":
            raise QueryError("metric.field", "tags are strings and cannot be aggregated; use a payload path")
    return Metric(event_type=event_type, name=name, field=fld)


def _parse_time(value: Any, where: str) -> int:
    """Epoch seconds (a number) or ISO-8601 text (naive = UTC) → µs, between 1970 and 2100 like every other
    time the API takes (:mod:`hubcore.times`); a number that is really milliseconds or microseconds is named."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise QueryError(where, f"must be a finite number of epoch seconds, got {value!r}")
        seconds = float(value)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise QueryError(where, f"not an ISO-8601 time: {value!r}") from None
        seconds = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    else:
        raise QueryError(where, "must be an ISO-8601 time such as 2026-01-01T00:00:00Z")
    if not MIN_TIME_S <= seconds <= MAX_TIME_S:
        hint = ""
        if isinstance(value, int | float) and MAX_TIME_S < seconds <= MAX_TIME_S * 1e6:
            hint = f" (epoch seconds; {value!r} looks like {'milli' if seconds <= MAX_TIME_S * 1e3 else 'micro'}seconds)"
        raise QueryError(where, f"must be between 1970-01-01 and 2100-01-01{hint}, got {value!r}")
    return int(seconds * 1_000_000)


def _parse_range(raw: Any, now_us: int) -> TimeRange:
    if raw is None:
        raw = {"last": "24h"}
    if not isinstance(raw, dict):
        raise QueryError("time_range", 'must be {"start", "end"} or {"last": "24h"}')
    unknown = sorted(str(k) for k in raw if k not in ("start", "end", "last"))
    if unknown:  # a typo ("stat", "from") had silently meant the last 24 hours
        raise QueryError(f"time_range.{unknown[0]}", 'unknown key: time_range takes "start", "end" or "last"')
    if "last" in raw:
        if raw.get("start") is not None or raw.get("end") is not None:
            raise QueryError("time_range", 'is ambiguous: give either {"last": ...} or {"start", "end"}, not both')
        m = _LAST.match(str(raw["last"]))
        if not m:
            raise QueryError("time_range.last", f"must look like 15m, 24h, 7d or 2w; got {raw['last']!r}")
        span = int(m.group(1)) * _UNIT_S[m.group(2)] * 1_000_000
        tr = TimeRange(now_us - span, now_us, str(raw["last"]))
    else:
        if "start" not in raw:
            raise QueryError("time_range.start", 'is required (or use {"last": "24h"})')
        start = _parse_time(raw["start"], "time_range.start")
        end = _parse_time(raw["end"], "time_range.end") if raw.get("end") is not None else now_us
        tr = TimeRange(start, end)
    if tr.end_us <= tr.start_us:
        raise QueryError("time_range", "end must be after start")
    if tr.seconds > MAX_RANGE_DAYS * 86400:
        raise QueryError("time_range", f"spans more than {MAX_RANGE_DAYS} days")
    return tr


def _parse_aggregation(raw: Any, metric: Metric, tr: TimeRange) -> Aggregation:
    raw = {} if raw is None else raw  # (0, "" or [] are not "no aggregation": a 422 below)
    if not isinstance(raw, dict):
        raise QueryError("aggregation", "must be an object {time_bucket, functions, group_by}")
    _no_unknown_keys(raw, ("time_bucket", "functions", "group_by"), "aggregation")  # a typo first: not its default
    bucket = raw.get("time_bucket")
    if bucket is not None:
        if not isinstance(bucket, str):
            raise QueryError("aggregation.time_bucket", f"must be one of {', '.join(BUCKETS)} or null")
        if bucket not in BUCKETS:
            raise QueryError("aggregation.time_bucket", f"unknown bucket {bucket!r}; use {', '.join(BUCKETS)} or null")
        n = tr.seconds / BUCKETS[bucket]
        if n > MAX_BUCKETS:
            bigger = next((b for b, s in BUCKETS.items() if tr.seconds / s <= MAX_BUCKETS), "1d")
            raise QueryError(
                "aggregation.time_bucket",
                f"bucket {bucket!r} is too small for the range: {int(n)} buckets > {MAX_BUCKETS}; use {bigger!r} or larger",
            )
    funcs = raw.get("functions")
    if metric.composite:
        if funcs not in (None, [], [metric.composite]):
            raise QueryError("aggregation.functions", f"composite metric {metric.composite!r} is already an aggregate; "
                             "omit functions")  # fmt: skip
        funcs = []
    elif funcs is None:
        funcs = ["count"]
    if not isinstance(funcs, list) or (not metric.composite and not funcs):
        raise QueryError("aggregation.functions", f"must be a non-empty list of {', '.join(FUNCTIONS)}")
    for i, fn in enumerate(funcs):
        if fn not in FUNCTIONS:
            raise QueryError(f"aggregation.functions[{i}]", f"unknown function {fn!r}; use {', '.join(FUNCTIONS)}")
    if len(set(funcs)) != len(funcs):
        raise QueryError("aggregation.functions", "lists a function twice")
    groups = raw.get("group_by")
    groups = [] if groups is None else groups
    if not isinstance(groups, list) or len(groups) > 8:
        raise QueryError("aggregation.group_by", "must be a list of at most 8 fields")
    refs = tuple(parse_field(g, f"aggregation.group_by[{i}]", allow_numeric=False) for i, g in enumerate(groups))
    if len({r.label for r in refs}) != len(refs):
        raise QueryError("aggregation.group_by", "lists a field twice")
    return Aggregation(bucket, tuple(funcs), refs)


def _no_unknown_keys(raw: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    """A :class:`QueryError` naming ``where.<key>`` for a key of ``raw`` not in ``known``, with the closest
    known one and the list (``aggregation.function: unknown key (did you mean functions?); ...``)."""
    unknown = sorted(set(raw) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise QueryError(f"{where}.{unknown[0]}", f"unknown key{hint}; {where} takes {', '.join(known)}")


def parse_query(
    body: Any,
    *,
    tenant: str,
    now_us: int,
    max_limit: int = MAX_LIMIT,
    paged: bool = True,
    received_by_us: int | None = None,
) -> Query:
    """Validate the API body into a :class:`Query` for ``tenant`` (``"*"``: all tenants; the API decides).

    ``received_by_us`` (the API passes the request's time) has a first page read only the events received by
    then, so that its ``next_cursor`` resumes on the same events; a ``cursor`` (``metadata.next_cursor``)
    resumes a query right after the last row of its page before (:func:`hubcore.query.paging.resume_page`).
    """
    if not isinstance(body, dict):
        raise QueryError("", "the body must be a JSON object", status=400, reason="bad_body")
    known = {"time_range", "filters", "metric", "aggregation", "sort", "limit", "offset", "cursor", "tenant",
             "timeout_ms"}  # fmt: skip
    unknown = set(body) - known
    if unknown:
        raise QueryError(sorted(unknown)[0], f"unknown key; the body takes {', '.join(sorted(known))}")
    tr = _parse_range(body.get("time_range"), now_us)
    raw_filters = body.get("filters")
    raw_filters = [] if raw_filters is None else raw_filters  # {}, 0 or "" had meant "no filters"
    if not isinstance(raw_filters, list):
        one = " (one filter is a list of one: [{...}])" if isinstance(raw_filters, dict) else ""
        raise QueryError("filters", f"must be a list of filters, got {type(raw_filters).__name__}{one}")
    if len(raw_filters) > 50:
        raise QueryError("filters", f"must be a list of at most 50 filters, got {len(raw_filters)}")
    filters = tuple(_parse_filter(f, i) for i, f in enumerate(raw_filters))
    metric = _parse_metric(body.get("metric"))
    agg = _parse_aggregation(body.get("aggregation"), metric, tr)
    q = Query(tenant, tr, metric, filters, agg)
    cols = q.output_columns
    sort: list[SortKey] = []
    raw_sort = body.get("sort")
    raw_sort = [] if raw_sort is None else raw_sort
    if not isinstance(raw_sort, list):
        raise QueryError("sort", "must be a list of {field, order}")
    for i, s in enumerate(raw_sort):
        if not isinstance(s, dict) or s.get("field") not in cols:
            got = s.get("field") if isinstance(s, dict) else s
            raise QueryError(f"sort[{i}].field", f"{got!r} is not an output column; sortable: {', '.join(cols)}")
        order = str(s.get("order", "asc")).lower()
        if order not in ("asc", "desc"):
            raise QueryError(f"sort[{i}].order", "must be 'asc' or 'desc'")
        sort.append(SortKey(s["field"], order == "desc"))
    limit = body.get("limit", DEFAULT_LIMIT if paged else None)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_limit):
        raise QueryError("limit", f"must be an integer between 1 and {max_limit}")
    offset = body.get("offset", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise QueryError("offset", f"must be an integer between 0 and {MAX_OFFSET}")
    q = replace(q, sort=tuple(sort), limit=limit, offset=offset, received_by_us=received_by_us)
    if body.get("cursor") is not None:
        from hubcore.query.paging import resume_page  # paging builds on this module

        q = resume_page(q, body["cursor"])
    return q


def with_samples(query: Query) -> Query:
    """``query`` (a composite's) with its samples per row as a second value column, ``samples``, of the same
    scan (:attr:`Query.samples`). A :class:`QueryError` on ``metric`` for a query that is not a composite's,
    or a composite with no samples (``error_adjusted_throughput`` divides by the bucket's length).

        >>> q = parse_query({"metric": "error_rate", "aggregation": {"time_bucket": "5m"}}, tenant="t", now_us=10**15)
        >>> with_samples(q).output_columns
        ['bucket', 'error_rate', 'samples']
    """
    composite = COMPOSITES.get(query.metric.composite or "")
    if composite is None or composite.samples is None:
        what = f"composite {composite.name!r}" if composite else "a query that is not a composite's"
        raise QueryError("metric", f"{what} has no samples (events of its denominator) to count")
    return replace(query, samples=True)
