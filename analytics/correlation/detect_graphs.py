"""Graph detectors: ``security_incident``, ``performance_degradation``; dependencies from the stream.

* security_incident — security events are joined through *hot* indicators (an IP, user, API key or
  model seen in far more findings than its kind's average); each connected component with three or more
  findings is an incident, with the related events of its users and requests.
* performance_degradation — components (``tags.service`` or module) whose latency outliers or errors
  make up a large share of their events in some bucket are *degraded*; degraded components adjacent in
  the dependency graph form one degradation, its root the component that degraded first.

    >>> from analytics.correlation.frame import build_frame
    >>> detect_security_incidents(build_frame({}), "t")
    []
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Final

import numpy as np
import pandas as pd

from analytics.correlation._common import make_correlation, poisson_surprise
from analytics.correlation.frame import latency_mask
from analytics.correlation.model import Correlation

INDICATORS: Final = ("source_ip", "api_key_id", "user_id")
#: Reported with an incident but not used to join findings (everyone shares a model).
WEAK_INDICATORS: Final = ("model",)
Edges = dict[tuple[str, str], float]


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def hot_indicators(sec: pd.DataFrame, kind: str, min_count: int = 3, factor: float = 3.0) -> set[str]:
    """Values of indicator ``kind`` in far more findings than the kind's other values (Poisson, p < 0.01)."""
    counts = sec[kind].dropna().value_counts()
    if counts.empty:
        return set()
    total, n = float(counts.sum()), len(counts)
    out = set()
    for v, c in counts.items():
        rest = (total - c) / (n - 1) if n > 1 else 0.0
        mean = max(rest, 0.5)
        if c >= min_count and c >= factor * mean and poisson_surprise(int(c), mean) < 0.01:
            out.add(str(v))
    return out


def detect_security_incidents(df: pd.DataFrame, tenant: str, min_findings: int = 3) -> list[Correlation]:
    sec = df[(df["event_type"] == "security").to_numpy()].reset_index(drop=True)
    if len(sec) < min_findings:
        return []
    uf = _UnionFind(len(sec))
    used: dict[int, set[str]] = defaultdict(set)
    for kind in INDICATORS:
        hot = hot_indicators(sec, kind)
        for value in hot:
            idx = np.flatnonzero((sec[kind] == value).to_numpy())
            for j in idx[1:]:
                uf.union(int(idx[0]), int(j))
            for j in idx:
                used[int(j)].add(f"{kind}={value}")
    comps: dict[int, list[int]] = defaultdict(list)
    for i in used:
        comps[uf.find(i)].append(i)
    out = []
    for members in comps.values():
        if len(members) < min_findings:
            continue
        part = sec.iloc[members]
        indicators = sorted(set().union(*(used[i] for i in members)))
        users = set(part["user_id"].dropna())
        cids = set(part["correlation_id"].dropna())
        t0, t1 = int(part["ts"].min()), int(part["ts"].max())
        near = (df["ts"] >= t0 - 60_000_000).to_numpy() & (df["ts"] <= t1 + 60_000_000).to_numpy()
        related = df[near & df["abnormal"].to_numpy() & (df["event_type"] != "security").to_numpy()
                     & (df["user_id"].isin(users) | df["correlation_id"].isin(cids)).to_numpy()]  # fmt: skip
        events = pd.concat([part, related])
        levels = int(part["sev_rank"].max())
        conf = min(0.98, 0.5 + 0.04 * min(len(part), 8) + 0.05 * min(len(indicators), 3) + 0.03 * (levels - 2))
        threats = ", ".join(sorted(set(part["name"])))
        root = part.sort_values(["ts", "sev_rank"], ascending=[True, False]).iloc[0]
        out.append(make_correlation(
            "security_incident", tenant, events, conf,
            f"{len(part)} findings ({threats}) linked by {', '.join(indicators[:4])}; {len(related)} related events",
            f"sec:{root['event_id']}", str(root["event_id"]), {"indicators": ";".join(indicators[:8])},
        ))  # fmt: skip
    return out


