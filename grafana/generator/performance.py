"""The dashboard "LLM Hub / Performance" (``performance.json``): latency, time to first token, throughput,
errors, the availability SLO and the hub's own health.

    >>> from grafana.generator.performance import performance
    >>> performance().build().uid
    'llm-hub-performance'
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .common import (
    model_drilldown_links,
    new_dashboard,
    prom,
    timeseries_panel,
)
from .queries import (
    DUR,
    RI,
    TOKENS,
    TTFT,
    error_ratio,
    quantile,
    sel,
)


def performance() -> db.Dashboard:
    links = model_drilldown_links()
    return (
        new_dashboard(
            "llm-hub-performance",
            "LLM Hub / Performance",
            "Latency, time to first token, throughput, errors and the availability SLO.",
            ["performance"],
        )
        .with_row(db.Row("Latency"))
        .with_panel(
            timeseries_panel(
                "Request latency p50 / p95 / p99",
                [
                    prom(quantile(0.50, DUR), "p50 {{gen_ai_request_model}}"),
                    prom(quantile(0.95, DUR), "p95 {{gen_ai_request_model}}"),
                    prom(quantile(0.99, DUR), "p99 {{gen_ai_request_model}}"),
                ],
                unit="s",
                links=links,
            )
        )
        .with_panel(
            timeseries_panel(
                "Time to first token p95",
                [prom(quantile(0.95, TTFT), "{{gen_ai_request_model}}")],
                unit="s",
                links=links,
            )
        )
        .with_row(db.Row("Throughput and tokens"))
        .with_panel(
            timeseries_panel(
                "Requests/s by model and operation",
                [
                    prom(
                        f"sum by (gen_ai_request_model, gen_ai_operation_name) (rate({sel(DUR + '_count')}[{RI}]))",
                        "{{gen_ai_request_model}} {{gen_ai_operation_name}}",
                    )
                ],
                unit="reqps",
                links=links,
            )
        )
        .with_panel(
            timeseries_panel(
                "Tokens/s by type",
                [prom(f"sum by (gen_ai_token_type) (rate({sel(TOKENS + '_sum')}[{RI}]))", "{{gen_ai_token_type}}")],
                unit="short",
                stacked=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "Tokens per request by model",
                [
                    prom(
                        f"sum by (gen_ai_request_model, gen_ai_token_type) (rate({sel(TOKENS + '_sum')}[{RI}]))"
                        f" / sum by (gen_ai_request_model, gen_ai_token_type) (rate({sel(TOKENS + '_count')}[{RI}]))",
                        "{{gen_ai_request_model}} {{gen_ai_token_type}}",
                    )
                ],
                links=links,
            )
        )
        .with_row(db.Row("Errors and SLO (99% of requests succeed)"))
        .with_panel(
            timeseries_panel(
                "Error ratio by model",
                [prom(error_ratio(), "{{gen_ai_request_model}}")],
                unit="percentunit",
                links=links,
            )
        )
        .with_panel(
            timeseries_panel(
                "Errors/s by type",
                [
                    prom(
                        f"sum by (error_type) (rate({sel(DUR + '_count', extra='error_type!=' + chr(34) * 2)}[{RI}]))",
                        "{{error_type}}",
                    )
                ],
                unit="reqps",
                stacked=True,
                links=links,
            )
        )
        .with_panel(
            timeseries_panel(
                "Error-budget burn rate (1h window)",
                [prom(f"({error_ratio(window='1h')}) / 0.01", "{{gen_ai_request_model}}")],
                description="1 = the budget lasts exactly 30 days; 14.4 pages (LLMErrorBudgetBurnFast).",
                links=links,
            )
        )
        .with_panel(
            timeseries_panel(
                "Error-budget burn rate (6h window)",
                [prom(f"({error_ratio(window='6h')}) / 0.01", "{{gen_ai_request_model}}")],
                description="6 pages, 1 opens a ticket (LLMErrorBudgetBurnSlow).",
                links=links,
            )
        )
        .with_row(db.Row("Hub health"))
        .with_panel(
            timeseries_panel(
                "Ingested events/s by receiver",
                [
                    prom(
                        f'sum by (receiver) (rate(hub_ingest_events_total{{tenant_id=~"$tenant"}}[{RI}]))',
                        "{{receiver}}",
                    )
                ],
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Rejected events/s by reason",
                [prom(f"sum by (receiver, reason) (rate(hub_ingest_rejected_total[{RI}]))", "{{receiver}} {{reason}}")],
                span=8,
            )
        )
        .with_panel(timeseries_panel("Queue depth", [prom("max by (queue) (hub_queue_depth)", "{{queue}}")], span=8))
        .with_panel(
            timeseries_panel(
                "Stack exporters: records delivered vs retries /s",
                [
                    prom(f"sum by (exporter) (rate(hub_export_records_total[{RI}]))", "{{exporter}} records"),
                    prom(f"sum by (exporter) (rate(hub_export_retries_total[{RI}]))", "{{exporter}} retries"),
                    prom(f"sum by (exporter) (rate(hub_export_dead_lettered_total[{RI}]))", "{{exporter}} refused"),
                ],
                description="A backend that is down: retries without records (HubExportFailing); records it "
                "refuses for good go to the exporter's dead-letter file (HubExportDeadLettering).",
                span=12,
            )
        )
        .with_panel(
            timeseries_panel(
                "Hub API latency p95",
                [
                    prom(
                        f"histogram_quantile(0.95, sum by (le) (rate(hub_request_duration_seconds_bucket[{RI}])))",
                        "p95",
                    )
                ],
                unit="s",
                span=12,
            )
        )
    )
