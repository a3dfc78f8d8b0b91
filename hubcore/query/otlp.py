"""Read back the OTLP spans and log records of the embedded store: one trace, or a filtered list newest first.

Every read is scoped to one tenant. Lists page by an opaque keyset cursor over ``(time, key)``: ``key`` is
``trace_id || span_id`` for spans and a hash of the record's columns for logs. Rows that tie on both (the
same span or log record sent twice) are told apart by how many of them the previous pages returned, so
paging neither loses nor repeats a row. A cursor is bound to the query it was made for (:meth:`_Page.scope`:
the route, tenant, filters and time window, not the page size): sent with another, it is a 422.

>>> q = SpanListQuery(tenant_id="t1", service="chat", status="error", limit=2)
>>> sql, params = q.to_sql()
>>> "status_code = ?" in sql, params[:3]
(True, ['t1', 'chat', 'ERROR'])
>>> LogListQuery(tenant_id="t1", contains="100%_sure").to_sql()[1][1]
'%100\\\\%\\\\_sure%'
"""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from hubcore.errors import InvalidParameter
from hubcore.mapping import EVENTS_TO_SPANS_SQL, mapping_over, trace_key
from hubcore.query.export import export_scope

MAX_LIMIT: Final = 1000
#: The most spans ``GET /api/v1/traces/{trace_id}`` returns (a longer trace is answered ``truncated``).
MAX_TRACE_SPANS: Final = 10_000
MAX_CONTAINS: Final = 256
#: The most rows tying on (time, key) a cursor may say were returned (exact duplicates of one span or record).
MAX_TIES: Final = 100_000
#: The latest time a cursor may hold, in µs: OTLP times are unsigned 64-bit nanoseconds (year 2554), so no stored
#: row is later; a tampered cursor must not reach the store as a timestamp out of its range (a 500).
MAX_CURSOR_US: Final = 2**64 // 1000
TRACE_ID_RE: Final = re.compile(r"^[0-9a-fA-F]{32}$")
STATUS_CODES: Final = ("UNSET", "OK", "ERROR")
#: OTLP severity ranges: a level name means "at least the lowest number of that level".
SEVERITY_LEVELS: Final[dict[str, int]] = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "WARNING": 13,
                                          "ERROR": 17, "FATAL": 21}  # fmt: skip

_SPAN_COLUMNS = ("tenant_id", "trace_id", "span_id", "parent_span_id", "name", "kind", "duration_ms",
                 "status_code", "status_message", "service_name", "model", "provider", "operation",
                 "error_type", "attributes", "resource", "events", "source", "event_id")  # fmt: skip
_LOG_COLUMNS = ("tenant_id", "service_name", "severity_number", "severity_text", "body", "event_name",
                "trace_id", "span_id", "scope_name", "attributes", "resource")  # fmt: skip
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SPAN_KEY = "(trace_id || span_id)"
#: the same span sent twice with different contents: its copies in a fixed order
_SPAN_TIE_ORDER = (", hash(end_ts, parent_span_id, name, kind, status_code, status_message, service_name, "
                   "attributes, resource, events, source) DESC")  # fmt: skip
_SPAN_KEY_RE: Final = re.compile(r"^[0-9a-f]{48}$")
_LOG_KEY = ("hash(service_name, severity_number, severity_text, body, event_name, trace_id, span_id, "
            "scope_name, attributes, resource, observed_ts)")  # fmt: skip


def check_trace_id(value: str, name: str = "trace_id") -> str:
    """The trace id in lowercase hex; 422 naming ``name`` unless it is 32 hex characters."""
    if not TRACE_ID_RE.match(value) or not value.strip("0"):
        raise InvalidParameter(f"{name} must be 32 hex characters (16 bytes, not all zeros), got {value[:64]!r}")
    return value.lower()


def check_time_range(start_us: int | None, end_us: int | None) -> None:
    if start_us is not None and end_us is not None and start_us > end_us:
        raise InvalidParameter("start must not be after end", reason="bad_time")


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameter(f"limit must be between 1 and {MAX_LIMIT}", reason="bad_limit")


