"""The hub's seven dashboards, as code. ``build_all()`` returns them as Grafana JSON models.

Every PromQL query uses only the series of the metric contract (docs/runbooks/README.md) and the
template variables ``$tenant``, ``$environment``, ``$model``, ``$team``; tests execute each one
against a real VictoriaMetrics loaded with synthetic data (tests/assets/test_dashboards.py).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .common import (
    FM,
    FT,
    LF,
    LOKI,
    F,
    band_panel,
    bargauge_panel,
    logs_panel,
    loki,
    model_drilldown_links,
    module_events_links,
    new_dashboard,
    prom,
    stat_panel,
    table_panel,
    timeseries_panel,
)

RI = "$__rate_interval"
RANGE = "$__range"
DUR = "gen_ai_client_operation_duration_seconds"
TTFT = "gen_ai_server_time_to_first_token_seconds"
TOKENS = "gen_ai_client_token_usage"
COST = "llm_cost_usd_total"
THREATS = "llm_security_threats_total"
VIOLATIONS = "llm_governance_violations_total"
EVALS = "llm_policy_evaluations_total"


def sel(metric: str, filters: str = FM, extra: str = "") -> str:
    """``metric{filters, extra}``."""
    return metric + "{" + filters + (", " + extra if extra else "") + "}"


def quantile(q: float, metric: str, by: str = "gen_ai_request_model", window: str = RI) -> str:
    by_clause = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({by_clause}) (rate({sel(metric + '_bucket')}[{window}])))"


def error_ratio(by: str = "gen_ai_request_model", window: str = RI) -> str:
    grouping = f"sum by ({by})" if by else "sum"
    return (
        f"({grouping} (rate({sel(DUR + '_count', extra='error_type!=' + chr(34) * 2)}[{window}]))"
        f" or 0 * {grouping} (rate({sel(DUR + '_count')}[{window}])))"
        f" / {grouping} (rate({sel(DUR + '_count')}[{window}]))"
    )


def compliance_ratio(by: str = "", window: str = RI, filters: str = F) -> str:
    grouping = f"sum by ({by})" if by else "sum"
    return (
        f"({grouping} (rate({sel(EVALS, filters, 'result=' + chr(34) + 'pass' + chr(34))}[{window}]))"
        f" or 0 * {grouping} (rate({sel(EVALS, filters)}[{window}])))"
        f" / {grouping} (rate({sel(EVALS, filters)}[{window}]))"
    )


# --------------------------------------------------------------------------- executive summary


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


# --------------------------------------------------------------------------- performance


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


# --------------------------------------------------------------------------- cost


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


# --------------------------------------------------------------------------- security


def security() -> db.Dashboard:
    links = module_events_links("llm-sentinel", "security")
    blocked = 'action="blocked"'
    return (
        new_dashboard(
            "llm-hub-security",
            "LLM Hub / Security",
            "Prompt injection, PII leaks, jailbreaks, exfiltration and toxic content detected by "
            "llm-sentinel, and what the guardrails did.",
            ["security"],
        )
        .with_row(db.Row("Threats"))
        .with_panel(
            stat_panel(
                "Threats (range)", prom(f"sum(increase({sel(THREATS, F)}[{RANGE}]))", instant=True), links=links, span=6
            )
        )
        .with_panel(
            stat_panel(
                "Block rate",
                prom(
                    f"sum(rate({sel(THREATS, F, blocked)}[{RANGE}])) / sum(rate({sel(THREATS, F)}[{RANGE}]))",
                    instant=True,
                ),
                unit="percentunit",
                steps=((None, "red"), (0.9, "orange"), (0.99, "green")),
                span=6,
            )
        )
        .with_panel(
            stat_panel(
                "Critical threats not blocked",
                prom(
                    f"sum(increase({sel(THREATS, F, 'threat_level=' + chr(34) + 'critical' + chr(34) + ', ' + 'action!=' + chr(34) + 'blocked' + chr(34))}[{RANGE}]))",
                    instant=True,
                ),
                steps=((None, "green"), (1, "red")),
                links=links,
                span=6,
            )
        )
        .with_panel(
            stat_panel(
                "Security incidents (correlated)",
                prom(f'sum(increase(hub_correlations_total{{type="security_incident", {F}}}[{RANGE}]))', instant=True),
                steps=((None, "green"), (1, "red")),
                span=6,
            )
        )
        .with_panel(
            timeseries_panel(
                "Threats/min by type",
                [prom(f"sum by (threat_type) (rate({sel(THREATS, F)}[{RI}])) * 60", "{{threat_type}}")],
                stacked=True,
                links=links,
            )
        )
        .with_panel(
            timeseries_panel(
                "Threats/min by level",
                [prom(f"sum by (threat_level) (rate({sel(THREATS, F)}[{RI}])) * 60", "{{threat_level}}")],
                stacked=True,
                links=links,
            )
        )
        .with_panel(
            table_panel(
                "Threats by type and action (range)",
                [prom(f"sum by (threat_type, action) (increase({sel(THREATS, F)}[{RANGE}]))", instant=True)],
            )
        )
        .with_panel(
            table_panel(
                "Top source IPs of prompt injection (Loki)",
                [
                    loki(
                        f'topk(10, sum by (payload_source_ip) (count_over_time({{source_module="llm-sentinel", '
                        f'event_type="security", {LF}}} | json | payload_threat_type="prompt_injection" [$__range])))',
                        instant=True,
                    )
                ],
                datasource=LOKI,
            )
        )
        .with_row(db.Row("Raw events"))
        .with_panel(
            logs_panel(
                "Security events",
                f'{{source_module="llm-sentinel", event_type="security", {LF}}} | json',
                description="Raw native events; expand one for payload_* fields and its trace.",
            )
        )
    )


# --------------------------------------------------------------------------- governance


def governance() -> db.Dashboard:
    links = module_events_links("llm-policy-engine", "policy")
    return (
        new_dashboard(
            "llm-hub-governance",
            "LLM Hub / Governance & compliance",
            "Policy evaluations, compliance rate, violations by regulation and the model/prompt registry.",
            ["governance", "compliance"],
        )
        .with_row(db.Row("Compliance"))
        .with_panel(
            stat_panel(
                "Compliance (range)",
                prom(compliance_ratio(window=RANGE), instant=True),
                unit="percentunit",
                steps=((None, "red"), (0.8, "orange"), (0.95, "green")),
                span=8,
            )
        )
        .with_panel(
            stat_panel(
                "Violations (range)",
                prom(f"sum(increase({sel(VIOLATIONS, F)}[{RANGE}]))", instant=True),
                span=8,
                links=module_events_links("llm-governance", "governance"),
            )
        )
        .with_panel(
            stat_panel(
                "Registered assets", prom('count(llm_registry_asset_info{tenant_id=~"$tenant"})', instant=True), span=8
            )
        )
        .with_panel(
            timeseries_panel(
                "Compliance rate by tenant",
                [prom(compliance_ratio(by="tenant_id"), "{{tenant_id}}")],
                unit="percentunit",
                links=links,
            )
        )
        .with_panel(
            timeseries_panel(
                "Policy evaluations/min by result",
                [prom(f"sum by (result) (rate({sel(EVALS, F)}[{RI}])) * 60", "{{result}}")],
                stacked=True,
                links=links,
            )
        )
        .with_panel(
            table_panel(
                "Compliance by policy (range)",
                [prom(compliance_ratio(by="policy_id", window=RANGE), instant=True)],
                unit="percentunit",
                links=links,
            )
        )
        .with_panel(
            timeseries_panel(
                "Violations/h by regulation",
                [prom(f"sum by (regulation) (rate({sel(VIOLATIONS, F)}[{RI}])) * 3600", "{{regulation}}")],
                stacked=True,
                links=module_events_links("llm-governance", "governance"),
            )
        )
        .with_panel(
            table_panel(
                "Violations by policy and type (range)",
                [
                    prom(
                        f"sum by (policy_id, violation_type, regulation) (increase({sel(VIOLATIONS, F)}[{RANGE}]))",
                        instant=True,
                    )
                ],
            )
        )
        .with_panel(
            table_panel(
                "Registry assets",
                [
                    prom(
                        'max by (asset_type, name, version, asset_id) (llm_registry_asset_info{tenant_id=~"$tenant"})',
                        instant=True,
                    )
                ],
                links=module_events_links("llm-registry", "metadata"),
            )
        )
        .with_row(db.Row("Audit trail"))
        .with_panel(
            logs_panel(
                "Governance and policy events", f'{{source_module=~"llm-governance|llm-policy-engine", {LF}}} | json'
            )
        )
    )


# --------------------------------------------------------------------------- anomalies and forecasts


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


# --------------------------------------------------------------------------- correlations and incidents


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


DASHBOARDS = {
    "executive-summary": executive,
    "performance": performance,
    "cost": cost,
    "security": security,
    "governance": governance,
    "anomalies-forecasts": anomalies,
    "correlations-incidents": correlations,
}
