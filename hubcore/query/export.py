"""Streaming exports: Arrow record batches → CSV, JSON lines or Parquet bytes, one batch at a time.

Nothing holds the whole result: each batch is encoded and handed on (Parquet writes one row group per
batch into a sink that is drained after every write; the footer comes last).

    >>> import pyarrow as pa
    >>> batch = pa.RecordBatch.from_pydict({"model": ["a", "b"], "sum": [1.5, 2.0]})
    >>> b"".join(encode_batches(["model", "sum"], iter([batch]), "jsonl"))
    b'{"model":"a","sum":1.5}\\n{"model":"b","sum":2.0}\\n'
    >>> b"".join(encode_batches(["model", "sum"], iter([batch]), "csv")).splitlines()[0]
    b'"model","sum"'

Raw events: :func:`events_export_sql` selects a tenant's (or every tenant's) events (oldest first) with
the unified query's filters, for ``GET /api/v1/events/export``. Such an export is resumable: its rows are
in a total order (:data:`EVENT_KEY`), :class:`KeyTracker` follows the key of the last row handed on, and
an export stopped at its time limit ends with a trailer (:func:`encode_batches`' ``trailer``) whose
``next_cursor`` (:func:`encode_export_cursor`) continues right after that row.

Unified queries (``POST /api/v1/query/export``) resume the same way, on the query's own total order
(:func:`~hubcore.query.compile_duckdb.export_key`): :class:`QueryKeyTracker` and
:func:`encode_query_cursor`, whose cursor also pins the events the first answer read (received by then).
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hubcore.query.compile_duckdb import KeyColumn, filter_sql
from hubcore.query.model import ALL_TENANTS, MAX_RANGE_DAYS, Filter, QueryError
from hubcore.times import MAX_TIME_S, MIN_TIME_S

FORMATS: Final = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
#: Media types an export is sent as for an ``Accept`` header, in the server's order of preference (CSV,
#: then JSON lines, then Parquet; the first of each format is what ``Content-Type`` says).
MEDIA_TYPES: Final = {
    "text/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json-lines": "jsonl",
    "application/vnd.apache.parquet": "parquet",
    "application/parquet": "parquet",
}
EVENT_COLUMNS: Final = (
    "event_id", "ts", "received_at", "source_module", "event_type", "severity", "environment",
    "correlation_id", "schema_version", "name", "value", "unit", "status", "model", "provider", "asset_id",
    "team", "project", "user_id", "input_tokens", "output_tokens", "tags", "payload",
)  # fmt: skip


def check_format(requested: str) -> str:
    """``?format=`` of an export; an unknown one is a 422 on ``format``."""
    if requested not in FORMATS:
        raise QueryError("format", f"unknown export format {requested!r}; use {', '.join(FORMATS)}")
    return requested


def _textual(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Timestamps as ISO-8601 ``...Z`` strings (CSV and JSON have no time type)."""
    arrays = []
    for col in batch.columns:
        if pa.types.is_timestamp(col.type):
            col = pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ")
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


