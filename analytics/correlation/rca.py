"""Incidents (groups of correlations) and root-cause hypotheses ranked by a general method.

The incident's events form a directed graph: an edge ``a → b`` (a may have caused b) when ``a`` is not
later than ``b`` (within 60 s) and they share evidence — the same request (correlation id), dimension
values (model, project, user, asset, component, IP, API key) or a correlation — weighted by temporal
proximity and by the learned dependency direction. Each event's score combines

* root-ness: PageRank on the reversed graph (effects pass their weight back to plausible causes),
* temporal precedence (the share of the incident's events that follow it and are strongly linked to it),
* anomaly strength (severity, abnormal status, a change such as a model update),
* votes: detectors that named the event as their root, weighted by confidence.

    >>> pagerank(np.array([[0.0, 1.0], [0.0, 0.0]])).round(2).tolist()
    [0.35, 0.65]
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final

import numpy as np
import pandas as pd

from analytics.correlation.model import Correlation, Incident, empty_impact, stable_id
from analytics.correlation.timeutil import iso

_LINK_DIMS: Final = ("model", "project", "user_id", "asset_id", "component", "source_ip", "api_key_id")
_MERGE_DIMS: Final = frozenset({"model", "project", "user_id", "asset_id", "component", "correlation_id"})
MAX_NODES: Final = 250
HORIZON_US: Final = 60_000_000


def pagerank(w: np.ndarray, damping: float = 0.85, iters: int = 100) -> np.ndarray:
    """PageRank of a weighted adjacency matrix (``w[i, j]``: weight of edge i → j)."""
    n = len(w)
    if n == 0:
        return np.zeros(0)
    out = w.sum(axis=1)
    p = np.where(out[:, None] > 0, w / np.maximum(out[:, None], 1e-12), 1.0 / n)
    r = np.full(n, 1.0 / n)
    for _ in range(iters):
        nxt = (1 - damping) / n + damping * (r @ p)
        if np.abs(nxt - r).sum() < 1e-10:
            return np.asarray(nxt)
        r = nxt
    return r


def group_incidents(correlations: list[Correlation]) -> list[Incident]:
    """Correlations sharing events, or a dimension value while overlapping in time, form one incident."""
    n = len(correlations)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, c in enumerate(correlations):
        for e in c.event_ids:
            j = owner.setdefault(e, i)
            if j != i:
                parent[find(i)] = find(j)
    by_dim: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, c in enumerate(correlations):
        for k, v in c.dimensions.items():
            if k in _MERGE_DIMS:
                by_dim[(k, v)].append(i)
    for idx in by_dim.values():
        for a in idx:
            for b in idx:
                ca, cb = correlations[a], correlations[b]
                if a < b and ca.start_us <= cb.end_us + 30_000_000 and cb.start_us <= ca.end_us + 30_000_000:
                    parent[find(a)] = find(b)
    groups: dict[int, list[Correlation]] = defaultdict(list)
    for i, c in enumerate(correlations):
        groups[find(i)].append(c)
    return [build_incident(members) for members in groups.values()]


def build_incident(members: list[Correlation], incident_id: str | None = None) -> Incident:
    """One incident of ``members`` (at least one); its id follows the earliest member's root unless given."""
    members = sorted(members, key=lambda c: (c.start_us, -c.confidence))
    first = members[0]
    events = list(dict.fromkeys(e for c in members for e in c.event_ids))
    conf = 1.0 - float(np.prod([1.0 - c.confidence for c in members]))
    types = sorted({c.type for c in members})
    return Incident(
        incident_id or stable_id(first.tenant_id, "incident", first.root_event_id or first.id), first.tenant_id,
        [c.id for c in members], types, events, min(c.start_us for c in members),
        max(c.end_us for c in members), round(min(conf, 0.999), 4),
        f"{' + '.join(types)}: {first.explanation}"[:200], _merge_impact(members),
    )  # fmt: skip


