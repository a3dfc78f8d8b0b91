"""What the export routes of :mod:`api.routers.query` share: the streamed response, its format, its
trailer when the time limit stops it, and the parameters of ``GET /api/v1/events/export``.

Usage (the routes do this)::

    fmt = export_format(request)                 # ?format=, else what Accept prefers, else CSV (406: none)
    tr = _export_range(request.query_params, now_us)      # start/end/last in the GET time grammar
    filters = [_export_filter(k, v) for k, v in params.multi_items() if k not in _EXPORT_PARAMS]
    return _streaming(stream.columns, iter(tracker), fmt, "events", _truncated(stream, tracker, limit, cursor))

A bad parameter is a :class:`~hubcore.query.model.QueryError` (a 422 naming it); these names are
re-exported by :mod:`api.routers.query`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response, StreamingResponse

from api.errors import error_response
from api.negotiation import NotAcceptable, negotiate
from hubcore.query.events import ENUMERATED
from hubcore.query.executor import RowStream
from hubcore.query.export import FORMATS, MEDIA_TYPES, KeyTracker, check_format, encode_batches
from hubcore.query.model import NUMERIC_COLUMNS, STRING_COLUMNS, Filter, QueryError, TimeRange, parse_field, parse_query
from hubcore.times import BadTimeError, parse_time_s


def _streaming(
    columns: list[str], batches: Any, fmt: str, name: str, trailer: Any = None, headers: dict[str, str] | None = None
) -> StreamingResponse:
    return StreamingResponse(
        encode_batches(columns, batches, fmt, trailer),
        media_type=FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"', **(headers or {})},
    )


def export_format(request: Request) -> str:
    """``?format=`` if given (an unknown one is a 422), else the media type ``Accept`` prefers (q-values
    honoured, ties to CSV, then JSON lines, then Parquet; :func:`api.negotiation.negotiate`), else CSV.
    Raises :class:`NotAcceptable` when ``Accept`` refuses every format."""
    requested = request.query_params.get("format")
    if requested:
        return check_format(requested)
    return MEDIA_TYPES[negotiate(request.headers.get("accept"), list(MEDIA_TYPES))]


def _not_acceptable(exc: NotAcceptable) -> Response:
    return error_response(
        406, "not_acceptable", f"{exc}; or choose with ?format={'|'.join(FORMATS)}", acceptable=exc.offers
    )


_EXPORT_CONTENT = {
    200: {
        "description": "the rows, streamed",
        "content": {"text/csv": {}, "application/x-ndjson": {}, "application/vnd.apache.parquet": {}},
    },
    406: {"description": "Accept refuses CSV, JSON lines and Parquet alike (q=0 or not listed)"},
}


#: Rows per batch an export reads from the store (one CSV chunk, one Parquet row group).
EXPORT_BATCH_ROWS = 65_536


def _export_timeout(time_limit: float) -> Response:
    return error_response(
        504, "export_timeout",
        f"the export could not start within {time_limit:g} s (service.query.export_time_limit); "
        "narrow the time range or add filters",
        timeout_s=time_limit,
    )  # fmt: skip


def _truncated(stream: RowStream, tracker: KeyTracker, time_limit: float, cursor: Callable[[], str]) -> Any:
    """The trailer of an export: None when it ran to its end, else what stopped it and how to resume."""

    def trailer() -> dict[str, Any] | None:
        if not stream.truncated:
            return None
        more = "" if tracker.rows else "; no row could be read in that time: narrow the time range or add filters"
        return {
            "truncated": True, "reason": "time_limit", "rows": tracker.rows, "next_cursor": cursor(),
            "message": f"the export stopped after {time_limit:g} s (service.query.export_time_limit) with more "
                       f"rows to send; send the same request with cursor=<next_cursor> to continue{more}",
        }  # fmt: skip

    return trailer


def _param_time(value: str | None, name: str, now_us: int) -> float | None:
    """A time query parameter in the grammar of every GET endpoint (ISO-8601, epoch seconds, now, -24h)."""
    try:
        return parse_time_s(value, name, now=now_us / 1e6)
    except BadTimeError as exc:
        raise QueryError(name, str(exc).removeprefix(f"{name} "), reason="bad_time") from None


#: The parameters of an events export besides its filters, in the order its unknown-parameter message names them.
_EXPORT_PARAM_ORDER = ("format", "start", "end", "last", "limit", "tenant", "cursor")
_EXPORT_PARAMS = set(_EXPORT_PARAM_ORDER)
MAX_EXPORT_LIMIT = 10**9


def _export_range(params: Any, now_us: int) -> TimeRange:
    """The window of an events export, in the time grammar of every GET endpoint (ISO-8601, epoch seconds,
    now, -24h): ``start``..``end`` (default now), else the ``last`` (default 24h) before ``end`` (default
    now). ``start`` with ``last`` is ambiguous: a 422 on ``last``."""
    start = _param_time(params.get("start"), "start", now_us)
    end = _param_time(params.get("end"), "end", now_us)
    last = params.get("last")
    if start is not None and last:
        raise QueryError("last", "give start (with or without end) or last (with or without end), not both")
    if start is not None:
        return parse_query({"time_range": {"start": start, "end": end}}, tenant="-", now_us=now_us).time_range
    end_us = now_us if end is None else int(end * 1_000_000)
    return parse_query({"time_range": {"last": last or "24h"}}, tenant="-", now_us=end_us).time_range


def _export_limit(raw: str | None) -> int | None:
    """``?limit=`` of an events export: None (every row) or 1 to :data:`MAX_EXPORT_LIMIT`, else a 422."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 1 <= int(raw) <= MAX_EXPORT_LIMIT):
        raise QueryError("limit", f"must be an integer between 1 and {MAX_EXPORT_LIMIT}, got {raw[:40]!r}")
    return int(raw)


