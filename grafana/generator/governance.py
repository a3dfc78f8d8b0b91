"""The dashboard "LLM Hub / Governance & compliance" (``governance.json``): policy evaluations, compliance
rate, violations by regulation and the model/prompt registry.

    >>> from grafana.generator.governance import governance
    >>> governance().build().uid
    'llm-hub-governance'
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .common import (
    LF,
    F,
    logs_panel,
    module_events_links,
    new_dashboard,
    prom,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from .queries import (
    EVALS,
    RANGE,
    RI,
    VIOLATIONS,
    compliance_ratio,
    sel,
)


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