def shares_dimension(a: Correlation, b: Correlation) -> bool:
    """True when two correlations were found on a common dimension value (model, project, user, ...)."""
    return any(a.dimensions.get(k) == v for k, v in b.dimensions.items() if k in _MERGE_DIMS)


def _merge_impact(members: list[Correlation]) -> dict[str, Any]:
    imp = empty_impact()
    for c in members:
        ci = c.impact
        imp["performance"]["error_events"] = max(imp["performance"]["error_events"], ci["performance"]["error_events"])
        imp["performance"]["max_latency_ms"] = max(
            imp["performance"]["max_latency_ms"], ci["performance"]["max_latency_ms"]
        )
        imp["cost"]["usd"] = max(imp["cost"]["usd"], ci["cost"]["usd"])
        imp["cost"]["wasted_usd"] = max(imp["cost"]["wasted_usd"], ci["cost"]["wasted_usd"])
        imp["security"]["findings"] = max(imp["security"]["findings"], ci["security"]["findings"])
        imp["security"]["max_level"] = imp["security"]["max_level"] or ci["security"]["max_level"]
        imp["business"]["sla_breach"] = imp["business"]["sla_breach"] or ci["business"]["sla_breach"]
        imp["business"]["affected_users"] = max(imp["business"]["affected_users"], ci["business"]["affected_users"])
    return imp


def _edge_matrix(ev: pd.DataFrame, members: list[Correlation], deps: dict[tuple[str, str], float]) -> np.ndarray:
    n = len(ev)
    ts = ev["ts"].to_numpy()
    dt = ts[None, :] - ts[:, None]  # dt[i, j] = t_j - t_i
    link = np.zeros((n, n))
    cid = ev["correlation_id"].to_numpy()
    same = (cid[:, None] == cid[None, :]) & pd.notna(cid)[:, None]
    link += same * 1.0
    for dim in _LINK_DIMS:
        v = ev[dim].to_numpy()
        link += ((v[:, None] == v[None, :]) & pd.notna(v)[:, None]) * 0.3
    pos = {e: i for i, e in enumerate(ev["event_id"])}
    for c in members:
        idx = [pos[e] for e in c.event_ids if e in pos]
        if len(idx) > 1:
            link[np.ix_(idx, idx)] += 0.3 * c.confidence
    w = np.minimum(link, 2.0) * np.exp(-np.abs(dt) / 30e6)
    w = np.where(dt > 0, w, np.where(dt == 0, 0.5 * w, 0.0))
    w[np.abs(dt) > HORIZON_US] = 0.0
    comp = ev["component"].to_numpy()
    if deps:
        fwd = np.array([[deps.get((a, b), 0.0) > 0 for b in comp] for a in comp])
        w = np.where(fwd, w * 1.5, np.where(fwd.T & ~fwd, w * 0.6, w))
    np.fill_diagonal(w, 0.0)
    return np.asarray(w)


def shown_confidence(p: float) -> float:
    """A hypothesis' confidence as answered: four significant digits, not four decimals (a low-ranked
    hypothesis at 3e-5 had read as 0.0, as if it were ruled out).

    >>> shown_confidence(0.123456), shown_confidence(3.2e-05), shown_confidence(0.0)
    (0.1235, 3.2e-05, 0.0)
    """
    return float(f"{p:.4g}")


