"""Evaluation: inject incidents into simulated traffic, stream it through the engine, score the output.

Per correlation type: precision (share of the events a correlation links that belong to the incident it
overlaps most; background-only correlations count fully against it) and recall (share of each injected
incident's linked events covered by correlations of its type). RCA: top-1 / top-3 accuracy of the root
cause event (the first evidence id of the best-overlapping incident's hypotheses).

    >>> report = run_eval(seeds=1, duration_s=150.0, rate=60.0)   # doctest: +SKIP
    >>> report["accuracy"]                                          # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from analytics.correlation.engine import AnalysisResult, CorrelationEngine
from analytics.correlation.frame import COLUMNS
from analytics.correlation.model import CORRELATION_TYPES, Correlation, EngineConfig
from analytics.correlation.scenarios import (
    ALL_SCENARIOS,
    SCENARIOS,
    Dims,
    Truth,
    busy_independent_traffic,
    service_traffic,
)
from hub.simulate import GeneratorState, generate_timed, synthetic_traces
from hubcore.config import NativeEventsConfig
from processors.native_events.processor import NativeEventsProcessor

TENANT = "eval"


@dataclass
class SeedData:
    columns: dict[str, list[Any]]
    truths: list[Truth]
    t0: float
    duration_s: float


def build_seed(seed: int, duration_s: float = 240.0, rate: float = 100.0, incidents: int = 4) -> SeedData:
    """Normal traffic (hub.simulate + service calls) with ``incidents`` injected incidents."""
    rng = np.random.default_rng(seed)
    t0 = float(int(time.time()) - 3600)
    state = GeneratorState.create(synthetic_traces(), rate=rate, t0=t0, tenant=TENANT)
    events, _ = generate_timed(int(rate * duration_s), rng, state)
    names = [ALL_SCENARIOS[(incidents * seed + k) % len(ALL_SCENARIOS)] for k in range(incidents)]
    projects, models = rng.permutation(9), rng.permutation(6)
    truths: list[Truth] = []
    slowdown = None
    for k, name in enumerate(names):
        start = t0 + float(rng.uniform(20, duration_s - 60))
        if name == "db_slowdown":
            slowdown = (start, float(rng.uniform(25, 40)))
            continue
        inj = SCENARIOS[name](rng, start, Dims.pick(rng, int(projects[k]), model=int(models[k])))
        inj.truth.start = start - t0
        events.extend(inj.events)
        truths.append(inj.truth)
    svc = service_traffic(rng, t0, t0 + duration_s, 2.0, slowdown)
    events.extend(svc.events)
    if slowdown is not None:
        svc.truth.start = slowdown[0] - t0
        truths.append(svc.truth)
    proc = NativeEventsProcessor(NativeEventsConfig())
    enc = msgspec.json.encode
    res = proc.process([enc(e) for e in events], tenant_id=TENANT, now_us=int((t0 + duration_s + 60) * 1e6))
    return SeedData(res.columns, truths, t0, duration_s)


def stream(data: SeedData, engine: CorrelationEngine, batch_s: float = 1.0, flush_every_s: float = 5.0,
           ) -> tuple[list[AnalysisResult], list[float]]:  # fmt: skip
    """Feed the seed's rows in time order, ``batch_s`` at a time, flushing every ``flush_every_s``."""
    cols = data.columns
    order = np.argsort(np.asarray(cols["ts"]), kind="stable")
    ts = np.asarray(cols["ts"])[order]
    t0_us = int(data.t0 * 1e6)
    results: list[AnalysisResult] = []
    flush_seconds: list[float] = []
    step, next_flush = int(batch_s * 1e6), t0_us + int(flush_every_s * 1e6)
    lo = 0
    end_us = t0_us + int((data.duration_s + 60) * 1e6)
    t = t0_us
    while t < end_us:
        t += step
        hi = int(np.searchsorted(ts, t, side="left"))
        if hi > lo:
            idx = order[lo:hi]
            engine.ingest({c: [cols[c][i] for i in idx] for c in ("tenant_id", *COLUMNS) if c in cols})
            lo = hi
        if t >= next_flush:
            started = time.perf_counter()
            results.extend(engine.flush_results(now_us=t))
            flush_seconds.append(time.perf_counter() - started)
            next_flush += int(flush_every_s * 1e6)
    return results, flush_seconds


@dataclass
class Score:
    found_events: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    true_events: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    truth_events: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    covered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rca: list[tuple[str, bool, bool]] = field(default_factory=list)


