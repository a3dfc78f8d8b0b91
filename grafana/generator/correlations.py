"""The dashboard "LLM Hub / Correlations & incidents" (``correlations-incidents.json``): what the
correlation engine joined across modules, open incidents, and their signals side by side.

    >>> from grafana.generator.correlations import correlations
    >>> correlations().build().uid
    'llm-hub-correlations'
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .common import (
    LF,
    F,
    logs_panel,
    model_drilldown_links,
    new_dashboard,
    prom,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from .queries import (
    COST,
    DUR,
    RANGE,
    RI,
    THREATS,
    VIOLATIONS,
    compliance_ratio,
    error_ratio,
    quantile,
    sel,
)


def correlations() -> db.Dashboard:
    return (
        new_dashboard(
            "llm-hub-correlations",
            "LLM Hub / Correlations & incidents",
            "What the correlation engine joined across modules, open incidents, and the signals "
            "behind them side by side.",
            ["correlations", "incidents"],
        )
        .with_row(db.Row("Correlations"))
        .with_panel(
            stat_panel(
                "Open incidents",
                prom(f"sum(hub_incidents_open{{{F}}})", instant=True),
                steps=((None, "green"), (1, "red")),
                span=6,
            )
        )
        .with_panel(
            stat_panel(
                "Correlations (range)",
                prom(f"sum(increase(hub_correlations_total{{{F}}}[{RANGE}]))", instant=True),
                span=6,
            )
        )
        .with_panel(
            table_panel(
                "Correlations by type (range)",
                [prom(f"sum by (type) (increase(hub_correlations_total{{{F}}}[{RANGE}]))", instant=True)],
                span=12,
            )
        )
        .with_panel(
            timeseries_panel(
                "Correlations/h by type",
                [prom(f"sum by (type) (rate(hub_correlations_total{{{F}}}[{RI}])) * 3600", "{{type}}")],
                stacked=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "Open incidents", [prom(f"sum by (tenant_id) (hub_incidents_open{{{F}}})", "{{tenant_id}}")]
            )
        )
        .with_row(db.Row("Signals side by side"))
        .with_panel(
            timeseries_panel(
                "Threats/min vs p95 latency",
                [
                    prom(f"sum(rate({sel(THREATS, F)}[{RI}])) * 60", "threats/min"),
                    prom(quantile(0.95, DUR, by=""), "p95 latency (s)"),
                ],
                span=8,
                links=model_drilldown_links(),
            )
        )
        .with_panel(
            timeseries_panel(
                "Spend (USD/h) vs error ratio",
                [
                    prom(f"sum(rate({sel(COST)}[{RI}])) * 3600", "spend USD/h"),
                    prom(error_ratio(by=""), "error ratio"),
                ],
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Violations/h vs compliance",
                [
                    prom(f"sum(rate({sel(VIOLATIONS, F)}[{RI}])) * 3600", "violations/h"),
                    prom(compliance_ratio(), "compliance"),
                ],
                span=8,
            )
        )
        .with_row(db.Row("Events of one correlation chain"))
        .with_panel(
            logs_panel(
                "Correlated raw events",
                f'{{source_module=~".+", {LF}}} | json | correlation_id != ""',
                description="Events that carry a correlation_id; each id is one trace in Tempo "
                "(click the CorrelationID derived field).",
            )
        )
    )
