"""Differential test: the same events in the embedded store and in a real VictoriaMetrics agree.

The events go into an ``EmbeddedStore`` as rows and, through the VictoriaMetrics exporter's own
conversion (events → OTel points → cumulative Prometheus series), into VictoriaMetrics by remote write.
One IR is compiled to SQL and to PromQL (read back with ``PromReader``); counts, sums, averages, cost and
composite ratios must match, and histogram p95 (bucketed on the VM side) must land in the same bucket.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubcore.query.cache import QueryCache
from hubcore.query.compile_promql import compile_promql
from hubcore.query.executor import EmbeddedBackend, PromBackend, QueryExecutor
from hubcore.query.model import parse_query
from hubcore.storage.embedded import EmbeddedStore
from tests.helpers.procs import require_binary, run_victoriametrics

pytestmark = pytest.mark.real_backend

DUR = "gen_ai.client.operation.duration"
MODELS = ("gpt-4o", "claude")


def _events(t0_s: int) -> dict[str, list[Any]]:
    rng = random.Random(11)
    cols: dict[str, list[Any]] = {k: [] for k in ("tenant_id", "ts", "event_id", "source_module", "event_type",
                                                   "environment", "name", "value", "unit", "status", "model",
                                                   "team", "input_tokens", "output_tokens", "payload", "tags")}  # fmt: skip
    for i in range(400):
        model = MODELS[(i // 4) % 2]
        is_cost = i % 4 == 3
        cols["tenant_id"].append("diff")
        cols["ts"].append(t0_s * 1_000_000 + i * 600_000 + 1)  # 4 minutes from t0
        cols["event_id"].append(f"e{i}")
        cols["source_module"].append("llm-costops" if is_cost else "llm-observatory")
        cols["event_type"].append("cost" if is_cost else "telemetry")
        cols["environment"].append("production")
        cols["name"].append("token" if is_cost else DUR)
        latency = rng.lognormvariate(math.log(600 if model == "gpt-4o" else 1500), 0.5)
        cols["value"].append(round(rng.uniform(0.001, 0.05), 6) if is_cost else round(latency, 3))
        cols["unit"].append("USD" if is_cost else "ms")
        cols["status"].append(None if is_cost else ("error" if rng.random() < 0.15 else "ok"))
        cols["model"].append(model)
        cols["team"].append("search" if i % 3 else "ads")
        cols["input_tokens"].append(None if is_cost else 100)
        cols["output_tokens"].append(None if is_cost else 20)
        cols["payload"].append("{}")
        cols["tags"].append("{}")
    return cols


def _remote_write(url: str, cols: dict[str, list[Any]], zero_ms: int, now_s: float) -> None:
    """Convert minute by minute (one cumulative sample per series per minute, as the exporter flushes)."""
    from exporters._common import EventMapping
    from exporters.victoriametrics.convert import PointsConverter
    from exporters.victoriametrics.remote_write import compress, encode_labels, encode_series
    from hubcore.mapping import EVENTS_TO_POINTS_SQL

    events_to_points = EventMapping(EVENTS_TO_POINTS_SQL)  # what the exporter runs on each batch
    converter = PointsConverter(clock=lambda: now_s)
    series: dict[Any, list[tuple[int, float]]] = {}
    minutes = sorted({ts // 60_000_000 for ts in cols["ts"]})
    for minute in minutes:
        idx = [i for i, ts in enumerate(cols["ts"]) if ts // 60_000_000 == minute]
        chunk = {k: [v[i] for i in idx] for k, v in cols.items()}
        for key, samples in converter.convert(events_to_points(chunk)).items():
            series.setdefault(key, [(zero_ms, 0.0)]).extend(samples)
    events_to_points.close()
    body = b"".join(encode_series(encode_labels(k), sorted(s)) for k, s in series.items())
    r = httpx.post(
        f"{url}/api/v1/write",
        content=compress(body),
        headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"},
    )
    assert r.status_code in (200, 204), r.text


def _by_model(df: Any) -> dict[str, float]:
    if "gen_ai_request_model" not in df.columns:
        return {"": float(df["value"].iloc[0])} if len(df) else {}
    return {str(m): float(v) for m, v in zip(df["gen_ai_request_model"], df["value"], strict=True)}


def test_embedded_and_victoriametrics_agree(tmp_path: Path) -> None:
    require_binary("victoria-metrics")
    from hubcore.storage.readers.prometheus import PromReader

    now_s = time.time()
    t0 = int(now_s) // 60 * 60 - 600
    cols = _events(t0)
    store = EmbeddedStore(tmp_path / "emb", wal_fsync=False)
    store.start()
    try:
        store.append("events", cols)
        assert store.flush(10)
        executor = QueryExecutor(EmbeddedBackend(store), QueryCache())
        with run_victoriametrics(tmp_path / "vm") as vm, PromReader(vm.url) as reader:
            _remote_write(vm.url, cols, (t0 - 60) * 1000, now_s)
            vm.flush()
            time_range = {"start": t0 - 120, "end": t0 + 300}
            checks: list[tuple[dict[str, Any], str, float]] = [
                ({"metric": {"event_type": "telemetry", "name": DUR}, "aggregation": {"functions": ["count"]}}, "count", 0),
                ({"metric": {"event_type": "telemetry", "name": DUR}, "aggregation": {"functions": ["sum"]}}, "sum", 1e-6),
                ({"metric": {"event_type": "telemetry", "name": DUR}, "aggregation": {"functions": ["avg"]}}, "avg", 1e-6),
                ({"metric": {"event_type": "cost"}, "aggregation": {"functions": ["sum"]}}, "sum", 1e-6),
                ({"metric": "error_rate"}, "error_rate", 1e-9),
                ({"metric": "cost_per_request"}, "cost_per_request", 1e-6),
                ({"metric": "cost_per_1k_tokens"}, "cost_per_1k_tokens", 1e-6),
            ]  # fmt: skip
            for body, column, rel in checks:
                body = {"time_range": time_range, **body, "aggregation": {**body.get("aggregation", {}),
                                                                          "group_by": ["model"]}}  # fmt: skip
                q = parse_query(body, tenant="diff", now_us=int(now_s * 1e6))
                embedded = {r["model"]: r[column] for r in executor.execute(q)["data"]}
                plan = compile_promql(q)
                remote = _by_model(reader.query(plan.queries[column], time=plan.end_s))
                assert set(remote) == set(MODELS), (column, remote)
                for model in MODELS:
                    assert remote[model] == pytest.approx(embedded[model], rel=rel, abs=1e-9), (column, model)
            from exporters.victoriametrics.convert import DURATION_BUCKETS

            bounds_ms = [0.0] + [b * 1000 for b in DURATION_BUCKETS] + [math.inf]
            body = {"time_range": time_range, "metric": {"event_type": "telemetry", "name": DUR},
                    "aggregation": {"functions": ["p95"], "group_by": ["model"]}}  # fmt: skip
            q = parse_query(body, tenant="diff", now_us=int(now_s * 1e6))
            exact = {r["model"]: r["p95"] for r in executor.execute(q)["data"]}
            plan = compile_promql(q)
            estimate = _by_model(reader.query(plan.queries["p95"], time=plan.end_s))
            for model in MODELS:
                i = next(i for i, b in enumerate(bounds_ms) if exact[model] <= b)
                assert bounds_ms[max(i - 2, 0)] <= estimate[model] <= bounds_ms[i], (model, exact, estimate)
            # the same IR through the executor on both backends, bucketed per minute
            prom = QueryExecutor(PromBackend(reader))
            body = {"time_range": time_range, "metric": {"event_type": "telemetry", "name": DUR},
                    "aggregation": {"time_bucket": "1m", "functions": ["count", "sum"], "group_by": ["model"]},
                    "sort": [{"field": "model", "order": "desc"}]}  # fmt: skip
            q = parse_query(body, tenant="diff", now_us=int(now_s * 1e6))
            left, right = executor.execute(q), prom.execute(q)
            assert right["metadata"]["backend"] == "victoriametrics" and "promql" in right["metadata"]["compiled_query"]
            got = [(r["bucket"], r["model"], r["count"], r["sum"]) for r in right["data"] if r["count"]]
            want = [(r["bucket"], r["model"], r["count"], r["sum"]) for r in left["data"]]
            assert len(want) == 8  # 4 minutes x 2 models
            assert [g[:3] for g in got] == [w[:3] for w in want]
            assert [g[3] for g in got] == pytest.approx([w[3] for w in want], rel=1e-6)
    finally:
        store.shutdown()