def score_seed(data: SeedData, results: list[AnalysisResult], score: Score) -> None:
    corrs: dict[str, Correlation] = {}
    for r in results:
        for c in r.correlations:
            corrs[c.id] = c
    truth_sets = [set(t.event_ids) for t in data.truths]
    for c in corrs.values():
        ev = set(c.event_ids)
        best = max((len(ev & s) for s in truth_sets), default=0)
        score.found_events[c.type] += len(ev)
        score.true_events[c.type] += best
    for t, s in zip(data.truths, truth_sets, strict=True):
        typed = set().union(*(set(c.event_ids) for c in corrs.values() if c.type == t.ctype))
        score.truth_events[t.ctype] += len(s)
        score.covered[t.ctype] += len(s & typed)
        best_h: list[dict[str, Any]] = []
        best_overlap = 0
        for r in results:
            for inc in r.incidents:
                overlap = len(s & set(inc.event_ids))
                if overlap > best_overlap:
                    best_overlap, best_h = overlap, r.hypotheses.get(inc.id, [])
        roots = [h["evidence"][0] for h in best_h if h.get("evidence")]
        score.rca.append((t.scenario, roots[:1] == [t.root_event_id], t.root_event_id in roots[:3]))


def summarize(score: Score) -> dict[str, Any]:
    per_type: dict[str, dict[str, float | None]] = {}
    tp = fe = cov = te = 0
    for ctype in CORRELATION_TYPES:
        f, t, c, n = (score.found_events[ctype], score.true_events[ctype], score.covered[ctype],
                      score.truth_events[ctype])  # fmt: skip
        per_type[ctype] = {"precision": round(t / f, 4) if f else None, "recall": round(c / n, 4) if n else None,
                           "found_events": f, "matched_events": t, "truth_events": n,
                           "covered_events": c}  # fmt: skip
        tp, fe, cov, te = tp + t, fe + f, cov + c, te + n
    precision = tp / fe if fe else 0.0
    recall = cov / te if te else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n = max(len(score.rca), 1)
    return {
        "per_type": per_type, "precision": round(precision, 4), "recall": round(recall, 4),
        "accuracy": round(f1, 4), "rca_top1": round(sum(r[1] for r in score.rca) / n, 4),
        "rca_top3": round(sum(r[2] for r in score.rca) / n, 4), "incidents": len(score.rca),
        "rca_misses": sorted({r[0] for r in score.rca if not r[1]}),
    }  # fmt: skip


def chance_chains(seeds: int = 2, duration_s: float = 120.0, config: EngineConfig | None = None) -> int:
    """Causal chains the streaming engine reports on two busy modules that fail independently (no incident:
    every chain is a coincidence), over ``seeds`` runs of ``duration_s`` (see
    :func:`~analytics.correlation.scenarios.busy_independent_traffic`). Should be 0."""
    proc = NativeEventsProcessor(NativeEventsConfig())
    chains: set[str] = set()
    for seed in range(seeds):
        t0 = float(int(time.time()) - 3600)
        busy = busy_independent_traffic(np.random.default_rng(1000 + seed), t0, t0 + duration_s)
        res = proc.process([msgspec.json.encode(e) for e in busy.events], tenant_id=TENANT,
                           now_us=int((t0 + duration_s + 60) * 1e6))  # fmt: skip
        results, _ = stream(SeedData(res.columns, [], t0, duration_s), CorrelationEngine(None, config),
                            flush_every_s=10.0)  # fmt: skip
        chains.update(f"{seed}:{c.id}" for r in results for c in r.correlations if c.type == "causal_chain")
    return len(chains)


def run_eval(seeds: int = 4, duration_s: float = 240.0, rate: float = 100.0, config: EngineConfig | None = None,
             ) -> dict[str, Any]:  # fmt: skip
    """Evaluate over ``seeds`` seeds (4 incidents each, rotating over all scenarios)."""
    score = Score()
    flushes: list[float] = []
    events = 0
    for seed in range(seeds):
        data = build_seed(seed, duration_s, rate)
        engine = CorrelationEngine(None, config)
        results, fl = stream(data, engine)
        flushes.extend(fl)
        events += len(data.columns["event_id"])
        score_seed(data, results, score)
    out = summarize(score)
    out["events"] = events
    out["chance_chains"] = chance_chains(min(seeds, 2), 60.0, config)
    out["flush_p50_ms"] = round(float(np.median(flushes)) * 1000, 1) if flushes else None
    out["flush_p95_ms"] = round(float(np.quantile(flushes, 0.95)) * 1000, 1) if flushes else None
    return out


def frame_of(data: SeedData) -> pd.DataFrame:
    from analytics.correlation.frame import build_frame

    return build_frame(data.columns)
