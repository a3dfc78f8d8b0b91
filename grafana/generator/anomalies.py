"""The dashboard "LLM Hub / Anomalies & forecasts" (``anomalies-forecasts.json``): the anomaly_score and
yhat / yhat_lower / yhat_upper series written back by the analytic processors.

    >>> from grafana.generator.anomalies import anomalies
    >>> anomalies().build().uid
    'llm-hub-anomalies'
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .common import (
    FT,
    F,
    band_panel,
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
    sel,
)


def anomalies() -> db.Dashboard:
    return (
        new_dashboard(
            "llm-hub-anomalies",
            "LLM Hub / Anomalies & forecasts",
            "Series written back by the analytic processors: anomaly_score (> 1 is anomalous) and "
            "yhat / yhat_lower / yhat_upper forecasts (vmanomaly vocabulary).",
            ["anomalies"],
        )
        .with_row(db.Row("Anomaly scores"))
        .with_panel(
            stat_panel(
                "Anomalous series now",
                prom(f"count(anomaly_score{{{F}}} > 1) or vector(0)", instant=True),
                steps=((None, "green"), (1, "orange")),
                span=6,
            )
        )
        .with_panel(
            timeseries_panel(
                "anomaly_score by query and model",
                [prom(f"max by (for, model_alias) (anomaly_score{{{F}}})", "{{for}} / {{model_alias}}")],
                description="Above 1 = anomalous; LLMAnomalyDetected fires when the model announces an anomaly (anomaly_alert).",
                span=18,
            )
        )
        .with_panel(
            table_panel("Anomalous series (score > 1)", [prom(f"anomaly_score{{{F}}} > 1", instant=True)], span=24)
        )
        .with_row(db.Row("Forecast bands"))
        .with_panel(
            band_panel(
                "Requests/s vs forecast (requests_rate)",
                prom(
                    f"sum by (gen_ai_request_model) (rate({sel(DUR + '_count')}[5m]))",
                    "actual {{gen_ai_request_model}}",
                ),
                prom(
                    f'sum by (gen_ai_request_model) (yhat{{for="requests_rate", {F}, gen_ai_request_model=~"$model"}})',
                    "yhat {{gen_ai_request_model}}",
                ),
                prom(
                    f'sum by (gen_ai_request_model) (yhat_lower{{for="requests_rate", {F}, gen_ai_request_model=~"$model"}})',
                    "yhat_lower {{gen_ai_request_model}}",
                ),
                prom(
                    f'sum by (gen_ai_request_model) (yhat_upper{{for="requests_rate", {F}, gen_ai_request_model=~"$model"}})',
                    "yhat_upper {{gen_ai_request_model}}",
                ),
                unit="reqps",
                links=model_drilldown_links(),
            )
        )
        .with_panel(
            band_panel(
                "Hourly spend vs forecast (cost_usd_hourly)",
                prom(f"sum(increase({sel(COST, FT)}[1h]))", "actual"),
                prom(f'sum(yhat{{for="cost_usd_hourly", {FT}}})', "yhat"),
                prom(f'sum(yhat_lower{{for="cost_usd_hourly", {FT}}})', "yhat_lower"),
                prom(f'sum(yhat_upper{{for="cost_usd_hourly", {FT}}})', "yhat_upper"),
                unit="currencyUSD",
            )
        )
    )