def dependencies_from_frame(df: pd.DataFrame) -> Edges:
    """Component A → B when, within a correlation id, A reported strictly before B (counts)."""
    g = df[df["correlation_id"].notna()][["correlation_id", "component", "ts"]]
    if g.empty:
        return {}
    first = g.groupby(["correlation_id", "component"], sort=False)["ts"].min().reset_index()
    first = first.sort_values(["correlation_id", "ts"], kind="stable")
    cid = first["correlation_id"].to_numpy()
    comp = first["component"].to_numpy()
    ts = first["ts"].to_numpy()
    ok = (cid[:-1] == cid[1:]) & (ts[:-1] < ts[1:])
    edges: Edges = defaultdict(float)
    for a, b in zip(comp[:-1][ok], comp[1:][ok], strict=True):
        edges[(str(a), str(b))] += 1.0
    return dict(edges)


def _degraded(df: pd.DataFrame, bucket_us: int, min_share: float) -> dict[str, tuple[int, int, pd.DataFrame]]:
    """component → (onset ts, end ts, its bad events) for degraded components."""
    lat = latency_mask(df)
    tel = (df["event_type"] == "telemetry").to_numpy()
    bad = (df["slow"].to_numpy(dtype=bool) | (tel & (df["status"] == "error").to_numpy())) & tel
    t0 = int(df["ts"].min())
    bucket = (df["ts"].to_numpy() - t0) // bucket_us
    out = {}
    for comp, idx in df[tel | lat].groupby("component").indices.items():
        rows = np.flatnonzero(tel | lat)[idx]
        b = bucket[rows]
        total = np.bincount(b)
        badc = np.bincount(b[bad[rows]], minlength=len(total))
        hot = np.flatnonzero((badc >= 2) & (badc >= min_share * np.maximum(total, 1)))
        if len(hot) == 0:
            continue
        lo, hi = t0 + int(hot[0]) * bucket_us, t0 + (int(hot[-1]) + 1) * bucket_us
        ts = df["ts"].to_numpy()[rows]
        bad_ts = np.sort(ts[bad[rows]])
        # walk back from the onset while bad events keep coming (the first symptoms precede the hot bucket)
        k = int(np.searchsorted(bad_ts, lo))
        while k > 0 and lo - bad_ts[k - 1] <= bucket_us:
            k -= 1
            lo = int(bad_ts[k])
        sel = rows[bad[rows] & (ts >= lo) & (ts < hi)]
        part = df.iloc[sel]
        out[str(comp)] = (int(part["ts"].min()), int(part["ts"].max()), part)
    return out


def detect_performance_degradation(
    df: pd.DataFrame, tenant: str, deps: Edges, bucket_s: float = 5.0, min_share: float = 0.25,
) -> list[Correlation]:  # fmt: skip
    if df.empty:
        return []
    deg = _degraded(df, int(bucket_s * 1e6), min_share)
    if len(deg) < 2:
        return []
    names = sorted(deg)
    uf = _UnionFind(len(names))
    pos = {n: i for i, n in enumerate(names)}
    for (a, b), w in deps.items():
        if a in pos and b in pos and w > 0:
            uf.union(pos[a], pos[b])
    groups: dict[int, list[str]] = defaultdict(list)
    for n in names:
        groups[uf.find(pos[n])].append(n)
    out = []
    for comps in groups.values():
        if len(comps) < 2:
            continue
        order = sorted(comps, key=lambda c: (deg[c][0], -sum(w for (a, _), w in deps.items() if a == c)))
        events = pd.concat([deg[c][2] for c in order])
        root_part = deg[order[0]][2].sort_values("ts")
        n_dep = sum(1 for a, b in itertools.pairwise(order) if deps.get((a, b), 0) > 0)
        conf = min(0.97, 0.5 + 0.08 * len(order) + 0.1 * n_dep / max(len(order) - 1, 1) + 0.02 * min(len(events), 10))
        out.append(make_correlation(
            "performance_degradation", tenant, events, conf,
            "degradation propagated " + " → ".join(order) + f" ({len(events)} slow/failed operations)",
            f"pd:{'|'.join(sorted(order))}:{root_part['event_id'].iloc[0]}", str(root_part["event_id"].iloc[0]),
            {"component": order[0]},
        ))  # fmt: skip
    return out
