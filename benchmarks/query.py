"""Benchmark the unified query on the embedded store: bulk-load simulated events, time dashboard queries.

    python -m benchmarks.query                 # 10 million events over 30 days
    python -m benchmarks.query --quick         # 200k events (CI)
    python -m benchmarks.query --events 2000000 --repeat 50 --layout time

Loads N events straight into an ``EmbeddedStore``'s DuckDB with bulk Arrow inserts (columns generated
with numpy: realistic models, teams, assets, log-normal latencies and token counts, costs priced per
model, 2 % errors, 10 tenants with one large one), then runs a mix of dashboard and console queries
(top-N by a sum; the second page of one) through the :class:`~hubcore.query.executor.QueryExecutor`,
uncached and cached, as the API asks them (events received by the request's time), and prints
p50/p95/p99 latency per query shape, the load rate and the bytes per stored event. The last line of output is one JSON object.

``--layout``: ``tenant_type_time`` (default) sorts each loaded chunk by (tenant_id, event_type, name, ts) —
what the store's writer could do per batch, or a compaction per day — ``tenant_time`` by (tenant_id, ts),
and ``time`` keeps arrival order only (today's store). ``--chunk`` is the rows per insert (the writer's
batch: ``flush_rows``, 50,000 by default).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hubcore.query.cache import QueryCache
from hubcore.query.executor import EmbeddedBackend, QueryExecutor
from hubcore.query.model import MAX_LIMIT, parse_query
from hubcore.storage.embedded import EmbeddedStore
from hubcore.storage.tables import EVENTS

DAYS = 30
MODELS = np.array(["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "claude-3-haiku", "gemini-1.5-pro", "llama-3-70b",
                   "mistral-large", "o1-mini"])  # fmt: skip
PROVIDERS = np.array(["openai", "openai", "anthropic", "anthropic", "google", "meta", "mistral", "openai"])
MODEL_WEIGHTS = np.array([0.3, 0.2, 0.15, 0.1, 0.08, 0.07, 0.05, 0.05])
LATENCY_MEDIAN_MS = np.array([900, 450, 1100, 380, 1000, 700, 800, 2500], dtype=float)
PRICE_PER_1K = np.array([0.005, 0.0006, 0.003, 0.00025, 0.0035, 0.0009, 0.002, 0.003])
TEAMS = np.array([f"team-{i:02d}" for i in range(12)])
PROJECTS = np.array([f"project-{i:02d}" for i in range(30)])
TENANTS = np.array(["bench"] + [f"tenant-{i}" for i in range(1, 10)])
TENANT_WEIGHTS = np.array([0.55] + [0.05] * 9)
ENVS = np.array(["production", "staging", "development"])
DUR = "gen_ai.client.operation.duration"

QUERIES: dict[str, dict[str, Any]] = {
    "p95_latency_by_model_24h_1h": {
        "time_range": {"last": "24h"},
        "metric": {"event_type": "telemetry", "name": DUR},
        "aggregation": {"time_bucket": "1h", "functions": ["p95"], "group_by": ["model"]},
    },
    "cost_by_team_7d": {
        "time_range": {"last": "7d"},
        "metric": {"event_type": "cost"},
        "aggregation": {"time_bucket": "1d", "functions": ["sum"], "group_by": ["team"]},
    },
    "error_rate_by_model_1h": {"time_range": {"last": "1h"}, "metric": "error_rate",
                               "aggregation": {"group_by": ["model"]}},
    "top10_assets_by_tokens_24h": {
        "time_range": {"last": "24h"},
        "metric": {"event_type": "telemetry", "name": DUR, "field": "total_tokens"},
        "aggregation": {"functions": ["sum"], "group_by": ["asset_id"]},
        "sort": [{"field": "sum", "order": "desc"}],
        "limit": 10,
    },
    # the console's spend pages: top-N by a float sum (cost), the whole answer (12 teams) and a truncated one
    # (360 team/project pairs), whose next page (``"page": 2``, with the first page's next_cursor) is asked too
    "top15_spend_by_team_7d": {
        "time_range": {"last": "7d"},
        "metric": {"event_type": "cost"},
        "aggregation": {"functions": ["sum"], "group_by": ["team"]},
        "sort": [{"field": "sum", "order": "desc"}],
        "limit": 15,
    },
    "top200_spend_by_team_project_7d": {
        "time_range": {"last": "7d"},
        "metric": {"event_type": "cost"},
        "aggregation": {"functions": ["sum", "count"], "group_by": ["team", "project"]},
        "sort": [{"field": "sum", "order": "desc"}],
        "limit": 200,
    },
    "top200_spend_by_team_project_7d_page2": {
        "time_range": {"last": "7d"},
        "metric": {"event_type": "cost"},
        "aggregation": {"functions": ["sum", "count"], "group_by": ["team", "project"]},
        "sort": [{"field": "sum", "order": "desc"}],
        "limit": 200,
        "page": 2,
    },
}  # fmt: skip


def _s(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype(object) if values.dtype.kind == "U" else values)


def make_chunk(rng: np.random.Generator, n: int, t0_us: int, t1_us: int, start_id: int) -> pa.Table:
    """``n`` events with timestamps in ``[t0, t1)``, in time order."""
    ts = np.sort(rng.integers(t0_us, t1_us, n))
    kind = rng.choice(4, n, p=[0.7, 0.2, 0.05, 0.05])  # telemetry, cost, security, policy
    m = rng.choice(len(MODELS), n, p=MODEL_WEIGHTS)
    tenant = TENANTS[rng.choice(len(TENANTS), n, p=TENANT_WEIGHTS)]
    team = TEAMS[rng.integers(0, len(TEAMS), n)]
    project = PROJECTS[rng.integers(0, len(PROJECTS), n)]
    tin = rng.lognormal(6.0, 0.8, n).astype(np.int64)
    tout = rng.lognormal(5.0, 0.7, n).astype(np.int64)
    latency = LATENCY_MEDIAN_MS[m] * rng.lognormal(0.0, 0.45, n)
    cost = (tin + tout) / 1000.0 * PRICE_PER_1K[m]
    error = rng.random(n) < 0.02
    etype = np.array(["telemetry", "cost", "security", "policy"])[kind]
    source = np.array(["llm-observatory", "llm-costops", "llm-sentinel", "llm-policy-engine"])[kind]
    name = np.where(kind == 0, DUR, np.where(kind == 1, "token", np.where(kind == 2, "prompt_injection", "rate-limit")))
    value = np.where(kind == 0, latency, np.where(kind == 1, cost, np.where(kind == 2, rng.random(n), 1.5)))
    unit = np.array(["ms", "USD", "1", "ms"])[kind]
    status = np.where(kind == 0, np.where(error, "error", "ok"), np.where(kind == 2, "blocked", "pass"))
    has_tokens = kind <= 1
    asset = np.char.add("asset-", (rng.zipf(1.3, n) % 500).astype(str))
    ids = np.char.add("ev-", np.arange(start_id, start_id + n).astype(str))
    s_model, s_team = _s(MODELS[m]), _s(team)
    tags = pc.binary_join_element_wise('{"team":"', s_team, '","project":"', _s(project), '"}', "")
    payload = pc.binary_join_element_wise(
        '{"metric_name":"', _s(name), '","value":', pc.cast(pa.array(value), pa.string()), ',"model":"', s_model,
        '","provider":"', _s(PROVIDERS[m]), '","status":"', _s(status), '","dimensions":{"endpoint":"/v1/chat"}}', "",
    )  # fmt: skip
    cols: dict[str, pa.Array] = {
        "tenant_id": _s(tenant),
        "ts": pa.array(ts, pa.int64()).cast(pa.timestamp("us")),
        "received_at": pa.array(ts + 50_000, pa.int64()).cast(pa.timestamp("us")),
        "event_id": _s(ids),
        "source_module": _s(source),
        "event_type": _s(etype),
        "severity": _s(np.where(kind == 2, "warning", "info")),
        "environment": _s(ENVS[rng.choice(3, n, p=[0.8, 0.15, 0.05])]),
        "schema_version": pa.array(["1.0.0"] * n),
        "name": _s(name),
        "value": pa.array(value),
        "unit": _s(unit),
        "status": _s(status),
        "model": s_model,
        "provider": _s(PROVIDERS[m]),
        "asset_id": _s(asset),
        "team": s_team,
        "project": _s(project),
        "input_tokens": pa.array(np.where(has_tokens, tin, 0), mask=~has_tokens),
        "output_tokens": pa.array(np.where(has_tokens, tout, 0), mask=~has_tokens),
        "tags": tags,
        "payload": payload,
    }
    schema = EVENTS.arrow_schema()
    arrays = [cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def load(store: EmbeddedStore, n: int, *, chunk: int, layout: str, seed: int = 7) -> float:
    """Insert ``n`` events spread over the last 30 days; returns seconds spent."""
    rng = np.random.default_rng(seed)
    end_us = time.time_ns() // 1000
    start_us = end_us - DAYS * 86_400_000_000
    cur = store.cursor()
    started = time.perf_counter()
    done = 0
    while done < n:
        size = min(chunk, n - done)
        t0 = start_us + (end_us - start_us) * done // n
        t1 = start_us + (end_us - start_us) * (done + size) // n
        table = make_chunk(rng, size, t0, t1, done)
        if layout == "tenant_time":
            table = table.sort_by([("tenant_id", "ascending"), ("ts", "ascending")])
        elif layout == "tenant_type_time":
            keys = ("tenant_id", "event_type", "name", "ts")
            table = table.sort_by([(k, "ascending") for k in keys])
        cur.register("chunk", table)
        cur.execute("INSERT INTO events SELECT * FROM chunk")
        cur.unregister("chunk")
        done += size
    cur.execute("CHECKPOINT")
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive") if len(samples) > 1 else samples * 99
    return {"p50": round(qs[49], 3), "p95": round(qs[94], 3), "p99": round(qs[98], 3)}


def time_queries(store: EmbeddedStore, repeat: int, tenant: str) -> dict[str, dict[str, Any]]:
    uncached = QueryExecutor(EmbeddedBackend(store), cache=None)
    cached = QueryExecutor(EmbeddedBackend(store), cache=QueryCache())
    results: dict[str, dict[str, Any]] = {}
    for shape, spec in QUERIES.items():
        body = {k: v for k, v in spec.items() if k != "page"}
        now_us = time.time_ns() // 1000  # the API reads the events received by the request's time
        q = parse_query(body, tenant=tenant, now_us=now_us, max_limit=MAX_LIMIT, received_by_us=now_us)
        for _ in range(spec.get("page", 1) - 1):  # a later page: resume with the page before's next_cursor
            cursor = uncached.execute(q)["metadata"]["next_cursor"]
            q = parse_query({**body, "cursor": cursor}, tenant=tenant, now_us=now_us, max_limit=MAX_LIMIT)
        uncached.execute(q)  # warm the buffer pool
        cold, warm = [], []
        rows = 0
        for _ in range(repeat):
            t = time.perf_counter()
            rows = uncached.execute(q)["metadata"]["row_count"]
            cold.append((time.perf_counter() - t) * 1000)
        cached.execute(q)
        for _ in range(repeat):
            t = time.perf_counter()
            assert cached.execute(q)["metadata"]["cached"]
            warm.append((time.perf_counter() - t) * 1000)
        results[shape] = {"rows": rows, "uncached_ms": percentiles(cold), "cached_ms": percentiles(warm)}
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--quick", action="store_true", help="200k events, 20 repeats (CI)")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--chunk", type=int, default=500_000)
    ap.add_argument("--layout", choices=["tenant_time", "tenant_type_time", "time"], default="tenant_type_time")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    args = ap.parse_args(argv)
    n, repeat = (200_000, 20) if args.quick else (args.events, args.repeat)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="hub-query-bench-"))
    store = EmbeddedStore(data_dir, wal_fsync=False, retention_check_interval=1e9)
    store.start()
    try:
        if args.threads:
            store.cursor().execute(f"SET threads = {int(args.threads)}")
        load_s = load(store, n, chunk=args.chunk, layout=args.layout)
        size = (data_dir / "hub.duckdb").stat().st_size
        print(
            f"loaded {n:,} events in {load_s:.1f} s ({n / load_s:,.0f}/s), {size / n:.1f} bytes/event", file=sys.stderr
        )
        results = time_queries(store, repeat, "bench")
    finally:
        store.shutdown()
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    for shape, r in results.items():
        u, c = r["uncached_ms"], r["cached_ms"]
        print(f"{shape:38s} rows={r['rows']:<5d} uncached p50/p95/p99 = {u['p50']:.1f}/{u['p95']:.1f}/{u['p99']:.1f} ms"
              f"   cached = {c['p50']:.3f}/{c['p95']:.3f}/{c['p99']:.3f} ms", file=sys.stderr)  # fmt: skip
    worst = {k: max(r["uncached_ms"][k] for r in results.values()) for k in ("p50", "p95", "p99")}
    summary = {
        "benchmark": "query",
        "events": n,
        "layout": args.layout,
        "load_seconds": round(load_s, 2),
        "load_events_per_s": round(n / load_s),
        "bytes_per_event": round(size / n, 1),
        "repeat": repeat,
        "queries": results,
        "worst_uncached_ms": worst,
        "targets_met": worst["p50"] < 25 and worst["p95"] < 50 and worst["p99"] < 100 and size / n < 1024,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
