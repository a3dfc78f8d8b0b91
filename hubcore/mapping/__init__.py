"""The OTel mapping of native events (DESIGN.md, "Mapping onto OpenTelemetry").

The mapping is written once, as SQL over a relation named ``batch`` with the columns of ``events``.
The embedded store defines views with it (``event_metric_points``, ``event_spans``: computed at query
time from the stored events, so ingest writes each event once) and the stack exporters run the very
same statements on an in-memory DuckDB over each batch they send.

    >>> "llm.cost.usd" in EVENTS_TO_POINTS_SQL
    True
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

EVENTS_TO_POINTS_SQL = resources.files(__package__).joinpath("events_to_points.sql").read_text()

#: An event's W3C ``traceparent`` tag (``00-<trace id>-<parent span id>-<flags>``; tags are the JSON text of a
#: string map), lowercased, when it is valid: a version other than ``ff`` (a later version's extra fields left
#: out), ids not all zeros; NULL otherwise. Each step uses the one before once, so the expression stays small
#: wherever the optimizer inlines it.
TRACEPARENT_SQL = (
    "nullif(regexp_replace(lower(regexp_extract(tags, '\"traceparent\"\\s*:\\s*\"((?:[0-9a-e][0-9a-f]|f[0-9a-e])"
    "-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2})(?:-[^\"]*)?\"', 1, 'i')), '^..-0{32}-.*$|^.*-0{16}-..$', ''), '')"
)
#: The trace id of a native event's span, given its traceparent ``{tp}``: the traceparent's trace id, else first
#: 16 bytes of md5(tenant/correlation_id); NULL for an event with neither (it has no span).
_TRACE_ID_OF = "coalesce(substr({tp}, 4, 32), md5(tenant_id || '/' || correlation_id))"
EVENT_TRACE_ID_SQL = _TRACE_ID_OF.format(tp=TRACEPARENT_SQL)
#: The first 32 bits of :data:`EVENT_TRACE_ID_SQL` as an unsigned integer: the store keeps it in
#: ``events.trace_key`` as rows are inserted, and a trace's events are read by it (a 4-byte compare per event;
#: the few events of another trace that share the key are told apart by their full trace id).
EVENT_TRACE_KEY_SQL = f"CAST('0x' || substr({EVENT_TRACE_ID_SQL}, 1, 8) AS UINTEGER)"
#: The span id of the synthetic root span of a (tenant, correlation_id) trace, which its event spans hang under.
ROOT_SPAN_ID_SQL = "substr(md5('root/' || tenant_id || '/' || correlation_id), 1, 16)"
#: The rows of ``batch`` (events) as the store inserts them: with their ``trace_key``.
EVENTS_INSERT_SQL = f"SELECT * REPLACE ({EVENT_TRACE_KEY_SQL} AS trace_key) FROM batch"
EVENTS_TO_SPANS_SQL = (
    resources.files(__package__).joinpath("events_to_spans.sql").read_text()
    .replace("@TRACEPARENT@", TRACEPARENT_SQL)
    .replace("@TRACE_ID_OF_TRACEPARENT@", _TRACE_ID_OF.format(tp="traceparent"))
    .replace("@ROOT_SPAN_ID@", ROOT_SPAN_ID_SQL)
)  # fmt: skip

#: OTel metric names the mapping produces for each event type (telemetry keeps its own metric_name).
EVENT_METRIC_NAMES = {
    "cost": "llm.cost.usd",
    "security": "llm.security.threats",
    "governance": "llm.governance.violations",
    "policy": "llm.policy.evaluations",
    "metadata": "llm.registry.asset.info",
}


def event_trace_id(tenant_id: str, correlation_id: str) -> str:
    """The trace id (hex) of the spans of a tenant's events with this ``correlation_id`` and no traceparent.

    >>> event_trace_id("acme", "c1") == hashlib.md5(b"acme/c1").hexdigest()
    True
    """
    return hashlib.md5(f"{tenant_id}/{correlation_id}".encode()).hexdigest()


def trace_key(trace_id: str) -> int:
    """The ``events.trace_key`` of the events of a trace (:data:`EVENT_TRACE_KEY_SQL`).

    >>> trace_key("4bf92f3577b34da6a3ce929d0e0e4736")
    1274621749
    """
    return int(trace_id[:8], 16)


def root_span_id(tenant_id: str, correlation_id: str) -> str:
    """The span id (hex) of the synthetic root span of that trace (:data:`ROOT_SPAN_ID_SQL`).

    >>> root_span_id("acme", "c1") == hashlib.md5(b"root/acme/c1").hexdigest()[:16]
    True
    """
    return hashlib.md5(f"root/{tenant_id}/{correlation_id}".encode()).hexdigest()[:16]


def mapping_over(mapping_sql: str, source_sql: str) -> str:
    """A query running the mapping over the rows of ``source_sql`` (a query of ``events`` rows) as ``batch``.

    >>> mapping_over("SELECT * FROM batch", "SELECT * FROM events").splitlines()[0]
    'WITH batch AS (SELECT * FROM events) SELECT * FROM ('
    """
    return f"WITH batch AS ({source_sql}) SELECT * FROM (\n{mapping_sql}\n)"


def mapping_view_sql(view: str, mapping_sql: str, source: str = "events") -> str:
    """``CREATE OR REPLACE VIEW view AS`` the mapping over the table ``source``.

    >>> mapping_view_sql("v", "SELECT * FROM batch").splitlines()[0]
    'CREATE OR REPLACE VIEW v AS WITH batch AS (SELECT * FROM events) SELECT * FROM ('
    """
    return f"CREATE OR REPLACE VIEW {view} AS {mapping_over(mapping_sql, f'SELECT * FROM {source}')}"


def run_mapping(con: Any, mapping_sql: str, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Run a mapping over a batch of ``events`` rows on DuckDB connection ``con``; column lists back,
    timestamps as µs integers (the exporters' input shape)."""
    import pyarrow as pa

    from hubcore.storage.tables import TABLES

    con.register("batch", TABLES["events"].to_arrow(columns))
    try:
        table = con.sql(mapping_sql).to_arrow_table()
    finally:
        con.unregister("batch")
    out: dict[str, list[Any]] = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        out[name] = column.to_pylist()
    return out
