"""The OTel mapping of native events (DESIGN.md, "Mapping onto OpenTelemetry").

The mapping is written once, as SQL over a relation named ``batch`` with the columns of ``events``.
The embedded store defines views with it (``event_metric_points``, ``event_spans``: computed at query
time from the stored events, so ingest writes each event once) and the stack exporters run the very
same statements on an in-memory DuckDB over each batch they send.

    >>> "llm.cost.usd" in EVENTS_TO_POINTS_SQL
    True
"""

from __future__ import annotations

from importlib import resources
from typing import Any

EVENTS_TO_POINTS_SQL = resources.files(__package__).joinpath("events_to_points.sql").read_text()
EVENTS_TO_SPANS_SQL = resources.files(__package__).joinpath("events_to_spans.sql").read_text()

#: OTel metric names the mapping produces for each event type (telemetry keeps its own metric_name).
EVENT_METRIC_NAMES = {
    "cost": "llm.cost.usd",
    "security": "llm.security.threats",
    "governance": "llm.governance.violations",
    "policy": "llm.policy.evaluations",
    "metadata": "llm.registry.asset.info",
}


def mapping_view_sql(view: str, mapping_sql: str, source: str = "events") -> str:
    """``CREATE OR REPLACE VIEW view AS`` the mapping over the table ``source``.

    >>> mapping_view_sql("v", "SELECT * FROM batch").splitlines()[0]
    'CREATE OR REPLACE VIEW v AS WITH batch AS (SELECT * FROM events)'
    """
    return f"CREATE OR REPLACE VIEW {view} AS WITH batch AS (SELECT * FROM {source})\n{mapping_sql}"


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
