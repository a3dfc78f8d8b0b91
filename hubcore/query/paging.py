"""Keyset paging of ``POST /api/v1/query``: ``metadata.next_cursor`` resumes right after the last row of its
page, in the query's total order (:func:`~hubcore.query.compile_duckdb.export_key`: the sort, then the bucket
and group columns), on the first page's time window and on the events it read (received by then), with the
aggregates sorted on computed in a fixed order — the way a stopped export resumes (:mod:`hubcore.query.export`,
whose cursor this is, of kind ``page``). So the pages, concatenated, are the unpaged answer: no row twice, none
left out, whatever is written meanwhile.

    >>> from hubcore.query.model import parse_query
    >>> body = {"time_range": {"last": "1h"}, "aggregation": {"functions": ["sum"], "group_by": ["model"]},
    ...         "sort": [{"field": "sum", "order": "desc"}], "limit": 2}
    >>> first = parse_query(body, tenant="t1", now_us=10**15, received_by_us=10**15)
    >>> cursor = next_page_cursor(first, first.output_columns, ("gpt-4o", 2.5), sent=2)
    >>> later = parse_query({**body, "cursor": cursor}, tenant="t1", now_us=10**15 + 60_000_000)
    >>> later.after, later.offset, later.time_range == first.time_range, later.received_by_us
    ((2.5, 'gpt-4o'), 2, True, 1000000000000000)

An offset cursor of an earlier hub (``{"o": offset, "q": hash}``) still resumes, as that offset.
"""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from hubcore.query.compile_duckdb import KeyColumn, export_key
from hubcore.query.export import CURSOR_KINDS, QueryExportCursor, decode_query_cursor, encode_query_cursor, export_scope
from hubcore.query.model import Query, QueryError, decode_offset_cursor

PAGE: Final = "page"
_EPOCH: Final = datetime(1970, 1, 1)


def page_scope(query: Query) -> str:
    """What a page cursor is tied to: the query and its tenant, not its page size or offset."""
    return export_scope(PAGE, query.fingerprint(with_page=False))


def row_key(query: Query, columns: list[str], row: tuple[Any, ...] | list[Any]) -> list[Any]:
    """The :func:`export_key` values of one result row (a bucket as epoch microseconds)."""
    out = []
    for k in export_key(query):
        value = row[columns.index(k.label)]
        if k.kind == "bucket" and isinstance(value, datetime):
            naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
            value = (naive - _EPOCH) // timedelta(microseconds=1)
        out.append(value)
    return out


def compare_keys(key: list[KeyColumn], a: list[Any], b: list[Any]) -> int:
    """-1, 0 or 1 as the row keyed ``a`` comes before, with or after the one keyed ``b``: the order the SQL
    of :func:`~hubcore.query.compile_duckdb.compile_export` gives (NULLs last in either direction, a NaN
    above every number), for the backends that sort in Python.

        >>> col = KeyColumn("sum", "a0", True, "value")
        >>> [compare_keys([col], [x], [1.0]) for x in (2.0, 1.0, 0.5, None, float("nan"))]
        [-1, 0, 1, 1, -1]
    """
    for col, x, y in zip(key, a, b, strict=True):
        if x is None or y is None:
            if (x is None) != (y is None):
                return 1 if x is None else -1
            continue
        rx, ry = _rank(x), _rank(y)
        if rx != ry:
            ahead = 1 if rx > ry else -1
            return -ahead if col.descending else ahead
    return 0


def _rank(value: Any) -> tuple[bool, Any]:
    nan = isinstance(value, float) and value != value
    return nan, 0.0 if nan else value


def next_page_cursor(
    query: Query,
    columns: list[str],
    last_row: tuple[Any, ...] | list[Any],
    *,
    sent: int,
) -> str:
    """The cursor of the page after the one that ended with ``last_row`` (``sent``: rows up to its end). A
    query without ``received_by_us`` (not from the API) pins the events received by now."""
    tr = query.time_range
    received = query.received_by_us if query.received_by_us is not None else time.time_ns() // 1000
    after = row_key(query, columns, last_row)
    cursor = QueryExportCursor(tr.start_us, tr.end_us, received, after, page_scope(query), sent)
    return encode_query_cursor(cursor, of=PAGE)


def resume_page(query: Query, raw: Any) -> Query:
    """``query`` (parsed from a body) as the page its ``cursor`` ``raw`` asks for: after the cursor's key, on
    its window (a relative ``last`` does not slide) and events; a 422 on ``cursor`` when ``raw`` is not a
    cursor of this API or belongs to another query (another body or tenant)."""
    not_one, another = CURSOR_KINDS[PAGE]
    if _is_offset_cursor(raw):
        offset, fingerprint = decode_offset_cursor(raw)
        if fingerprint != query.fingerprint(with_page=False)[:12]:
            raise QueryError("cursor", another)
        return replace(query, offset=offset)
    c = decode_query_cursor(raw, page_scope(query), [k.kind for k in export_key(query)], of=PAGE)
    tr = query.time_range
    if c.after is None or not tr.resumable_in(c.start_us, c.end_us):
        raise QueryError("cursor", not_one)
    return replace(
        query,
        time_range=replace(tr, start_us=c.start_us, end_us=c.end_us),
        after=tuple(c.after),
        received_by_us=c.received_by_us,
        offset=c.sent,
    )


def _is_offset_cursor(raw: Any) -> bool:
    """Whether ``raw`` is shaped like an offset cursor of an earlier hub (JSON without the kind ``"x"``)."""
    try:
        data = msgspec.json.decode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except Exception:
        return False
    return isinstance(data, dict) and "x" not in data and "o" in data
