"""Sequence detectors: ``causal_chain``, ``pattern`` and ``compliance_cascade``.

* causal_chain — events that share a ``correlation_id`` within ``chain_max_gap_s`` of each other, with
  abnormal events in at least two modules; the first abnormal event is the root.
* pattern — frequent sequential patterns of abnormal signals mined per request (correlation id) or per
  component session, matched against :data:`KNOWN_SIGNATURES` (unknown but frequent long patterns are
  reported with lower confidence).
* compliance_cascade — two or more compliance signals (policy fail/warn, governance violation) bursting
  on the same dimension value in temporal order (A before B), with the operational events in between.

    >>> from analytics.correlation.frame import build_frame
    >>> detect_causal_chains(build_frame({}), "t", 60.0)
    []
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from typing import Final

import numpy as np
import pandas as pd

from analytics.correlation._common import confidence_from_p, make_correlation, over_represented
from analytics.correlation.model import Correlation

#: Known failure signatures: each step is a set of keywords, any of which must appear in the signal.
KNOWN_SIGNATURES: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "retry_storm_to_circuit_breaker": (("error",), ("retry",), ("timeout",), ("circuit",)),
    "error_retry_timeout": (("error",), ("retry",), ("timeout",)),
    "rate_limit_retry_storm": (("rate",), ("retry",)),
    "injection_to_violation": (("security:",), ("governance:violation", "policy:fail")),
    "change_then_errors": (("metadata:updated", "metadata:deprecated"), ("telemetry:error",)),
}
_SESSION_GAP_US: Final = 10_000_000


def detect_causal_chains(df: pd.DataFrame, tenant: str, max_gap_s: float) -> list[Correlation]:
    if df.empty:
        return []
    g = df[df["correlation_id"].notna()]
    ab = g[g["abnormal"].to_numpy()]
    counts = ab.groupby("correlation_id")["source_module"].nunique()
    keys = set(counts[counts >= 2].index)
    if not keys:
        return []
    out = []
    gap = int(max_gap_s * 1e6)
    for cid, sub in g[g["correlation_id"].isin(keys)].groupby("correlation_id", sort=False):
        sub = sub.sort_values("ts", kind="stable")
        ts = sub["ts"].to_numpy()
        # temporal proximity: keep the run of events (gaps < max_gap) holding the most abnormal events
        seg = np.concatenate([[0], np.cumsum(np.diff(ts) > gap)])
        best = pd.Series(sub["abnormal"].to_numpy()).groupby(seg).sum().idxmax()
        sub = sub[seg == best]
        abn = sub[sub["abnormal"].to_numpy()]
        if abn["source_module"].nunique() < 2:
            continue
        ordered = abn["ts"].nunique() > 1  # simultaneous reports carry no evidence of order
        conf = 0.45 + 0.1 * min(len(abn) - 1, 3) + (0.15 if ordered else -0.15) + 0.02 * int(abn["sev_rank"].max())
        root = abn.sort_values(["ts", "sev_rank"], ascending=[True, False], kind="stable").iloc[0]
        path = " → ".join(dict.fromkeys(abn["signal"]))
        out.append(make_correlation(
            "causal_chain", tenant, sub, conf, f"request {cid}: {path} within {(ts.max() - ts.min()) / 1e6:.1f}s",
            f"cid:{cid}", str(root["event_id"]), {"correlation_id": str(cid)},
        ))  # fmt: skip
    return out


def _sessions(df: pd.DataFrame) -> list[pd.DataFrame]:
    """Abnormal events grouped per correlation id, else per (component, model) sessions."""
    ab = df[df["abnormal"].to_numpy()]
    groups = [s for _, s in ab[ab["correlation_id"].notna()].groupby("correlation_id", sort=False) if len(s) >= 2]
    rest = ab[ab["correlation_id"].isna()]
    if len(rest):
        rest = rest.assign(_m=rest["model"].fillna(""))
        for _, s in rest.groupby(["component", "_m"], sort=False):
            s = s.sort_values("ts")
            cut = np.concatenate([[0], np.cumsum(np.diff(s["ts"].to_numpy()) > _SESSION_GAP_US)])
            groups.extend(part for _, part in s.groupby(cut) if len(part) >= 2)
    return groups


def _matches(pattern: tuple[str, ...], signature: tuple[tuple[str, ...], ...]) -> bool:
    """True if the signature's steps occur in order (as a subsequence) in the pattern."""
    i = 0
    for sig in pattern:
        if i < len(signature) and any(k in sig for k in signature[i]):
            i += 1
    return i == len(signature)


