"""Synthetic series that follow the hub's metric contract, for loading into a real VictoriaMetrics.

    lines = contract_series(end_ms=..., minutes=180)     # JSON lines for /api/v1/import
    httpx.post(f"{vm.url}/api/v1/import", content="\n".join(lines))

Two tenants, two models per tenant, teams and projects, every metric of docs/runbooks/README.md
(histograms with buckets, counters that grow, the analytic processors' derived series and the
hub's own), one sample per minute. Values are deterministic (no randomness).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

STEP_MS = 60_000

TENANTS = ("acme", "globex")
ENVIRONMENT = "prod"
MODELS = (
    # model, provider, team, project
    ("gpt-4o", "openai", "search", "assistant"),
    ("claude-3-5-sonnet", "anthropic", "support", "helpdesk"),
)
LATENCY_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TTFT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
TOKEN_BUCKETS = (64, 256, 1024, 4096, 16384)


class _Builder:
    def __init__(self, end_ms: int, minutes: int) -> None:
        self.timestamps = [end_ms - (minutes - 1 - i) * STEP_MS for i in range(minutes)]
        self.lines: list[str] = []

    def add(self, name: str, labels: dict[str, str], values: list[float]) -> None:
        metric = {"__name__": name, **{k: v for k, v in labels.items() if v != ""}}
        self.lines.append(json.dumps({"metric": metric, "values": values, "timestamps": self.timestamps}))

    def counter(self, name: str, labels: dict[str, str], per_minute: float, wobble: float = 0.0) -> None:
        total, values = 0.0, []
        for i in range(len(self.timestamps)):
            total += per_minute * (1 + wobble * math.sin(i / 7))
            values.append(round(total, 6))
        self.add(name, labels, values)

    def gauge(self, name: str, labels: dict[str, str], value: float, wobble: float = 0.0) -> None:
        self.add(name, labels, [value * (1 + wobble * math.sin(i / 9)) for i in range(len(self.timestamps))])

    def histogram(
        self, name: str, labels: dict[str, str], buckets: tuple[float, ...], per_minute: float, typical: float
    ) -> None:
        """Observations spread around ``typical``: a fixed share lands in each bucket."""
        shares = []
        for upper in buckets:
            shares.append(
                min(1.0, 0.5 * (upper / typical)) if upper < typical else min(1.0, 0.5 + 0.5 * (1 - typical / upper))
            )
        for upper, share in zip(buckets, shares, strict=True):
            self.counter(f"{name}_bucket", {**labels, "le": _le(upper)}, per_minute * share)
        self.counter(f"{name}_bucket", {**labels, "le": "+Inf"}, per_minute)
        self.counter(f"{name}_count", labels, per_minute)
        self.counter(f"{name}_sum", labels, per_minute * typical)


def _le(upper: float) -> str:
    return str(int(upper)) if float(upper).is_integer() and upper >= 64 else repr(float(upper))


def contract_series(end_ms: int, minutes: int = 180) -> list[str]:
    """JSON lines (VictoriaMetrics /api/v1/import format) for every series of the contract."""
    b = _Builder(end_ms, minutes)
    for t_index, tenant in enumerate(TENANTS):
        base = {"tenant_id": tenant, "environment": ENVIRONMENT}
        for m_index, (model, provider, team, project) in enumerate(MODELS):
            scale = 1.0 + t_index + m_index  # different volumes per tenant/model
            obs = {
                **base,
                "job": "llm-observatory",
                "gen_ai_request_model": model,
                "gen_ai_provider_name": provider,
                "team": team,
                "project": project,
            }
            chat = {**obs, "gen_ai_operation_name": "chat"}
            b.histogram("gen_ai_client_operation_duration_seconds", chat, LATENCY_BUCKETS, 60 * scale, 2.0 + m_index)
            for error_type, share in (("timeout", 0.02), ("rate_limited", 0.01)):
                b.histogram(
                    "gen_ai_client_operation_duration_seconds",
                    {**chat, "error_type": error_type},
                    LATENCY_BUCKETS,
                    60 * scale * share,
                    8.0,
                )
            b.histogram("gen_ai_server_time_to_first_token_seconds", chat, TTFT_BUCKETS, 30 * scale, 0.4)
            for token_type, typical in (("input", 800.0), ("output", 300.0)):
                b.histogram(
                    "gen_ai_client_token_usage",
                    {**chat, "gen_ai_token_type": token_type},
                    TOKEN_BUCKETS,
                    60 * scale,
                    typical,
                )
            costops = {**base, "job": "llm-costops", "gen_ai_request_model": model, "team": team, "project": project}
            for cost_type, per_minute in (("token", 0.5), ("api", 0.05), ("compute", 0.1), ("storage", 0.01)):
                b.counter("llm_cost_usd_total", {**costops, "cost_type": cost_type}, per_minute * scale, 0.2)

            budget = {"budget_id": f"{tenant}-{team}", "tenant_id": tenant, "team": team, "project": project}
            end_s = end_ms / 1000
            b.gauge("budget_limit_usd", budget, 10_000.0)
            b.gauge("budget_spend_usd", budget, 4_000.0 * scale)
            b.gauge("budget_exhaustion_timestamp_seconds", budget, end_s + 86400 * (10 / scale))
            # forecasts of the two query aliases the rules and dashboards use
            hourly = {**base, "team": team, "project": project}
            spend_per_hour = 60 * 0.66 * scale
            for series, factor in (("yhat", 1.0), ("yhat_lower", 0.8), ("yhat_upper", 1.2)):
                b.gauge(
                    series,
                    {**hourly, "for": "cost_usd_hourly", "model_alias": "prophet"},
                    spend_per_hour * factor,
                    0.05,
                )
                b.gauge(
                    series,
                    {**base, "gen_ai_request_model": model, "for": "requests_rate", "model_alias": "holtwinters"},
                    1.03 * scale * factor,
                    0.05,
                )
            b.gauge(
                "anomaly_score",
                {**hourly, "for": "cost_usd_hourly", "model_alias": "prophet"},
                1.6 if (t_index, m_index) == (0, 0) else 0.3,
                0.2,
            )
            b.gauge(
                "anomaly_alert",
                {**hourly, "for": "cost_usd_hourly", "model_alias": "prophet"},
                1.6 if (t_index, m_index) == (0, 0) else 0.0,
                0.0,
            )

        sentinel = {**base, "job": "llm-sentinel"}
        for threat_type in ("prompt_injection", "pii_leak", "jailbreak", "data_exfiltration", "toxic_content"):
            for level, action, per_minute in (
                ("high", "blocked", 2.0),
                ("medium", "flagged", 1.0),
                ("low", "allowed", 0.5),
                ("critical", "redacted", 0.1),
            ):
                b.counter(
                    "llm_security_threats_total",
                    {**sentinel, "threat_type": threat_type, "threat_level": level, "action": action},
                    per_minute * (1 + t_index),
                    0.3,
                )
        governance = {**base, "job": "llm-governance"}
        for policy_id, violation_type, regulation in (
            ("pii-retention", "pii_retention", "gdpr"),
            ("ai-disclosure", "missing_disclosure", "eu_ai_act"),
        ):
            b.counter(
                "llm_governance_violations_total",
                {**governance, "policy_id": policy_id, "violation_type": violation_type, "regulation": regulation},
                0.2,
                0.5,
            )
        policy = {**base, "job": "llm-policy-engine"}
        for policy_id in ("rate-limit", "pii-filter"):
            for result, per_minute in (("pass", 95.0), ("fail", 3.0), ("warn", 2.0)):
                b.counter(
                    "llm_policy_evaluations_total",
                    {**policy, "policy_id": policy_id, "result": result},
                    per_minute,
                    0.1,
                )
        registry = {**base, "job": "llm-registry"}
        for asset_id, asset_type, name, version in (
            ("m-1", "model", "gpt-4o", "2024-08-06"),
            ("p-1", "prompt", "support-triage", "3"),
            ("d-1", "dataset", "faq-eval", "1.2.0"),
        ):
            b.gauge(
                "llm_registry_asset_info",
                {**registry, "asset_id": asset_id, "asset_type": asset_type, "name": name, "version": version},
                1.0,
            )
        hub = {**base, "job": "llm-analytics-hub"}
        for c_index, kind in enumerate(
            (
                "causal_chain",
                "temporal",
                "pattern",
                "anomaly",
                "cost_impact",
                "security_incident",
                "performance_degradation",
                "compliance_cascade",
            )
        ):
            b.counter("hub_correlations_total", {**hub, "type": kind}, 0.05 * (1 + c_index % 3))
        b.gauge("hub_incidents_open", hub, 2.0 + t_index)
        for receiver in ("otlp_grpc", "rest", "kafka"):
            b.counter("hub_ingest_events_total", {**hub, "receiver": receiver}, 600.0, 0.1)

    hub_self = {"job": "llm-analytics-hub", "environment": ENVIRONMENT}
    for receiver, reason in (("rest", "schema"), ("kafka", "unsupported_major_version"), ("otlp_grpc", "too_old")):
        b.counter("hub_ingest_rejected_total", {**hub_self, "receiver": receiver, "reason": reason}, 3.0)
    for queue, depth in (("wal", 120.0), ("export_victoriametrics", 40.0), ("export_loki", 15.0)):
        b.gauge("hub_queue_depth", {**hub_self, "queue": queue}, depth, 0.5)
    for exporter, records, retries in (("victoriametrics", 900.0, 0.2), ("loki", 300.0, 0.1)):
        b.counter("hub_export_records_total", {**hub_self, "exporter": exporter}, records)
        b.counter("hub_export_retries_total", {**hub_self, "exporter": exporter}, retries)
        b.counter("hub_export_dead_lettered_total", {**hub_self, "exporter": exporter}, 0.01)
    b.histogram(
        "hub_request_duration_seconds",
        {**hub_self, "handler": "/api/v1/events"},
        (0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
        1200.0,
        0.02,
    )
    return b.lines


def iter_chunks(lines: list[str], size: int = 500) -> Iterator[bytes]:
    for i in range(0, len(lines), size):
        yield ("\n".join(lines[i : i + size]) + "\n").encode()


def load_into(vm_url: str, end_ms: int, minutes: int = 180) -> None:
    """Import :func:`contract_series` into the VictoriaMetrics at ``vm_url`` (call its flush after)."""
    import urllib.request

    for chunk in iter_chunks(contract_series(end_ms, minutes)):
        req = urllib.request.Request(f"{vm_url}/api/v1/import", data=chunk, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            if resp.status not in (200, 204):
                raise RuntimeError(f"import failed: HTTP {resp.status}")
