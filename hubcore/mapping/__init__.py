"""The OTel mapping of native events (DESIGN.md, "Mapping onto OpenTelemetry").

The mapping is written once, as SQL over a batch of ``events`` rows, so that the embedded store runs it
vectorised inside DuckDB and the stack exporters run the very same statements on an in-memory DuckDB.

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
