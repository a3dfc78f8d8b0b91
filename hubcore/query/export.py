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
the unified query's filters, for ``GET /api/v1/events/export``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, Final

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hubcore.query.compile_duckdb import filter_sql
from hubcore.query.model import ALL_TENANTS, Filter, QueryError

FORMATS: Final = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
_ACCEPT: Final = {
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


def pick_format(requested: str | None, accept: str | None) -> str:
    """``?format=`` wins, then the ``Accept`` header, else CSV. Unknown formats are a 422 on ``format``."""
    if requested:
        if requested not in FORMATS:
            raise QueryError("format", f"unknown export format {requested!r}; use {', '.join(FORMATS)}")
        return requested
    for part in (accept or "").split(","):
        fmt = _ACCEPT.get(part.split(";")[0].strip().lower())
        if fmt:
            return fmt
    return "csv"


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


def encode_batches(columns: list[str], batches: Iterator[pa.RecordBatch], fmt: str) -> Iterator[bytes]:
    """Yield the encoded bytes of ``batches`` (header first for CSV; Parquet footer last)."""
    if fmt == "jsonl":
        enc = msgspec.json.Encoder()
        for batch in batches:
            rows = _textual(batch).to_pylist()
            if rows:
                yield b"".join(enc.encode(r) + b"\n" for r in rows)
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
    pwriter.close()
    yield sink.drain()


def events_export_sql(
    tenant: str, filters: list[Filter], start_us: int, end_us: int, limit: int | None = None
) -> tuple[str, list[Any], list[str]]:
    """SQL for a tenant's raw events in ``[start, end)``, oldest first, filtered like the unified query.

    ``tenant`` ``"*"`` (:data:`ALL_TENANTS`; the API lets only platform admins ask) selects every tenant's
    events, with a leading ``tenant_id`` column to tell them apart.

        >>> sql, params, columns = events_export_sql("*", [], 0, 10)
        >>> "tenant_id = ?" in sql, params, columns[:2]
        (False, [0, 10], ['tenant_id', 'event_id'])
    """
    every = tenant == ALL_TENANTS
    selected = ("tenant_id", *EVENT_COLUMNS) if every else EVENT_COLUMNS
    conds = ["ts >= make_timestamp(?)", "ts < make_timestamp(?)"]
    params: list[Any] = [start_us, end_us]
    if not every:
        conds.insert(0, "tenant_id = ?")
        params.insert(0, tenant)
    for f in filters:
        cond, ps = filter_sql(f)
        conds.append(cond)
        params += ps
    order = "ts, tenant_id, event_id" if every else "ts, event_id"
    sql = f"SELECT {', '.join(selected)} FROM events WHERE {' AND '.join(conds)} ORDER BY {order}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    columns = ["timestamp" if c == "ts" else c for c in selected]
    return sql, params, columns
