"""Run every detector over one frame of events: the core both the stream and on-demand analysis call.

>>> from analytics.correlation.frame import build_frame
>>> detect_all(build_frame({}), "t1", EngineConfig())
[]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pandas as pd

from analytics.correlation.detect_graphs import (
    Edges,
    dependencies_from_frame,
    detect_performance_degradation,
    detect_security_incidents,
)
from analytics.correlation.detect_sequences import detect_causal_chains, detect_compliance_cascades, detect_patterns
from analytics.correlation.detect_stats import detect_anomalies, detect_cost_impact, detect_temporal
from analytics.correlation.model import AnomalyRecord, Correlation, EngineConfig

log = logging.getLogger(__name__)


def detect_all(
    df: pd.DataFrame, tenant: str, config: EngineConfig, deps: Edges | None = None,
    anomalies: Sequence[AnomalyRecord] | None = None, types: Sequence[str] | None = None,
) -> list[Correlation]:  # fmt: skip
    """All correlations found in ``df`` (one tenant), above ``config.min_confidence``.

    ``deps`` adds known dependency edges (e.g. from traces) to those learned from correlation ids.
    A detector that fails is logged and skipped: one bad case never hides the others.
    """
    if df.empty:
        return []
    learned = dependencies_from_frame(df)
    for edge, w in (deps or {}).items():
        learned[edge] = learned.get(edge, 0.0) + w
    alpha = config.temporal_alpha
    detectors: dict[str, Callable[[], list[Correlation]]] = {
        "causal_chain": lambda: detect_causal_chains(
            df, tenant, config.chain_max_gap_s, config.chain_alpha, config.chain_min_lift),
        "temporal": lambda: detect_temporal(df, tenant, config.bucket_s, config.max_lag_buckets, alpha),
        "pattern": lambda: detect_patterns(df, tenant),
        "anomaly": lambda: detect_anomalies(df, tenant, alpha, anomalies),
        "cost_impact": lambda: detect_cost_impact(df, tenant),
        "security_incident": lambda: detect_security_incidents(df, tenant),
        "performance_degradation": lambda: detect_performance_degradation(df, tenant, learned),
        "compliance_cascade": lambda: detect_compliance_cascades(df, tenant, alpha),
    }
    out: list[Correlation] = []
    for name, run in detectors.items():
        if types is not None and name not in types:
            continue
        try:
            out.extend(c for c in run() if c.confidence >= config.min_confidence)
        except Exception:  # pragma: no cover - defensive: keep the other detectors' results
            log.exception("correlation detector failed", extra={"detector": name})
    return out
