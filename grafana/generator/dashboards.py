"""The hub's seven dashboards, as code: ``DASHBOARDS`` maps each file stem to its factory.

``build_all()`` (:mod:`grafana.generator`) returns them as Grafana JSON models. Each dashboard lives in
a module of its own (:mod:`~grafana.generator.executive`, :mod:`~grafana.generator.performance`,
:mod:`~grafana.generator.cost`, :mod:`~grafana.generator.security`, :mod:`~grafana.generator.governance`,
:mod:`~grafana.generator.anomalies`, :mod:`~grafana.generator.correlations`); the PromQL building blocks
they share are in :mod:`~grafana.generator.queries`, and the panel factories in
:mod:`~grafana.generator.common`.

Every PromQL query uses only the series of the metric contract (docs/runbooks/README.md) and the
template variables ``$tenant``, ``$environment``, ``$model``, ``$team``; tests execute each one
against a real VictoriaMetrics loaded with synthetic data (tests/assets/test_dashboards.py)::

    >>> from grafana.generator.dashboards import DASHBOARDS
    >>> sorted(DASHBOARDS)[:3]
    ['anomalies-forecasts', 'correlations-incidents', 'cost']
    >>> DASHBOARDS["cost"]().build().title
    'LLM Hub / Cost & budgets'
"""

from __future__ import annotations

from .anomalies import anomalies
from .correlations import correlations
from .cost import cost
from .executive import executive
from .governance import governance
from .performance import performance
from .queries import (
    COST,
    DUR,
    EVALS,
    RANGE,
    RI,
    THREATS,
    TOKENS,
    TTFT,
    VIOLATIONS,
    compliance_ratio,
    error_ratio,
    quantile,
    sel,
)
from .security import security

#: the dashboard factories, and the query helpers and metric names they were defined beside before the split
__all__ = [
    "COST",
    "DASHBOARDS",
    "DUR",
    "EVALS",
    "RANGE",
    "RI",
    "THREATS",
    "TOKENS",
    "TTFT",
    "VIOLATIONS",
    "anomalies",
    "compliance_ratio",
    "correlations",
    "cost",
    "error_ratio",
    "executive",
    "governance",
    "performance",
    "quantile",
    "security",
    "sel",
]

DASHBOARDS = {
    "executive-summary": executive,
    "performance": performance,
    "cost": cost,
    "security": security,
    "governance": governance,
    "anomalies-forecasts": anomalies,
    "correlations-incidents": correlations,
}