def detect_patterns(df: pd.DataFrame, tenant: str, min_support: int = 3) -> list[Correlation]:
    if df.empty:
        return []
    seqs: list[tuple[tuple[str, ...], pd.DataFrame]] = []
    for s in _sessions(df):
        s = s.sort_values("ts", kind="stable")
        sig = tuple(k for i, k in enumerate(s["signal"]) if i == 0 or k != s["signal"].iloc[i - 1])
        if len(sig) >= 2:
            seqs.append((sig, s))
    support: Counter[tuple[str, ...]] = Counter()
    for sig, _ in seqs:
        grams = {sig[i : i + n] for n in range(2, 5) for i in range(len(sig) - n + 1)}
        support.update(grams)
    frequent = {p: c for p, c in support.items() if c >= min_support}
    # keep maximal patterns (not inside a longer frequent pattern with at least the same support)
    maximal = [p for p in frequent if not any(len(q) > len(p) and frequent[q] >= frequent[p] and
                                              any(q[i : i + len(p)] == p for i in range(len(q) - len(p) + 1))
                                              for q in frequent)]  # fmt: skip
    out = []
    for pat in sorted(maximal, key=lambda p: (-len(p), -frequent[p])):
        known = [name for name, sig in KNOWN_SIGNATURES.items() if _matches(pat, sig)]
        if not known and (len(pat) < 3 or frequent[pat] < 2 * min_support):
            continue
        occ = [s for sig, s in seqs if any(sig[i : i + len(pat)] == pat for i in range(len(sig) - len(pat) + 1))]
        events = pd.concat(occ)
        first = min(occ, key=lambda s: int(s["ts"].iloc[0]))
        name = known[0] if known else "mined"
        conf = (0.7 if known else 0.45) + 0.05 * min(frequent[pat] - min_support, 4) + 0.03 * (len(pat) - 2)
        out.append(make_correlation(
            "pattern", tenant, events, conf,
            f"{name}: {' → '.join(pat)} seen {frequent[pat]} times", f"pat:{'|'.join(pat)}:{first['event_id'].iloc[0]}",
            str(first["event_id"].iloc[0]), {"pattern": name},
        ))  # fmt: skip
    return out


_COMPLIANCE = ("policy:fail:", "policy:warn:", "governance:violation:")
_CASCADE_DIMS: Final = ("project", "user_id", "model", "team")


def detect_compliance_cascades(df: pd.DataFrame, tenant: str, alpha: float) -> list[Correlation]:
    if df.empty:
        return []
    comp = df["signal"].str.startswith(_COMPLIANCE).to_numpy()
    if comp.sum() < 4:
        return []
    out: list[Correlation] = []
    claimed: set[str] = set()
    for dim in _CASCADE_DIMS:
        for value in {v for v, _, _ in over_represented(df, comp, dim, alpha)}:
            sel = (df[dim] == value).to_numpy()
            sub_c = df[sel & comp]
            bursting = []
            for sig, s in sub_c.groupby("signal"):
                mask = comp & (df["signal"] == sig).to_numpy()
                hits = [p for v, _, p in over_represented(df, mask, dim, alpha) if v == value]
                if hits:
                    bursting.append((int(s["ts"].min()), str(sig), hits[0], s))
            if len(bursting) < 2:
                continue
            bursting.sort(key=lambda b: b[0])
            start = bursting[0][0]
            end = int(max(int(b[3]["ts"].max()) for b in bursting))
            window = df[sel & (df["ts"] >= start).to_numpy() & (df["ts"] <= end).to_numpy()]
            between = window[window["abnormal"].to_numpy() & ~window["signal"].str.startswith(_COMPLIANCE).to_numpy()]
            events = pd.concat([b[3] for b in bursting] + [between])
            ids = set(events["event_id"])
            if len(ids & claimed) > 0.5 * len(ids):
                continue
            claimed |= ids
            root = bursting[0][3].sort_values("ts").iloc[0]
            chain = " → ".join(b[1].split(":", 1)[1] for b in bursting)
            if len(between):
                chain = chain.replace(" → ", f" → {len(between)} operational events → ", 1)
            p = max(b[2] for b in bursting[:2])
            out.append(make_correlation(
                "compliance_cascade", tenant, events, confidence_from_p(p, 0.55),
                f"{dim}={value}: {chain}", f"cc:{dim}:{value}:{root['event_id']}", str(root["event_id"]),
                {dim: str(value)},
            ))  # fmt: skip
    return out


def policy_dependencies(correlations: list[Correlation]) -> dict[tuple[str, str], int]:
    """Policy → policy edges implied by cascades (for the dependency graph)."""
    edges: dict[tuple[str, str], int] = defaultdict(int)
    for c in correlations:
        if c.type == "compliance_cascade":
            steps = [s.strip() for s in c.explanation.split(":", 1)[-1].split("→") if "events" not in s]
            for a, b in itertools.pairwise(steps):
                edges[(a, b)] += 1
    return dict(edges)
