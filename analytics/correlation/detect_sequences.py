"""Sequence detectors: ``causal_chain``, ``pattern`` and ``compliance_cascade``.

* causal_chain — events that share a ``correlation_id`` within ``chain_max_gap_s`` of each other, with
  abnormal events in at least two modules whose co-occurrence on requests is well above what the
  modules' own rates predict (a base-rate test, so two busy modules do not chain by coincidence); the
  first abnormal event is the root.
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
from typing import Any, Final

import numpy as np
import pandas as pd

from analytics.correlation._common import confidence_from_p, make_correlation, over_represented, poisson_surprise
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


#: Below this many requests (correlation ids) in the frame, the modules' base rates cannot be estimated
#: and a chain is reported untested (``evidence["verdict"] == "untested"``).
CHAIN_MIN_REQUESTS: Final = 30
#: A chain's modules must co-occur at least this many times more often than independence predicts.
CHAIN_MIN_LIFT: Final = 3.0


def chain_base_rate(trouble: pd.DataFrame, requests: int, modules: frozenset[str]) -> dict[str, Any]:
    """How surprising it is that ``modules`` all report trouble on one request, given each module's rate.

    ``trouble``: one row per request (correlation id) with trouble, one boolean column per module (it
    reported an abnormal event on that request); ``requests``: all the requests in the frame. Under
    independence a request has trouble in every module of the set with probability ``prod(n_m / N)``, so
    ``expected = N * prod(n_m / N)`` requests would show the set by chance; ``observed`` is how many do
    (support), ``lift = observed / expected``, ``p_value = P(X >= observed)`` for ``X ~ Poisson(expected)``.

    >>> trouble = pd.DataFrame({"a": [True, False], "b": [True, False]})
    >>> ev = chain_base_rate(trouble, 100, frozenset({"a", "b"}))
    >>> ev["observed"], ev["expected"], ev["lift"]
    (1, 0.01, 100.0)
    """
    cols = sorted(modules)
    sub = trouble.reindex(columns=cols, fill_value=False).to_numpy(dtype=bool)
    n_m = {m: int(n) for m, n in zip(cols, sub.sum(axis=0), strict=True)}
    expected = float(requests) * float(np.prod([n / max(requests, 1) for n in n_m.values()]))
    observed = int(sub.all(axis=1).sum())
    return {
        "test": "base_rate", "requests": int(requests), "module_requests": n_m, "observed": observed,
        "expected": round(expected, 6), "lift": round(observed / max(expected, 1e-9), 3),
        "p_value": float(f"{poisson_surprise(observed, expected):.3g}"),
    }  # fmt: skip


def detect_causal_chains(df: pd.DataFrame, tenant: str, max_gap_s: float, alpha: float = 0.01,
                         min_lift: float = CHAIN_MIN_LIFT) -> list[Correlation]:  # fmt: skip
    """Chains whose modules co-occur on requests significantly more often than their base rates predict.

    Two busy modules also share requests by chance (a module failing 20 % of requests and another one
    flagging 20 % share 4 % of them): a chain is kept only when its set of modules is over-represented —
    Poisson p-value below ``alpha`` (Bonferroni over the module sets tested) and lift at least
    ``min_lift`` — see :func:`chain_base_rate`. The test, its figures and the verdict are the chain's
    ``evidence``. Frames of fewer than :data:`CHAIN_MIN_REQUESTS` requests cannot show a base rate: their
    chains are kept, marked untested.
    """
    if df.empty:
        return []
    g = df[df["correlation_id"].notna()]
    ab = g[g["abnormal"].to_numpy()]
    counts = ab.groupby("correlation_id")["source_module"].nunique()
    keys = set(counts[counts >= 2].index)
    if not keys:
        return []
    requests = int(g["correlation_id"].nunique())
    cid_codes, cid_names = pd.factorize(ab["correlation_id"])
    mod_codes, mod_names = pd.factorize(ab["source_module"])
    presence = np.zeros((len(cid_names), len(mod_names)), dtype=bool)
    presence[cid_codes, mod_codes] = True
    trouble = pd.DataFrame(presence, index=cid_names, columns=[str(m) for m in mod_names])
    multi = presence[presence.sum(axis=1) >= 2]
    n_sets = len(np.unique(multi, axis=0)) if len(multi) else 0  # the module sets a chain could be tested on
    tests: dict[frozenset[str], dict[str, Any]] = {}

    def tested(modules: frozenset[str]) -> dict[str, Any] | None:
        """The evidence for a chain over ``modules``, or None when their co-occurrence is chance."""
        if requests < CHAIN_MIN_REQUESTS:
            return {"test": "base_rate", "requests": requests, "verdict": "untested"}
        if modules not in tests:
            tests[modules] = chain_base_rate(trouble, requests, modules)
            _significant(tests[modules], n_sets, alpha, min_lift)
        return dict(tests[modules]) if tests[modules]["verdict"] == "significant" else None

    out = []
    gap = int(max_gap_s * 1e6)
    # a request whose events all fall within one gap is one run: test its module set before any per-request work
    grp = g.loc[g["correlation_id"].isin(keys).to_numpy(), ["correlation_id", "ts"]].groupby("correlation_id")["ts"]
    spans = grp.max() - grp.min()
    names = np.asarray(trouble.columns)
    row = {cid: i for i, cid in enumerate(trouble.index)}
    keys -= {cid for cid in keys if spans[cid] <= gap and tested(frozenset(names[presence[row[cid]]])) is None}
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
        evidence = tested(frozenset(str(m) for m in abn["source_module"]))
        if evidence is None:
            continue
        ordered = abn["ts"].nunique() > 1  # simultaneous reports carry no evidence of order
        conf = 0.45 + 0.1 * min(len(abn) - 1, 3) + (0.15 if ordered else -0.15) + 0.02 * int(abn["sev_rank"].max())
        root = abn.sort_values(["ts", "sev_rank"], ascending=[True, False], kind="stable").iloc[0]
        path = " → ".join(dict.fromkeys(abn["signal"]))
        out.append(make_correlation(
            "causal_chain", tenant, sub, conf, f"request {cid}: {path} within {(ts.max() - ts.min()) / 1e6:.1f}s",
            f"cid:{cid}", str(root["event_id"]), {"correlation_id": str(cid)}, evidence,
        ))  # fmt: skip
    return out


def _significant(evidence: dict[str, Any], n_sets: int, alpha: float, min_lift: float) -> bool:
    """Bonferroni over the distinct module sets (two or more) seen on requests; records the verdict."""
    p = min(1.0, float(evidence["p_value"]) * max(n_sets, 1))
    ok = p < alpha and float(evidence["lift"]) >= min_lift
    evidence["p_adjusted"] = float(f"{p:.3g}")
    evidence["verdict"] = "significant" if ok else "chance"
    return ok


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