class _Sink(io.RawIOBase):
    """A write-only file that keeps what was written until :meth:`drain`."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.chunks.append(data)
        return len(data)

    def drain(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


#: Parquet footer key of an export's trailer (:func:`encode_batches`).
TRAILER_KEY: Final = "hub.export"


def encode_batches(
    columns: list[str],
    batches: Iterator[pa.RecordBatch],
    fmt: str,
    trailer: Callable[[], dict[str, Any] | None] | None = None,
) -> Iterator[bytes]:
    """Yield the encoded bytes of ``batches`` (header first for CSV; Parquet footer last).

    ``trailer``, called once every batch is out, may return a JSON object that ends the export (an export
    stopped at its time limit says so and how to resume): in JSON lines its own last line, in CSV a last
    line ``#`` + the object (data lines start with a quote, so a ``#`` line is never a row; readers with a
    comment character, e.g. ``pandas.read_csv(comment="#")``, skip it), in Parquet the footer's key-value
    metadata under :data:`TRAILER_KEY`.

        >>> import pyarrow as pa
        >>> batch = pa.RecordBatch.from_pydict({"a": [1]})
        >>> b"".join(encode_batches(["a"], iter([batch]), "csv", lambda: {"truncated": True}))
        b'"a"\\n1\\n#{"truncated":true}\\n'
    """
    enc = msgspec.json.Encoder()
    if fmt == "jsonl":
        for batch in batches:
            rows = _textual(batch).to_pylist()
            if rows:
                yield b"".join(enc.encode(r) + b"\n" for r in rows)
        end = trailer() if trailer is not None else None
        if end is not None:
            yield enc.encode(end) + b"\n"
        return
    sink = _Sink()
    if fmt == "csv":
        writer: Any = None
        for batch in batches:
            batch = _textual(batch)
            if writer is None:
                writer = pacsv.CSVWriter(sink, batch.schema)
            writer.write_batch(batch)
            yield sink.drain()
        if writer is None:
            yield (",".join(f'"{c}"' for c in columns) + "\n").encode()
        else:
            writer.close()
            yield sink.drain()
        end = trailer() if trailer is not None else None
        if end is not None:
            yield b"#" + enc.encode(end) + b"\n"
        return
    if fmt != "parquet":
        raise QueryError("format", f"unknown export format {fmt!r}; use {', '.join(FORMATS)}")
    pwriter: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    for batch in batches:
        if pwriter is None:
            schema = batch.schema
            pwriter = pq.ParquetWriter(sink, schema, compression="zstd")
        if batch.num_rows:
            pwriter.write_batch(batch.cast(schema) if schema is not None and batch.schema != schema else batch)
            yield sink.drain()
    if pwriter is None:
        pwriter = pq.ParquetWriter(sink, pa.schema([pa.field(c, pa.string()) for c in columns]))
    end = trailer() if trailer is not None else None
    if end is not None:
        pwriter.add_key_value_metadata({TRAILER_KEY: enc.encode(end).decode()})
    pwriter.close()
    yield sink.drain()


#: The total order of an events export (ties of time broken by the event id, then by when it was received:
#: the same event sent again after the de-duplication window is a second row). Every tenant's: tenant too.
EVENT_KEY: Final = ("ts", "event_id", "coalesce(epoch_us(received_at), -1)")
ALL_TENANTS_KEY: Final = ("ts", "tenant_id", "event_id", "coalesce(epoch_us(received_at), -1)")


def events_export_sql(
    tenant: str,
    filters: list[Filter],
    start_us: int,
    end_us: int,
    limit: int | None = None,
    after: list[Any] | None = None,
) -> tuple[str, list[Any], list[str]]:
    """SQL for a tenant's raw events in ``[start, end)``, oldest first, filtered like the unified query.

    ``tenant`` ``"*"`` (:data:`ALL_TENANTS`; the API lets only platform admins ask) selects every tenant's
    events, with a leading ``tenant_id`` column to tell them apart. ``after`` (a key from
    :class:`KeyTracker`, through a cursor) starts right after that row.

        >>> sql, params, columns = events_export_sql("*", [], 0, 10)
        >>> "tenant_id = ?" in sql, params, columns[:2]
        (False, [0, 10], ['tenant_id', 'event_id'])
        >>> sql, params, _ = events_export_sql("t1", [], 0, 10, after=[5, "e1", 7])
        >>> sql.split(" WHERE ")[1].split(" ORDER BY ")[0]
        'tenant_id = ? AND ts >= make_timestamp(?) AND ts < make_timestamp(?) AND ts >= make_timestamp(?) AND (ts, event_id, coalesce(epoch_us(received_at), -1)) > (make_timestamp(?), ?, ?)'
    """
    every = tenant == ALL_TENANTS
    selected = ("tenant_id", *EVENT_COLUMNS) if every else EVENT_COLUMNS
    conds = ["ts >= make_timestamp(?)", "ts < make_timestamp(?)"]
    params: list[Any] = [start_us, end_us]
    if not every:
        conds.insert(0, "tenant_id = ?")
        params.insert(0, tenant)
    key = ALL_TENANTS_KEY if every else EVENT_KEY
    if after is not None:
        if len(after) != len(key):
            raise QueryError("cursor", "belongs to another export; send the same request with its next_cursor")
        marks = ", ".join(["make_timestamp(?)", *["?"] * (len(key) - 1)])
        conds.append("ts >= make_timestamp(?)")  # the plain bound lets the store skip row groups
        conds.append(f"({', '.join(key)}) > ({marks})")
        params += [after[0], *after]
    for f in filters:
        cond, ps = filter_sql(f)
        conds.append(cond)
        params += ps
    sql = f"SELECT {', '.join(selected)} FROM events WHERE {' AND '.join(conds)} ORDER BY {', '.join(key)}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    columns = ["timestamp" if c == "ts" else c for c in selected]
    return sql, params, columns


class KeyTracker:
    """Passes batches on and remembers the export key (:data:`EVENT_KEY`) of the last row it passed, and
    how many rows: what a cursor needs to resume right after the last row the client was sent."""

    def __init__(self, batches: Iterator[pa.RecordBatch], *, every_tenant: bool) -> None:
        self._batches = batches
        self._every = every_tenant
        self.rows = 0
        self.last: list[Any] | None = None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            if batch.num_rows:
                self.rows += batch.num_rows
                self.last = self._key(batch)
            yield batch

    def _key(self, batch: pa.RecordBatch) -> list[Any]:
        def last(name: str, as_int: bool = False) -> Any:
            col = batch.column(batch.schema.get_field_index(name))
            return (col.cast(pa.int64()) if as_int else col)[-1].as_py()

        received = last("received_at", as_int=True)
        ids = [last("tenant_id"), last("event_id")] if self._every else [last("event_id")]
        return [last("timestamp", as_int=True), *ids, -1 if received is None else received]


@dataclass(frozen=True, slots=True)
class ExportCursor:
    """Where an events export resumes: the window of the first request, and the key of the last row sent
    (None: nothing was sent yet). ``scope`` ties it to the request (tenant, filters, time parameters)."""

    start_us: int
    end_us: int
    after: list[Any] | None
    scope: str


def export_scope(*parts: Any) -> str:
    """A short hash of what an export was asked for (tenant, filters, raw time parameters)."""
    return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()[:16]


def encode_export_cursor(cursor: ExportCursor) -> str:
    raw = msgspec.json.encode({"w": [cursor.start_us, cursor.end_us], "k": cursor.after, "s": cursor.scope})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_export_cursor(raw: str, scope: str) -> ExportCursor:
    """The cursor ``raw`` of an export asked for with ``scope``; a 422 on ``cursor`` if it is not one, or
    belongs to another export."""
    try:
        data = msgspec.json.decode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        (start_us, end_us), after, got_scope = data["w"], data["k"], data["s"]
        # times within 1970..2100 (the window's, and the last row's, which lies in it) and a receipt time (or -1)
        # that fits the store's BIGINT: a tampered one must not reach the store out of its range (a 500)
        ok = _is_time(start_us) and _is_time(end_us) and 0 < end_us - start_us <= MAX_RANGE_DAYS * 86_400_000_000
        ok = ok and isinstance(got_scope, str)
        ok = ok and (after is None or (isinstance(after, list) and _is_time(after[0]) and type(after[-1]) is int
                                       and -1 <= after[-1] < 2**63
                                       and all(type(v) is str for v in after[1:-1])))  # fmt: skip
    except Exception:
        ok = False
    if not ok:
        raise QueryError("cursor", "not a cursor of an events export; pass next_cursor unchanged")
    if got_scope != scope:
        raise QueryError(
            "cursor", "belongs to another export: send the same request (tenant, filters, start/end/last) with it"
        )
    return ExportCursor(start_us, end_us, after, scope)


# -- exports of the unified query ------------------------------------------------------------------------

_NON_FINITE: Final = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


class QueryKeyTracker(KeyTracker):
    """:class:`KeyTracker` for a unified query's export: the key is :func:`export_key`'s columns of the last
    row (a bucket as epoch microseconds; ``[]`` for the one row of a query without buckets or groups)."""

    def __init__(self, batches: Iterator[pa.RecordBatch], key: list[KeyColumn]) -> None:
        super().__init__(batches, every_tenant=False)
        self._columns = key

    def _key(self, batch: pa.RecordBatch) -> list[Any]:
        out = []
        for k in self._columns:
            col = batch.column(batch.schema.get_field_index(k.label))
            out.append((col.cast(pa.int64()) if k.kind == "bucket" else col)[-1].as_py())
        return out


@dataclass(frozen=True, slots=True)
class QueryExportCursor:
    """Where a query export (or a page of ``POST /api/v1/query``: :mod:`hubcore.query.paging`) resumes: the
    first request's window and time (events received after it are left out), the key of the last row sent
    (None: nothing was sent yet), the request's ``scope`` and how many rows were sent before (``sent``)."""

    start_us: int
    end_us: int
    received_by_us: int
    after: list[Any] | None
    scope: str
    sent: int = 0


