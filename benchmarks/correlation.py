"""Benchmark the correlation engine: accuracy, streaming throughput, incident-to-queryable latency.

* accuracy — as ``hub eval rca`` (F1 of correlated events, RCA top-1 / top-3) on the same stream;
* events/s — ``CorrelationEngine.ingest`` alone (1,000-row batches), and streaming: events divided by
  the time spent in ingest + a flush per simulated second (analysis of the 60 s window each second,
  storing and exporting); ``streaming_core_share`` is the share of one core that traffic at ``--rate``
  costs (the flush grows with the window, so this does not scale linearly to higher rates);
* latency — wall time from ingesting the batch that holds an incident's last event to a stored
  correlation holding that event being returned by a query (ingest → flush → SELECT), with the
  embedded store. Incidents only detectable later (e.g. a trend needing more buckets) are counted
  separately. The last line printed is one JSON object.

Usage::

    .venv/bin/python benchmarks/correlation.py            # 2 seeds, 240 s of traffic each
    .venv/bin/python benchmarks/correlation.py --quick    # < 30 s
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.correlation import CorrelationEngine
from analytics.correlation.engine import AnalysisResult
from analytics.correlation.evaluate import TENANT, Score, SeedData, build_seed, score_seed, summarize
from analytics.correlation.frame import COLUMNS
from hubcore.storage.embedded import EmbeddedStore


def _batches(data: SeedData, step_s: float = 1.0) -> list[tuple[int, dict[str, list[Any]]]]:
    cols = data.columns
    ts = np.asarray(cols["ts"])
    order = np.argsort(ts, kind="stable")
    t0 = int(data.t0 * 1e6)
    out = []
    edges = np.searchsorted(ts[order], [t0 + int(k * step_s * 1e6) for k in range(int(data.duration_s / step_s) + 2)])
    for k in range(len(edges) - 1):
        idx = order[edges[k] : edges[k + 1]]
        if len(idx):
            out.append((t0 + int((k + 1) * step_s * 1e6),
                        {c: [cols[c][i] for i in idx] for c in ("tenant_id", *COLUMNS) if c in cols}))  # fmt: skip
    return out


def ingest_throughput(data: SeedData) -> float:
    cols = data.columns
    n = len(cols["event_id"])
    chunks = [{c: cols[c][i : i + 1000] for c in cols} for i in range(0, n, 1000)]
    engine = CorrelationEngine(None)
    started = time.perf_counter()
    for ch in chunks:
        engine.ingest(ch)
    return n / (time.perf_counter() - started)


def streaming(data: SeedData, score: Score) -> tuple[float, list[float], int]:
    """Sustained events/s with a flush per simulated second; latencies (s) from ingesting an incident's
    last event to a stored correlation holding it being queryable; incidents found only later."""
    last = {max(t.event_ids, key=_ts_of(data)): t for t in data.truths}
    pending = dict(last)
    latencies: list[float] = []
    busy = 0.0
    everything: list[AnalysisResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(tmp, wal_fsync=False, flush_interval=0.01)
        store.start()
        try:
            engine = CorrelationEngine(store)
            engine.start()
            for now_us, batch in _batches(data):
                started = time.perf_counter()
                engine.ingest(batch)
                results = engine.flush_results(now_us=now_us)
                hits = [e for e in pending if e in set(batch["event_id"])]
                for e in hits:
                    rows = store.read("SELECT count(*) FROM correlations WHERE tenant_id = ? AND event_ids LIKE ?",
                                      [TENANT, f'%"{e}"%']).fetchone()  # fmt: skip
                    if rows and rows[0]:
                        latencies.append(time.perf_counter() - started)
                        del pending[e]
                busy += time.perf_counter() - started
                everything.extend(results)
            store.flush(30)
        finally:
            store.shutdown()
    score_seed(data, everything, score)
    n = len(data.columns["event_id"])
    return n / busy, latencies, len(last) - len(latencies)


def _ts_of(data: SeedData) -> Any:
    pos = {e: i for i, e in enumerate(data.columns["event_id"])}
    ts = data.columns["ts"]
    return lambda e: ts[pos[e]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 seed, 120 s of traffic (< 30 s)")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--rate", type=float, default=100.0, help="background events per second")
    args = p.parse_args(argv)
    seeds, duration = (1, 120.0) if args.quick else (args.seeds, 240.0)
    started = time.perf_counter()
    score = Score()
    ingest_eps: list[float] = []
    stream_eps: list[float] = []
    lat: list[float] = []
    late = 0
    for seed in range(seeds):
        data = build_seed(seed, duration, args.rate)
        ingest_eps.append(ingest_throughput(data))
        eps, ls, missed = streaming(data, score)
        stream_eps.append(eps)
        lat += ls
        late += missed
    acc = summarize(score)
    out = {
        "benchmark": "correlation", "seeds": seeds, "rate": args.rate, "accuracy": acc["accuracy"],
        "precision": acc["precision"], "recall": acc["recall"], "rca_top1": acc["rca_top1"], "rca_top3": acc["rca_top3"],
        "ingest_events_per_s": round(float(np.mean(ingest_eps))),
        "streaming_events_per_s": round(float(np.mean(stream_eps))),
        "streaming_core_share": round(args.rate / float(np.mean(stream_eps)), 3),
        "latency_p50_ms": round(float(np.median(lat)) * 1000, 1) if lat else None,
        "latency_p95_ms": round(float(np.quantile(lat, 0.95)) * 1000, 1) if lat else None,
        "latency_max_ms": round(float(np.max(lat)) * 1000, 1) if lat else None,
        "incidents_timed": len(lat), "incidents_found_later": late,
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    print(f"accuracy (F1) {out['accuracy']}  RCA top-1 {out['rca_top1']} top-3 {out['rca_top3']}")
    print(f"ingest {out['ingest_events_per_s']} events/s; streaming (flush each second) {out['streaming_events_per_s']} events/s")
    print(f"latency last event -> queryable: p50 {out['latency_p50_ms']} ms p95 {out['latency_p95_ms']} ms "
          f"({out['incidents_timed']} incidents; {late} found only later)")  # fmt: skip
    print(json.dumps(out, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