class _Page:
    """Shared keyset paging: ``ORDER BY time DESC, key DESC``, the cursor ``[time_us, key, seen, scope]``.

    ``window``: the time window as the request gave it (its raw ``start`` and ``end``), which the cursor is
    bound to: a relative ``-1h`` stays the same text from page to page while its time moves. None: the
    window is ``(start_us, end_us)``.
    """

    #: what the list is of (a cursor of one list is refused by another)
    kind = ""

    def __init__(self, tenant_id: str, start_us: int | None, end_us: int | None, limit: int,
                 cursor: str | None, window: tuple[str | None, str | None] | None = None) -> None:  # fmt: skip
        self.tenant_id, self.start_us, self.end_us, self.limit, self.cursor = tenant_id, start_us, end_us, limit, cursor
        self.window: tuple[Any, Any] = window if window is not None else (start_us, end_us)

    def _filters(self) -> list[Any]:
        """The filter values of the query (each list's own), as the cursor is bound to them."""
        return []

    def scope(self) -> str:
        """A short digest of the query a cursor is bound to: the list, tenant, filters and time window (not the
        page size, which may change from page to page)."""
        return export_scope(self.kind, self.tenant_id, self._filters(), list(self.window))

    def _resume(self) -> tuple[int, str | int, int]:
        """The cursor's ``(time_us, key, seen)``; a 422 ``bad_cursor`` if it is not one of this query."""
        assert self.cursor is not None
        ts_us, key, seen, scope = decode_cursor(self.cursor)
        if scope != self.scope():
            raise InvalidParameter(
                "cursor belongs to another query (other filters, time window or tenant) or to an earlier version of "
                "the hub: repeat the request that returned it with the same filters, or drop the cursor to start "
                "from the first page",
                reason="bad_cursor",
            )
        return ts_us, key, seen

    def _page_sql(self, table: str, columns: str, time_col: str, key_sql: str,
                  where: list[str], params: list[Any], tie_order: str = "") -> tuple[str, list[Any]]:  # fmt: skip
        """``tie_order``: more ORDER BY terms making the order of rows that tie on (time, key) deterministic
        (whatever differs between them), so that skipping the first ``seen`` of them skips those returned."""
        check_limit(self.limit)
        check_time_range(self.start_us, self.end_us)
        where = ["tenant_id = ?", *where]
        params = [self.tenant_id, *params]
        if self.start_us is not None:
            where.append(f"{time_col} >= make_timestamp(?)")
            params.append(self.start_us)
        if self.end_us is not None:
            where.append(f"{time_col} < make_timestamp(?)")
            params.append(self.end_us)
        seen = 0
        if self.cursor:
            ts_us, key, seen = self._resume()
            # a cursor of another route (or a forged one) would otherwise compare a hash with a string:
            # spans key on their ids, log records and metric points on a hash
            if (type(key) is int) != (key_sql != _SPAN_KEY) or (type(key) is str and not _SPAN_KEY_RE.match(key)):
                raise InvalidParameter(
                    "cursor is not valid for this route; pass next_cursor from a previous answer unchanged",
                    reason="bad_cursor",
                )
            # rows tying on (time, key) with the cursor's row come first: the first `seen` were returned
            where.append(f"({time_col} < make_timestamp(?) OR ({time_col} = make_timestamp(?) AND {key_sql} <= ?))")
            params += [ts_us, ts_us, key]
        sql = (
            f"SELECT {columns}, epoch_us({time_col}) AS t_us, {key_sql} AS k FROM {table}"
            f" WHERE {' AND '.join(where)} ORDER BY {time_col} DESC, k DESC{tie_order} LIMIT ?"
        )
        params.append(self.limit + 1 + seen)
        return sql, params

    def page(self, rows: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], str | None]:
        """The page's rows (each ending with ``t_us, k``) and ``next_cursor``, from the rows of :meth:`to_sql`."""
        if self.cursor:
            ts_us, key, seen = self._resume()
            skip = 0
            while skip < len(rows) and skip < seen and rows[skip][-2] == ts_us and rows[skip][-1] == key:
                skip += 1
            rows = rows[skip:]
        else:
            ts_us, key, seen = 0, None, 0
        more = len(rows) > self.limit
        rows = rows[: self.limit]
        if not more or not rows:
            return rows, None
        last_t, last_k = rows[-1][-2], rows[-1][-1]
        count = sum(1 for r in rows if r[-2] == last_t and r[-1] == last_k)
        if self.cursor and (last_t, last_k) == (ts_us, key):
            count += seen  # the whole page tied with the cursor's row: add the ones skipped
        return rows, encode_cursor(last_t, last_k, count, self.scope())