def rank_hypotheses(
    incident: Incident, members: list[Correlation], frame: pd.DataFrame, deps: dict[tuple[str, str], float],
    top: int = 5,
) -> list[dict[str, Any]]:  # fmt: skip
    """Root-cause hypotheses, best first: ``{cause, confidence, root_event_id, evidence, graph}``."""
    votes: dict[str, float] = defaultdict(float)
    for c in members:
        if c.root_event_id:
            votes[c.root_event_id] += c.confidence
    ev = frame[frame["event_id"].isin(set(incident.event_ids))].drop_duplicates("event_id")
    if ev.empty:
        return []
    if len(ev) > MAX_NODES:
        keep = ev["event_id"].isin(set(votes)) | ev["abnormal"]
        ev = pd.concat([ev[keep].sort_values("ts").head(MAX_NODES), ev[~keep]]).head(MAX_NODES)
    ev = ev.sort_values("ts", kind="stable").reset_index(drop=True)
    w = _edge_matrix(ev, members, deps)
    rootness = pagerank(w.T)
    ts = ev["ts"].to_numpy()
    # precedence: the share of the incident's other events that come after this one AND are strongly
    # linked to it (so an early bystander sharing one dimension does not win on timing alone)
    after = ts[None, :] > ts[:, None]
    early = ((w > 0.25) & after).sum(axis=1) / max(len(ts) - 1, 1)
    change = ((ev["event_type"] == "metadata") & ev["abnormal"]).to_numpy()
    strength = (ev["sev_rank"].to_numpy() / 4.0 + ev["abnormal"].to_numpy() + change) / 3.0
    vote = np.array([votes.get(e, 0.0) for e in ev["event_id"]])
    score = (0.35 * rootness / max(rootness.max(), 1e-12) + 0.30 * early + 0.15 * strength
             + 0.20 * vote / max(vote.max(), 1e-12))  # fmt: skip
    order = np.argsort(-score, kind="stable")
    picked: list[int] = []
    seen: set[tuple[str, str, str]] = set()
    for i in order:
        key = (str(ev.at[i, "component"]), str(ev.at[i, "signal"]), str(int(ev.at[i, "ts"]) // 10_000_000))
        if key not in seen:
            seen.add(key)
            picked.append(int(i))
        if len(picked) >= top:
            break
    expw = np.exp((score[picked] - score[picked].max()) / 0.08)
    probs = expw / expw.sum() * incident.confidence
    graph = _graph(ev, w, score)
    hyps = []
    for i, p in zip(picked, probs, strict=True):
        evidence, later = _downstream(i, w, ev)
        row = ev.iloc[i]
        dims = ", ".join(f"{d}={row[d]}" for d in ("model", "project", "user_id") if pd.notna(row[d]))
        depend = "1 later event depends" if later == 1 else f"{later} later events depend"
        hyps.append({
            "cause": f"{row['signal']} in {row['component']} at {iso(int(row['ts']))}"
                     + (f" ({dims})" if dims else "") + f"; {depend} on it",
            "confidence": shown_confidence(float(p)), "score": round(float(score[i]), 4),
            "root_event_id": str(row["event_id"]), "evidence": evidence, "graph": graph,
        })  # fmt: skip
    return hyps


def _downstream(i: int, w: np.ndarray, ev: pd.DataFrame, cap: int = 25) -> tuple[list[str], int]:
    """Event ``i`` then the events reachable from it (breadth first), at most ``cap`` ids; and how many
    events are reachable in all (the cause's count: it had been the capped list's, 24 at most)."""
    seen = [i]
    known = {i}
    frontier = [i]
    strong = w > 0.15
    while frontier:
        nxt = []
        for a in frontier:
            for b in np.flatnonzero(strong[a]).tolist():
                if b not in known:
                    known.add(b)
                    seen.append(b)
                    nxt.append(b)
        frontier = nxt
    ids = ev["event_id"].tolist()
    return [str(ids[k]) for k in seen[:cap]], len(seen) - 1


def _graph(ev: pd.DataFrame, w: np.ndarray, score: np.ndarray, max_edges: int = 300) -> dict[str, Any]:
    nodes = [{"id": str(r.event_id), "module": r.source_module, "component": r.component, "signal": r.signal,
              "ts": iso(int(r.ts)), "abnormal": bool(r.abnormal), "score": round(float(s), 4)}
             for r, s in zip(ev.itertuples(), score, strict=True)]  # fmt: skip
    ii, jj = np.nonzero(w > 0.15)
    order = np.argsort(-w[ii, jj])[:max_edges]
    ids = ev["event_id"].tolist()
    edges = [{"source": str(ids[ii[k]]), "target": str(ids[jj[k]]), "weight": round(float(w[ii[k], jj[k]]), 4)}
             for k in order]  # fmt: skip
    return {"nodes": nodes, "edges": edges}
