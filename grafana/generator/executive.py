"""The dashboard "LLM Hub / Executive summary" (``executive-summary.json``): traffic, spend, reliability,
security and compliance at a glance.

    >>> from grafana.generator.executive import executive
    >>> executive().build().uid
    'llm-hub-executive'
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .common import (
    FT,
    F,
    bargauge_panel,
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
    compliance_ratio,
    error_ratio,
    quantile,
    sel,
)


def executive() -> db.Dashboard:
    return (
        new_dashboard(
            "llm-hub-executive",
            "LLM Hub / Executive summary",
            "Traffic, spend, reliability, security and compliance at a glance.",
            ["executive"],
        )
        .with_row(db.Row("Headline numbers (selected time range)"))
        .with_panel(stat_panel("Requests", prom(f"sum(increase({sel(DUR + '_count')}[{RANGE}]))", instant=True)))
        .with_panel(stat_panel("Spend", prom(f"sum(increase({sel(COST)}[{RANGE}]))", instant=True), unit="currencyUSD"))
        .with_panel(
            stat_panel(
                "Error ratio",
                prom(error_ratio(by="", window=RANGE), instant=True),
                unit="percentunit",
                steps=((None, "green"), (0.01, "orange"), (0.05, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "p95 latency",
                prom(quantile(0.95, DUR, by="", window=RANGE), instant=True),
                unit="s",
                steps=((None, "green"), (5, "orange"), (15, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Threats blocked",
                prom(
                    f"sum(increase({sel(THREATS, F, 'action=' + chr(34) + 'blocked' + chr(34))}[{RANGE}]))",
                    instant=True,
                ),
            )
        )
        .with_panel(
            stat_panel(
                "Policy compliance",
                prom(compliance_ratio(window=RANGE), instant=True),
                unit="percentunit",
                steps=((None, "red"), (0.8, "orange"), (0.95, "green")),
            )
        )
        .with_row(db.Row("Trends"))
        .with_panel(
            timeseries_panel(
                "Requests/s by model",
                [
                    prom(
                        f"sum by (gen_ai_request_model) (rate({sel(DUR + '_count')}[{RI}]))", "{{gen_ai_request_model}}"
                    )
                ],
                unit="reqps",
                links=model_drilldown_links(),
            )
        )
        .with_panel(
            timeseries_panel(
                "Spend by team (USD/h)",
                [prom(f"sum by (team) (rate({sel(COST)}[{RI}])) * 3600", "{{team}}")],
                unit="currencyUSD",
                stacked=True,
            )
        )
        .with_panel(
            table_panel(
                "Top models by spend",
                [prom(f"topk(10, sum by (gen_ai_request_model) (increase({sel(COST)}[{RANGE}])))", instant=True)],
                unit="currencyUSD",
                span=8,
                links=model_drilldown_links(),
            )
        )
        .with_panel(
            bargauge_panel(
                "Budget used",
                prom(
                    f"budget_spend_usd{{{FT}}} / on (budget_id, tenant_id) group_left () budget_limit_usd{{{FT}}}",
                    "{{budget_id}} ({{team}})",
                    instant=True,
                ),
                steps=((None, "green"), (0.8, "orange"), (1, "red")),
                max_value=1.2,
                span=8,
            )
        )
        .with_panel(
            stat_panel(
                "Open incidents",
                prom(f"sum(hub_incidents_open{{{F}}})", instant=True),
                steps=((None, "green"), (1, "red")),
                span=8,
            )
        )
    )
