"""PromQL building blocks shared by the dashboards: metric names of the contract and query helpers.

Every query uses only the series of the metric contract (docs/runbooks/README.md) and the template
variables ``$tenant``, ``$environment``, ``$model``, ``$team`` (the filters ``F``, ``FM``, ``FT`` of
:mod:`grafana.generator.common`, ``FM`` by default):

    >>> from grafana.generator.queries import COST, DUR, error_ratio, quantile, sel
    >>> sel(COST, 'tenant_id=~"$tenant"', 'cost_type="token"')
    'llm_cost_usd_total{tenant_id=~"$tenant", cost_type="token"}'
    >>> quantile(0.95, DUR, by="").startswith("histogram_quantile(0.95, sum by (le) (rate(" + DUR + "_bucket{")
    True
    >>> error_ratio(by="", window="1h").startswith("(sum (rate(" + DUR + "_count{")
    True
"""

from __future__ import annotations

from .common import FM, F

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
