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
