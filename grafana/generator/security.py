"""The dashboard "LLM Hub / Security" (``security.json``): threats detected by llm-sentinel and what the
guardrails did.

    >>> from grafana.generator.security import security
    >>> security().build().uid
    'llm-hub-security'
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .common import (
    LF,
    LOKI,
    F,
    logs_panel,
    loki,
    module_events_links,
    new_dashboard,
    prom,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from .queries import (
    RANGE,
    RI,
    THREATS,
    sel,
)


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
