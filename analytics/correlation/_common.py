"""Helpers shared by the detectors: building a correlation from a slice of the frame, impact, stats."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analytics.correlation.frame import latency_mask
from analytics.correlation.model import Correlation, empty_impact

_LEVELS = ("warning", "error", "critical")
SLA_LATENCY_MS = 10_000.0
SLA_ERROR_SHARE = 0.05


def impact_of(sub: pd.DataFrame) -> dict[str, Any]:
    """Multi-dimensional impact of a set of events (performance, cost, security, business)."""
    imp = empty_impact()
    if sub.empty:
        return imp
    et = sub["event_type"]
    tel = sub[et == "telemetry"]
    errors = int((tel["status"] == "error").sum())
    lat = sub.loc[latency_mask(sub), "value"]
    max_lat = float(lat.max()) if len(lat) else 0.0
    cost = sub[et == "cost"]
    failed_corr = set(tel.loc[tel["status"] == "error", "correlation_id"].dropna())
    wasted = float(cost.loc[cost["correlation_id"].isin(failed_corr), "value"].sum()) if failed_corr else 0.0
    sec = sub[et == "security"]
    max_level = None
    if len(sec):
        max_level = _LEVELS[min(max(int(sec["sev_rank"].max()) - 2, 0), 2)]
    imp["performance"] = {"error_events": errors, "max_latency_ms": round(max_lat, 3)}
    imp["cost"] = {"usd": round(float(cost["value"].sum()), 6), "wasted_usd": round(wasted, 6)}
    imp["security"] = {"findings": len(sec), "max_level": max_level}
    share = errors / max(len(tel), 1)
    imp["business"] = {
        "sla_breach": bool(max_lat > SLA_LATENCY_MS or (errors >= 3 and share > SLA_ERROR_SHARE)),
        "affected_users": int(sub["user_id"].dropna().nunique()),
    }
    return imp


def make_correlation(
    ctype: str, tenant: str, sub: pd.DataFrame, confidence: float, explanation: str, key: str,
    root_event_id: str | None = None, dimensions: dict[str, str] | None = None,
    evidence: dict[str, Any] | None = None,
) -> Correlation:  # fmt: skip
    sub = sub.sort_values("ts", kind="stable")
    root = root_event_id or (str(sub["event_id"].iloc[0]) if len(sub) else None)
    ids = [str(e) for e in sub["event_id"]]
    if root in ids:
        ids.remove(root)
        ids.insert(0, root)
    corr = Correlation.build(
        ctype, tenant, ids, [str(m) for m in sub["source_module"].unique()], confidence, explanation,
        int(sub["ts"].min()), int(sub["ts"].max()), key=key, root_event_id=root, dimensions=dimensions,
        evidence=evidence,
    )  # fmt: skip
    corr.impact = impact_of(sub)
    return corr


def poisson_surprise(observed: int, expected: float) -> float:
    """P(X >= observed) for X ~ Poisson(expected)."""
    return float(stats.poisson.sf(observed - 1, max(expected, 1e-9)))


def confidence_from_p(p: float, base: float = 0.5) -> float:
    """Map a p-value to (base, 0.99]: 1e-3 → ~base+0.2, 1e-12 → ~0.99."""
    s = min(-np.log10(max(p, 1e-300)), 20.0)
    return float(min(0.99, base + (0.99 - base) * (1 - np.exp(-s / 6.0))))


def over_represented(
    df: pd.DataFrame, mask: np.ndarray, dim: str, alpha: float, min_count: int = 3,
) -> list[tuple[str, int, float]]:  # fmt: skip
    """Values of ``dim`` with more ``mask`` events than their share of all events predicts.

    Returns (value, count, p-value) with p < alpha (Bonferroni over the values tested).
    """
    vals = df[dim]
    total = vals.value_counts()
    hits = vals[mask].value_counts()
    n_hits = int(mask.sum())
    n_all = int(total.sum())
    if n_hits < min_count or n_all == 0:
        return []
    out = []
    k = max(len(hits), 1)
    for value, count in hits.items():
        if count < min_count:
            continue
        expected = n_hits * total[value] / n_all
        p = poisson_surprise(int(count), expected) * k
        if p < alpha:
            out.append((str(value), int(count), p))
    return out


def dense_spans(ts: np.ndarray, gap_us: int) -> list[tuple[int, int]]:
    """Split sorted timestamps into runs separated by more than ``gap_us``; (start index, end index)."""
    if len(ts) == 0:
        return []
    cuts = np.flatnonzero(np.diff(ts) > gap_us) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(ts)]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))
