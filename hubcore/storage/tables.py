"""The embedded store's tables: one column list per signal, shared by the WAL, the writer and readers.

Timestamps are integers in microseconds since the epoch (UTC) in batches and ``TIMESTAMP`` in DuckDB.
JSON-ish columns (tags, payload, attributes...) hold JSON text.

    >>> [c.name for c in TABLES["events"].columns][:3]
    ['tenant_id', 'ts', 'received_at']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    sql: str
    arrow: pa.DataType


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    time_column: str

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def create_sql(self) -> str:
        cols = ",\n  ".join(f"{c.name} {c.sql}" for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n)"

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow) for c in self.columns])

    def to_arrow(self, columns: dict[str, list[Any]]) -> pa.Table:
        """Build an Arrow table from column lists (missing columns become nulls)."""
        n = len(next(iter(columns.values()))) if columns else 0
        arrays = []
        for c in self.columns:
            values = columns.get(c.name)
            if values is None:
                arrays.append(pa.nulls(n, type=c.arrow))
            elif pa.types.is_timestamp(c.arrow):
                arrays.append(pa.array(values, type=pa.int64()).cast(c.arrow))
            else:
                arrays.append(pa.array(values, type=c.arrow))
        return pa.Table.from_arrays(arrays, schema=self.arrow_schema())


def _s(name: str) -> Column:
    return Column(name, "VARCHAR", pa.string())


def _ts(name: str) -> Column:
    return Column(name, "TIMESTAMP", pa.timestamp("us"))


def _f(name: str) -> Column:
    return Column(name, "DOUBLE", pa.float64())


def _i(name: str) -> Column:
    return Column(name, "BIGINT", pa.int64())


EVENTS = Table(
    "events",
    (
        _s("tenant_id"),
        _ts("ts"),
        _ts("received_at"),
        _s("event_id"),
        _s("source_module"),
        _s("event_type"),
        _s("severity"),
        _s("environment"),
        _s("correlation_id"),
        _s("schema_version"),
        _s("name"),
        _f("value"),
        _s("unit"),
        _s("status"),
        _s("model"),
        _s("provider"),
        _s("asset_id"),
        _s("team"),
        _s("project"),
        _s("user_id"),
        _i("input_tokens"),
        _i("output_tokens"),
        _s("tags"),
        _s("payload"),
        _s("enrichment"),
        # the first 32 bits of the trace id of the event's span (hubcore.mapping.EVENT_TRACE_KEY_SQL), set by the
        # store on insert: what a trace's events are found by (a 4-byte compare, not a hash of every event)
        Column("trace_key", "UINTEGER", pa.uint32()),
    ),
    "ts",
)

METRIC_POINTS = Table(
    "metric_points",
    (
        _s("tenant_id"),
        _ts("ts"),
        _ts("start_ts"),
        _s("name"),
        _s("kind"),  # gauge | sum | histogram | summary | observation (one event's measurement)
        _s("temporality"),  # delta | cumulative | ''
        Column("monotonic", "BOOLEAN", pa.bool_()),
        _f("value"),
        _i("count"),
        _f("sum"),
        _f("min"),
        _f("max"),
        Column("bounds", "DOUBLE[]", pa.list_(pa.float64())),
        Column("bucket_counts", "BIGINT[]", pa.list_(pa.int64())),
        _s("unit"),
        _s("service_name"),
        _s("model"),
        _s("provider"),
        _s("operation"),
        _s("token_type"),
        _s("error_type"),
        _s("team"),
        _s("project"),
        _s("environment"),
        _s("attributes"),
        _s("resource"),
        _s("source"),  # otlp | event
    ),
    "ts",
)

LOGS = Table(
    "logs",
    (
        _s("tenant_id"),
        _ts("ts"),
        _ts("observed_ts"),
        _s("service_name"),
        Column("severity_number", "INTEGER", pa.int32()),
        _s("severity_text"),
        _s("body"),
        _s("event_name"),
        _s("trace_id"),
        _s("span_id"),
        _s("scope_name"),
        _s("attributes"),
        _s("resource"),
    ),
    "ts",
)

SPANS = Table(
    "spans",
    (
        _s("tenant_id"),
        _ts("start_ts"),
        _ts("end_ts"),
        _s("trace_id"),
        _s("span_id"),
        _s("parent_span_id"),
        _s("name"),
        _s("kind"),
        _f("duration_ms"),
        _s("status_code"),
        _s("status_message"),
        _s("service_name"),
        _s("model"),
        _s("provider"),
        _s("operation"),
        _s("error_type"),
        _s("event_id"),
        _s("attributes"),
        _s("resource"),
        _s("events"),
        _s("source"),  # otlp | event
    ),
    "start_ts",
)

TABLES: Final[dict[str, Table]] = {t.name: t for t in (EVENTS, METRIC_POINTS, LOGS, SPANS)}