#: What a cursor resumes (its ``"x"``) → what a cursor that is not one, and one of another request, is told.
CURSOR_KINDS: Final = {
    "query": ("not a cursor of a query export; pass next_cursor unchanged",
              "belongs to another export: send the same request (the same body) with it"),
    "page": ("not a cursor from this API; pass metadata.next_cursor unchanged",
             "belongs to another query: send the same body (and tenant) with its metadata.next_cursor"),
}  # fmt: skip
#: The bounds of a time in a cursor (1970..2100, as every time the API takes): a tampered one must not reach
#: the store as a timestamp out of its range.
_MIN_US: Final = int(MIN_TIME_S * 1_000_000)
_MAX_US: Final = int(MAX_TIME_S * 1_000_000)


def encode_query_cursor(cursor: QueryExportCursor, *, of: str = "query") -> str:
    """The cursor as URL-safe text (a NaN or an infinite aggregate, which JSON lacks, as a string); ``of``
    says what it resumes (:data:`CURSOR_KINDS`).

    >>> c = QueryExportCursor(1, 2, 3, [7, "m", float("nan")], "abc")
    >>> d = decode_query_cursor(encode_query_cursor(c), "abc", ["bucket", "group", "value"])
    >>> d.after[:2], d.after[2] != d.after[2]
    ([7, 'm'], True)
    """
    after = None
    if cursor.after is not None:
        after = [v if not isinstance(v, float) or math.isfinite(v) else str(v) for v in cursor.after]
    data = {"x": of, "w": [cursor.start_us, cursor.end_us], "r": cursor.received_by_us, "k": after, "s": cursor.scope}
    if cursor.sent:
        data["n"] = cursor.sent
    return base64.urlsafe_b64encode(msgspec.json.encode(data)).decode().rstrip("=")