class SpanListQuery(_Page):
    """Spans newest first (by start time)."""

    kind = "spans"

    def __init__(self, tenant_id: str, *, service: str | None = None, name: str | None = None,
                 status: str | None = None, model: str | None = None, trace_id: str | None = None,
                 min_duration_ms: float | None = None, start_us: int | None = None, end_us: int | None = None,
                 limit: int = 100, cursor: str | None = None,
                 window: tuple[str | None, str | None] | None = None) -> None:  # fmt: skip
        super().__init__(tenant_id, start_us, end_us, limit, cursor, window)
        self.service, self.name, self.status, self.model = service, name, status, model
        self.trace_id, self.min_duration_ms = trace_id, min_duration_ms

    def _filters(self) -> list[Any]:
        return [self.service, self.name, self.status, self.model, self.trace_id, self.min_duration_ms]

    def to_sql(self) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("service_name", self.service), ("name", self.name), ("model", self.model)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if self.status is not None:
            status = self.status.upper()
            if status not in STATUS_CODES:
                raise InvalidParameter(f"status must be one of {', '.join(STATUS_CODES)}, got {self.status[:64]!r}")
            where.append("status_code = ?")
            params.append(status)
        if self.trace_id is not None:
            where.append("trace_id = ?")
            params.append(check_trace_id(self.trace_id))
        if self.min_duration_ms is not None:
            if not math.isfinite(self.min_duration_ms) or self.min_duration_ms < 0:
                raise InvalidParameter("min_duration_ms must be a finite number >= 0")
            where.append("duration_ms >= ?")
            params.append(self.min_duration_ms)
        columns = ", ".join(_SPAN_COLUMNS) + ", start_ts, end_ts"
        return self._page_sql("spans", columns, "start_ts", _SPAN_KEY, where, params, _SPAN_TIE_ORDER)


class LogListQuery(_Page):
    """Log records newest first (by their time)."""

    kind = "logs"

    def __init__(self, tenant_id: str, *, service: str | None = None, severity: str | None = None,
                 trace_id: str | None = None, contains: str | None = None, start_us: int | None = None,
                 end_us: int | None = None, limit: int = 100, cursor: str | None = None,
                 window: tuple[str | None, str | None] | None = None) -> None:  # fmt: skip
        super().__init__(tenant_id, start_us, end_us, limit, cursor, window)
        self.service, self.severity, self.trace_id, self.contains = service, severity, trace_id, contains

    def _filters(self) -> list[Any]:
        return [self.service, self.severity, self.trace_id, self.contains]

    def to_sql(self) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if self.service is not None:
            where.append("service_name = ?")
            params.append(self.service)
        if self.severity is not None:
            where.append("severity_number >= ?")
            params.append(severity_floor(self.severity))
        if self.trace_id is not None:
            where.append("trace_id = ?")
            params.append(check_trace_id(self.trace_id))
        if self.contains is not None:
            if not 1 <= len(self.contains) <= MAX_CONTAINS:
                raise InvalidParameter(f"contains must be 1 to {MAX_CONTAINS} characters")
            where.append("body ILIKE ? ESCAPE '\\'")
            params.append("%" + like_escape(self.contains) + "%")
        columns = ", ".join(_LOG_COLUMNS) + ", ts, observed_ts"
        return self._page_sql("logs", columns, "ts", _LOG_KEY, where, params)