def _export_filter(key: str, value: str) -> Filter:
    """An equality filter ``<field>=value`` of an events export (a number for a numeric field). A key that is
    neither a parameter nor a field (``lst=1h``) is a 422 ``unknown_parameter`` naming every one it takes; a
    value no event can have of an enumerated field (``severity=critcal``) a 422 naming the allowed ones."""
    if not key.startswith(("tags.", "payload.")) and key not in STRING_COLUMNS + NUMERIC_COLUMNS:
        raise QueryError(
            key[:64],
            f"unknown query parameter {key[:64]!r}; use {', '.join(_EXPORT_PARAM_ORDER)}, or a filter "
            f"<field>=value on {', '.join(STRING_COLUMNS + NUMERIC_COLUMNS)}, tags.<key>, payload.<path>",
            reason="unknown_parameter",
        )
    allowed = ENUMERATED.get(key)
    if allowed is not None and value not in allowed:
        raise QueryError(key, f"must be one of {', '.join(allowed)}, got {value[:64]!r}", reason="invalid_parameter")
    fld = parse_field(key, key)
    if not fld.numeric:
        return Filter(fld, "eq", value)
    try:
        number = float(value) if value.isascii() else math.nan  # float() reads other scripts' digits too
    except ValueError:
        number = math.nan
    if not math.isfinite(number):  # nan, inf and 1e999 (inf) had been taken as a value no row equals
        raise QueryError(key, f"field {fld.label!r} is numeric: give a finite number; got {value[:40]!r}")
    return Filter(fld, "eq", number)


def _check_repeated(params: Any) -> None:
    """422 for a parameter of an events export given twice: two equality filters on one field match nothing
    (``model=a&model=b``), and a repeated ``limit`` or ``start`` would silently be the last one."""
    seen: set[str] = set()
    for key, _ in params.multi_items():
        if key in seen:
            what = "" if key in _EXPORT_PARAMS else " (a filter is one equality; POST /api/v1/query/export takes 'in')"
            raise QueryError(key[:64], f"is given more than once; give it once{what}", reason="repeated_parameter")
        seen.add(key)