def _is_time(value: Any) -> bool:
    return type(value) is int and _MIN_US <= value <= _MAX_US


def _key_value(value: Any, kind: str) -> tuple[bool, Any]:
    if kind == "bucket":
        return _is_time(value), value
    if kind == "group":
        return value is None or type(value) is str, value
    if isinstance(value, str):
        return value in _NON_FINITE, _NON_FINITE.get(value)
    return value is None or type(value) in (int, float), value


def decode_query_cursor(raw: Any, scope: str, kinds: list[str], *, of: str = "query") -> QueryExportCursor:
    """The cursor ``raw`` of a query export (``of``: or of what :data:`CURSOR_KINDS` names) asked for with
    ``scope``, whose key columns are of ``kinds`` (:attr:`KeyColumn.kind`); a 422 on ``cursor`` if it is not
    one, or belongs to another request."""
    not_one, another = CURSOR_KINDS[of]
    after: list[Any] | None = None
    try:
        data = msgspec.json.decode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        (start_us, end_us), received_by_us, got, got_scope = data["w"], data["r"], data["k"], data["s"]
        sent = data.get("n", 0)
        ok = data["x"] == of and all(_is_time(v) for v in (start_us, end_us, received_by_us)) and start_us < end_us
        ok = ok and isinstance(got_scope, str) and (got is None or isinstance(got, list))
        ok = ok and type(sent) is int and 0 <= sent < 2**63  # (a count of rows: echoed as metadata.offset)
    except Exception:
        ok = False
    if not ok:
        raise QueryError("cursor", not_one)
    if got_scope != scope:
        raise QueryError("cursor", another)
    if got is not None:
        checked = [_key_value(v, k) for v, k in zip(got, kinds, strict=False)]
        if len(got) != len(kinds) or not all(good for good, _ in checked):
            raise QueryError("cursor", not_one)
        after = [v for _, v in checked]
    return QueryExportCursor(start_us, end_us, received_by_us, after, scope, sent)