def like_escape(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern with ``ESCAPE '\\'``.

    >>> like_escape("50%_a\\\\b")
    '50\\\\%\\\\_a\\\\\\\\b'
    """
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def severity_floor(value: str) -> int:
    """The lowest ``severity_number`` a ``severity`` parameter keeps: a level name or a number 1-24.

    >>> severity_floor("warn"), severity_floor("18")
    (13, 18)
    """
    text = value.strip().upper()
    if text in SEVERITY_LEVELS:
        return SEVERITY_LEVELS[text]
    if text.isdigit() and 1 <= int(text) <= 24:
        return int(text)
    raise InvalidParameter(
        f"severity must be TRACE, DEBUG, INFO, WARN, ERROR, FATAL or a number 1-24, got {value[:64]!r}"
    )


def trace_sql(tenant_id: str, trace_id: str) -> tuple[str, list[Any]]:
    """Every span of one trace (at most :data:`MAX_TRACE_SPANS` + 1), by start time (roots first among spans
    that start together; :func:`parents_first` puts every parent before its children): the OTLP spans and those mapped from the tenant's native events of the trace
    (:data:`hubcore.mapping.EVENTS_TO_SPANS_SQL` over the events whose stored ``trace_key`` is this trace's —
    a 4-byte compare per event, none is hashed — with the synthetic root span they hang under; an event of
    another trace with the same key maps onto that trace's id and is left out)."""
    tid = check_trace_id(trace_id)
    columns = ", ".join(_SPAN_COLUMNS) + ", start_ts, end_ts"
    events = mapping_over(EVENTS_TO_SPANS_SQL, "SELECT * FROM events WHERE tenant_id = ? AND trace_key = ?")
    sql = (
        f"SELECT {columns}, epoch_us(start_ts) AS t_us, {_SPAN_KEY} AS k FROM ("
        f"SELECT * FROM spans WHERE tenant_id = ? AND trace_id = ?"
        f" UNION ALL BY NAME (SELECT * FROM ({events}) WHERE trace_id = ?))"
        " ORDER BY start_ts, parent_span_id IS NOT NULL, span_id LIMIT ?"
    )
    return sql, [tenant_id, tid, tenant_id, trace_key(tid), tid, MAX_TRACE_SPANS + 1]


def encode_cursor(ts_us: int, key: str | int, seen: int, scope: str) -> str:
    """The cursor resuming after the ``seen``-th row tying on ``(ts_us, key)`` of the query whose
    :meth:`_Page.scope` is ``scope``.

    >>> decode_cursor(encode_cursor(5, "ab", 1, "0123"))
    (5, 'ab', 1, '0123')
    """
    return base64.urlsafe_b64encode(msgspec.json.encode([ts_us, key, seen, scope])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str | int, int, str | None]:
    """``(time_us, key, seen, scope)`` of a cursor; scope None for a cursor of an earlier hub (``[time_us, key,
    seen]``, bound to no query); a 422 ``bad_cursor`` for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode()))
        if type(data) is not list or len(data) not in (3, 4):
            raise ValueError
        ts_us, key, seen = data[:3]
        scope = data[3] if len(data) == 4 else None
        if type(ts_us) is not int or type(key) not in (int, str) or type(seen) is not int or seen < 1:
            raise ValueError
        if (type(key) is int and not 0 <= key < 2**64) or seen > MAX_TIES or not 0 <= ts_us <= MAX_CURSOR_US:
            raise ValueError
        if len(data) == 4 and type(scope) is not str:
            raise ValueError
        return ts_us, key, seen, scope
    except (ValueError, TypeError, msgspec.DecodeError):
        raise InvalidParameter(
            "cursor is not valid; pass next_cursor from a previous answer unchanged", reason="bad_cursor"
        ) from None


def _iso(dt: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO-8601 with microseconds always (so the strings sort as the times)."""
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(text: str | None, empty: Any) -> Any:
    return msgspec.json.decode(text) if text else empty


def parents_first(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows of :func:`trace_sql` by start time, a span after its parent where they start at the same time
    (a policy check and the request span around it often do: the SQL order put only the root first).
    A span whose parent is not among ``rows`` counts as a root; a parent cycle is cut where it closes.

        >>> n = len(_SPAN_COLUMNS)
        >>> def row(span, parent, start):
        ...     r = [None] * (n + 2)
        ...     r[2], r[3], r[n] = span, parent, start
        ...     return tuple(r)
        >>> [r[2] for r in parents_first([row("root", None, 1), row("c", "b", 2), row("b", "root", 2)])]
        ['root', 'b', 'c']
    """
    start_col = len(_SPAN_COLUMNS)
    parent_of = {r[2]: r[3] for r in rows}
    depth: dict[Any, int] = {}

    def depth_of(span: Any) -> int:
        chain: list[Any] = []
        seen: set[Any] = set()
        while span in parent_of and span not in depth and span not in seen:
            seen.add(span)
            chain.append(span)
            span = parent_of[span]
        d = depth.get(span, -1) if span in depth else -1
        for s in reversed(chain):
            d += 1
            depth[s] = d
        return depth[chain[0]] if chain else depth.get(span, 0)

    keyed = [(r[start_col], depth_of(r[2]), i) for i, r in enumerate(rows)]
    return [rows[k[2]] for k in sorted(keyed, key=lambda k: (k[0] is None, k[0] or 0, k[1], k[2]))]


def span_dicts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """API spans from rows of :class:`SpanListQuery` / :func:`trace_sql`."""
    out = []
    n = len(_SPAN_COLUMNS)
    for r in rows:
        sp = dict(zip(_SPAN_COLUMNS, r[:n], strict=True))
        sp["start_time"], sp["end_time"] = _iso(r[n]), _iso(r[n + 1])
        sp["attributes"] = _json(sp["attributes"], {})
        sp["resource"] = _json(sp["resource"], {})
        sp["events"] = [
            {"name": e.get("name"), "time": _iso_us(e.get("ts")), "attributes": e.get("attributes") or {}}
            for e in _json(sp["events"], [])
        ]
        out.append(sp)
    return out


def _iso_us(us: Any) -> str | None:
    """A span event's time (integer µs) as ISO-8601 UTC, exactly."""
    if type(us) is not int:
        return None
    return (_EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log_dicts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """API log records from rows of :class:`LogListQuery`."""
    out = []
    n = len(_LOG_COLUMNS)
    for r in rows:
        rec = dict(zip(_LOG_COLUMNS, r[:n], strict=True))
        rec["timestamp"], rec["observed_timestamp"] = _iso(r[n]), _iso(r[n + 1])
        rec["attributes"] = _json(rec["attributes"], {})
        rec["resource"] = _json(rec["resource"], {})
        out.append(rec)
    return out
