"""Statistical detectors: ``temporal``, ``anomaly`` and ``cost_impact``.

* temporal — Pearson correlation of abnormal-event frequency series (share of a module's events per
  bucket, so traffic volume alone does not correlate), lagged 0..``max_lag`` buckets, t-test with a
  Bonferroni correction over pairs and lags.
* anomaly — anomalies (given :class:`AnomalyRecord` s, else our own: latency / cost outliers and
  over-represented abnormal events) from two or more modules, clustered by a shared dimension value and
  by time.
* cost_impact — failed operations joined to the cost they incurred (same correlation id, else the same
  model and project within a few seconds): wasted spend.

    >>> from analytics.correlation.frame import build_frame
    >>> detect_cost_impact(build_frame({}), "t")
    []
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd
from scipy import stats

from analytics.correlation._common import (
    confidence_from_p,
    dense_spans,
    make_correlation,
    poisson_surprise,
)
from analytics.correlation.model import AnomalyRecord, Correlation

_ANOMALY_DIMS: Final = ("model", "asset_id", "project", "component")


def detect_temporal(
    df: pd.DataFrame, tenant: str, bucket_s: float, max_lag: int, alpha: float, min_events: int = 10,
) -> list[Correlation]:  # fmt: skip
    ab = df[df["abnormal"].to_numpy() & (df["event_type"] != "metadata").to_numpy()]
    if len(ab) < 2 * min_events:
        return []
    b_us = int(bucket_s * 1e6)
    t0 = int(df["ts"].min())
    nb = int((int(df["ts"].max()) - t0) // b_us) + 1
    if nb < 12:
        return []
    bucket = ((df["ts"].to_numpy() - t0) // b_us).astype(np.int64)
    vol = {m: np.bincount(bucket[(df["component"] == m).to_numpy()], minlength=nb).astype(float)
           for m in df["component"].unique()}  # fmt: skip
    series: dict[tuple[str, str], np.ndarray] = {}
    ab_bucket = bucket[df["abnormal"].to_numpy() & (df["event_type"] != "metadata").to_numpy()]
    for key, idx in ab.groupby(["component", "signal"]).indices.items():
        if len(idx) < min_events:
            continue
        counts = np.bincount(ab_bucket[idx], minlength=nb).astype(float)
        if not _bursty(counts):
            continue
        series[(str(key[0]), str(key[1]))] = counts / np.maximum(vol[key[0]], 1.0)
    keys = sorted(series)
    n_tests = max(len(keys) * (len(keys) - 1) * (max_lag + 1), 1)
    out: list[Correlation] = []
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            best = _best_lag(series[a], series[b], max_lag)
            if best is None:
                continue
            r, lag, p = best
            p *= n_tests
            if p >= alpha or r < 0.45:
                continue
            lead, follow = (a, b) if lag >= 0 else (b, a)
            sub = _elevated_events(ab, ab_bucket, (lead, follow), series)
            if len(sub) < 4:
                continue
            root = sub[(sub["component"] == lead[0]) & (sub["signal"] == lead[1])].sort_values("ts")
            out.append(make_correlation(
                "temporal", tenant, sub, confidence_from_p(p, 0.5),
                f"{lead[1]} ({lead[0]}) leads {follow[1]} ({follow[0]}) by {abs(lag) * bucket_s:g}s, r={r:.2f}",
                f"tmp:{lead}:{follow}:{sub['event_id'].iloc[0]}", str(root["event_id"].iloc[0]) if len(root) else None,
                {"lead": lead[1], "follow": follow[1]},
            ))  # fmt: skip
    return out


def _best_lag(x: np.ndarray, y: np.ndarray, max_lag: int) -> tuple[float, int, float] | None:
    best: tuple[float, int, float] | None = None
    n = len(x)
    for lag in range(-max_lag, max_lag + 1):
        xs, ys = (x[: n - lag], y[lag:]) if lag >= 0 else (x[-lag:], y[: n + lag])
        if len(xs) < 10 or xs.std() == 0 or ys.std() == 0:
            continue
        r = float(np.corrcoef(xs, ys)[0, 1])
        if best is None or r > best[0]:
            t = r * np.sqrt((len(xs) - 2) / max(1e-12, 1 - r * r))
            best = (r, lag, float(stats.t.sf(t, len(xs) - 2)))
    return best


def _bursty(counts: np.ndarray, block: int = 5, alpha: float = 0.01) -> bool:
    """The series is not stationary: its busiest block is improbable under its mean rate (Poisson)."""
    n = len(counts) // block
    if n < 3:
        return False
    blocks = counts[: n * block].reshape(n, block).sum(axis=1)
    return poisson_surprise(int(blocks.max()), float(blocks.mean())) * n < alpha


def _elevated_events(
    ab: pd.DataFrame, ab_bucket: np.ndarray, keys: Sequence[tuple[str, str]], series: dict[tuple[str, str], np.ndarray],
) -> pd.DataFrame:  # fmt: skip
    parts = []
    for key in keys:
        s = series[key]
        hot = np.flatnonzero(s > np.median(s) + 1.5 * s.std())
        sel = ((ab["component"] == key[0]) & (ab["signal"] == key[1])).to_numpy() & np.isin(ab_bucket, hot)
        parts.append(ab[sel])
    return pd.concat(parts)


def anomalous_events(
    df: pd.DataFrame, alpha: float, records: Sequence[AnomalyRecord] | None = None, block_s: float = 10.0,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Per dimension, the mask of events anomalous in a series keyed by that dimension.

    From given anomaly records if any (the same mask for every dimension), else per-series spikes: a
    series is (kind, dimension, value) where kind is an abnormal event's signal, a latency outlier or a
    cost outlier; its events in a block (``block_s``) whose count is improbable under the series' median
    block rate (Poisson, Bonferroni over blocks) are anomalous, with the busy neighbouring blocks.
    """
    mask = np.zeros(len(df), dtype=bool)
    if records:
        ids = {r.event_id for r in records if r.event_id and r.anomaly_score > 1}
        mask |= df["event_id"].isin(ids).to_numpy()
        for r in records:
            if r.event_id or r.anomaly_score <= 1:
                continue
            near = (np.abs(df["ts"].to_numpy() - r.ts_us) <= 1_000_000) & (
                df["source_module"] == r.source_module
            ).to_numpy()
            if r.name:
                near &= (df["name"] == r.name).to_numpy()
            mask |= near
        return dict.fromkeys(_ANOMALY_DIMS, mask)
    kind = np.where(df["abnormal"].to_numpy(), df["signal"].to_numpy(), "")
    kind = np.where(df["slow"].to_numpy(dtype=bool), "latency_outlier", kind)
    kind = np.where(df["cost_outlier"].to_numpy(dtype=bool), "cost_outlier", kind)
    cand = kind != ""
    out = {dim: np.zeros(len(df), dtype=bool) for dim in _ANOMALY_DIMS}
    if cand.sum() < 4:
        return out
    t0 = int(df["ts"].min())
    block = ((df["ts"].to_numpy() - t0) // int(block_s * 1e6)).astype(np.int64)
    n_blocks = int(block.max()) + 1
    if n_blocks < 3:
        return out
    rows = np.flatnonzero(cand)
    for dim in _ANOMALY_DIMS:
        mask = out[dim]
        sub = pd.DataFrame({"k": kind[rows], "v": df[dim].to_numpy()[rows], "b": block[rows], "i": rows}).dropna()
        for _, grp in sub.groupby(["k", "v"], sort=False):
            if len(grp) < 4:
                continue
            counts = np.bincount(grp["b"].to_numpy(), minlength=n_blocks)
            rate = max(float(np.median(counts)), 0.3)
            hot = {
                int(b) for b in np.flatnonzero(counts >= 4) if poisson_surprise(int(counts[b]), rate) * n_blocks < alpha
            }
            if hot:  # the burst's shoulders: neighbouring blocks still above the usual rate
                hot |= {
                    b + d for b in hot for d in (-1, 1) if 0 <= b + d < n_blocks and counts[b + d] >= max(2, 2 * rate)
                }
                mask[grp["i"].to_numpy()[np.isin(grp["b"].to_numpy(), list(hot))]] = True
    return out


def detect_anomalies(
    df: pd.DataFrame, tenant: str, alpha: float, records: Sequence[AnomalyRecord] | None = None,
    cluster_gap_s: float = 15.0,
) -> list[Correlation]:  # fmt: skip
    if df.empty:
        return []
    masks = anomalous_events(df, alpha, records)
    out: list[Correlation] = []
    claimed: set[str] = set()
    change = df[(df["event_type"] == "metadata").to_numpy() & df["abnormal"].to_numpy()]
    for dim in _ANOMALY_DIMS:
        if masks[dim].sum() < 3:
            continue
        an = df[masks[dim]]
        for value, grp in an[an[dim].notna()].groupby(dim):
            grp = grp.sort_values("ts")
            for s, e in dense_spans(grp["ts"].to_numpy(), int(cluster_gap_s * 1e6)):
                part = grp.iloc[s:e]
                if part["source_module"].nunique() < 2 or len(part) < 3:
                    continue
                ids = set(part["event_id"])
                if len(ids & claimed) > 0.5 * len(ids):
                    continue
                claimed |= ids
                t_first = int(part["ts"].iloc[0])
                prior = change[(change[dim] == value).to_numpy() & (change["ts"] <= t_first).to_numpy()
                               & (change["ts"] >= t_first - int(cluster_gap_s * 1e6)).to_numpy()]  # fmt: skip
                events = pd.concat([prior.tail(1), part])
                mods = part["source_module"].nunique()
                conf = min(0.95, 0.45 + 0.12 * mods + 0.03 * min(len(part), 10) + (0.1 if len(prior) else 0.0))
                sigs = ", ".join(list(dict.fromkeys(part["signal"]))[:4])
                out.append(make_correlation(
                    "anomaly", tenant, events, conf,
                    f"{len(part)} anomalies in {mods} modules for {dim}={value}: {sigs}",
                    f"an:{dim}:{value}:{events['event_id'].iloc[0]}", None, {dim: str(value)},
                ))  # fmt: skip
    return out


def detect_cost_impact(df: pd.DataFrame, tenant: str, join_window_s: float = 5.0) -> list[Correlation]:
    if df.empty:
        return []
    failed = df[((df["event_type"] == "telemetry") & (df["status"] == "error")).to_numpy()]
    cost = df[(df["event_type"] == "cost").to_numpy()]
    if failed.empty or cost.empty:
        return []
    by_cid = cost[cost["correlation_id"].isin(set(failed["correlation_id"].dropna()))]
    pairs = failed.merge(by_cid[["correlation_id", "event_id", "value"]], on="correlation_id", suffixes=("", "_cost"))
    pairs["_join"] = "correlation id"
    # events without request ids: join on model + project within a short window
    f = failed[failed["correlation_id"].isna()].dropna(subset=["model", "project"]).sort_values("ts")
    c = cost[cost["correlation_id"].isna()].dropna(subset=["model", "project"]).sort_values("ts")
    if len(f) and len(c):
        near = pd.merge_asof(f, c[["ts", "model", "project", "event_id", "value"]], on="ts", by=["model", "project"],
                             direction="forward", tolerance=int(join_window_s * 1e6), suffixes=("", "_cost"))  # fmt: skip
        near = near.dropna(subset=["event_id_cost"]).assign(_join="model+project")
        pairs = pd.concat([pairs, near], ignore_index=True)
    if pairs.empty:
        return []
    pairs = pairs.assign(_m=pairs["model"].fillna("?"), _p=pairs["project"].fillna("?"))
    out = []
    for (model, project), grp in pairs.groupby(["_m", "_p"]):
        if len(grp) < 2:
            continue
        ids = set(grp["event_id"]) | set(grp["event_id_cost"])
        sub = df[df["event_id"].isin(ids)]
        wasted = float(grp["value_cost"].sum())
        joined_on = "/".join(sorted(set(grp["_join"])))
        conf = min(0.97, (0.7 if "correlation id" in joined_on else 0.5) + 0.04 * min(len(grp), 6))
        root = grp.sort_values("ts").iloc[0]
        corr = make_correlation(
            "cost_impact", tenant, sub, conf,
            f"{len(grp)} failed requests on {model}/{project} were billed ${wasted:.4f} (joined on {joined_on})",
            f"ci:{model}:{project}:{root['event_id']}", str(root["event_id"]), {"model": str(model), "project": str(project)},
        )  # fmt: skip
        corr.impact["cost"]["wasted_usd"] = round(wasted, 6)
        out.append(corr)
    return out
