"""The dashboard "LLM Hub / Cost & budgets" (``cost.json``): spend by model, team, project and cost type;
unit cost; budgets and their forecasts.

    >>> from grafana.generator.cost import cost
    >>> cost().build().uid
    'llm-hub-cost'
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .common import (
    FT,
    band_panel,
    bargauge_panel,
    module_events_links,
    new_dashboard,
    prom,
    table_panel,
    timeseries_panel,
)
from .queries import (
    COST,
    RANGE,
    RI,
    TOKENS,
    sel,
)


def cost() -> db.Dashboard:
    cost_links = module_events_links("llm-costops", "cost")
    return (
        new_dashboard(
            "llm-hub-cost",
            "LLM Hub / Cost & budgets",
            "Spend by model, team, project and cost type; unit cost; budgets and their forecasts.",
            ["cost"],
        )
        .with_row(db.Row("Spend"))
        .with_panel(
            timeseries_panel(
                "Spend by model (USD/h)",
                [prom(f"sum by (gen_ai_request_model) (rate({sel(COST)}[{RI}])) * 3600", "{{gen_ai_request_model}}")],
                unit="currencyUSD",
                stacked=True,
                links=cost_links,
            )
        )
        .with_panel(
            timeseries_panel(
                "Spend by cost type (USD/h)",
                [prom(f"sum by (cost_type) (rate({sel(COST)}[{RI}])) * 3600", "{{cost_type}}")],
                unit="currencyUSD",
                stacked=True,
                links=cost_links,
            )
        )
        .with_panel(
            table_panel(
                "Spend by team and project (range)",
                [prom(f"sum by (team, project) (increase({sel(COST)}[{RANGE}]))", instant=True)],
                unit="currencyUSD",
            )
        )
        .with_panel(
            timeseries_panel(
                "Cost per 1k tokens by model",
                [
                    prom(
                        f"sum by (gen_ai_request_model) (rate({sel(COST, extra='cost_type=' + chr(34) + 'token' + chr(34))}"
                        f"[{RI}])) / (sum by (gen_ai_request_model) (rate({sel(TOKENS + '_sum')}[{RI}])) / 1000)",
                        "{{gen_ai_request_model}}",
                    )
                ],
                unit="currencyUSD",
            )
        )
        .with_row(db.Row("Budgets"))
        .with_panel(
            bargauge_panel(
                "Budget used",
                prom(
                    f"budget_spend_usd{{{FT}}} / on (budget_id, tenant_id) group_left () budget_limit_usd{{{FT}}}",
                    "{{budget_id}} ({{team}}/{{project}})",
                    instant=True,
                ),
                steps=((None, "green"), (0.8, "orange"), (1, "red")),
                max_value=1.2,
            )
        )
        .with_panel(
            table_panel(
                "Days until budget exhaustion (forecast)",
                [prom(f"(budget_exhaustion_timestamp_seconds{{{FT}}} - time()) / 86400", instant=True)],
                unit="d",
                description="From budget_exhaustion_timestamp_seconds; negative = already exhausted.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Budget spend vs limit",
                [
                    prom(f"sum by (budget_id) (budget_spend_usd{{{FT}}})", "spend {{budget_id}}"),
                    prom(f"sum by (budget_id) (budget_limit_usd{{{FT}}})", "limit {{budget_id}}"),
                ],
                unit="currencyUSD",
                span=24,
            )
        )
        .with_row(db.Row("Forecast"))
        .with_panel(
            band_panel(
                "Hourly spend vs forecast band (cost_usd_hourly)",
                prom(f"sum by (team) (increase({sel(COST, FT)}[1h]))", "actual {{team}}"),
                prom(f'sum by (team) (yhat{{for="cost_usd_hourly", {FT}}})', "yhat {{team}}"),
                prom(f'sum by (team) (yhat_lower{{for="cost_usd_hourly", {FT}}})', "yhat_lower {{team}}"),
                prom(f'sum by (team) (yhat_upper{{for="cost_usd_hourly", {FT}}})', "yhat_upper {{team}}"),
                unit="currencyUSD",
                span=24,
                description="Shaded: [yhat_lower, yhat_upper] from the forecaster; LLMForecastIntervalBreach fires "
                "when the actual stays outside it for 30 min.",
            )
        )
    )
