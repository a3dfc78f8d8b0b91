#!/usr/bin/env python3
"""Samples/s delivered to a real VictoriaMetrics through the hub's remote-write exporter, next to a bare
remote-write client (pre-encoded snappy protobuf posted in a loop) in the same run.

    .venv/bin/python benchmarks/export_vm.py            # ~2 M samples each way
    .venv/bin/python benchmarks/export_vm.py --quick    # CI: well under 30 s

The exporter path is the whole of it: ``export("metric_points", columns)`` (msgpack into the on-disk
queue), the worker's conversion (labels, naming, series grouping), hand-encoded protobuf, snappy, HTTP,
acknowledgement. The run ends when the queue is empty (everything accepted by VictoriaMetrics), and the
sample count is checked with PromQL. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporters.queue import QueueConfig
from exporters.victoriametrics import VictoriaMetricsExporter, VictoriaMetricsExporterConfig
from exporters.victoriametrics.remote_write import HEADERS, compress, encode_labels, encode_series
from hubcore.storage.readers import PromReader
from tests.helpers.procs import run_victoriametrics


def rows(n_series: int, per_series: int, t0_us: int, batch_rows: int) -> list[dict[str, list[object]]]:
    """metric_points gauge rows, ``batch_rows`` per export call."""
    batches: list[dict[str, list[object]]] = []
    cols: dict[str, list[object]] = {}
    keys = ("tenant_id", "ts", "name", "kind", "value", "unit", "service_name", "model", "environment", "source")
    for k in keys:
        cols[k] = []
    for step in range(per_series):
        for s in range(n_series):
            for k, v in zip(
                keys,
                ("bench", t0_us + step * 1_000_000, "bench.queue.depth", "gauge", float(s + step), "",
                 f"svc-{s % 10}", f"model-{s}", "bench", "otlp"),
                strict=True,
            ):  # fmt: skip
                cols[k].append(v)
            if len(cols["ts"]) >= batch_rows:
                batches.append(cols)
                cols = {k: [] for k in keys}
    if cols["ts"]:
        batches.append(cols)
    return batches


def bare_bodies(n_series: int, per_series: int, t0_ms: int, series_per_request: int) -> list[bytes]:
    labels = [
        encode_labels(
            sorted({"__name__": "bare_gauge", "tenant_id": "bench", "gen_ai_request_model": f"model-{s}"}.items())
        )
        for s in range(n_series)
    ]
    encoded = [
        encode_series(labels[s], [(t0_ms + i * 1000, float(s + i)) for i in range(per_series)]) for s in range(n_series)
    ]
    return [compress(b"".join(encoded[i : i + series_per_request])) for i in range(0, n_series, series_per_request)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small run for CI (< 30 s)")
    ap.add_argument("--series", type=int, default=None)
    ap.add_argument("--samples-per-series", type=int, default=None)
    ap.add_argument("--batch-rows", type=int, default=10_000, help="rows per export() call")
    args = ap.parse_args()
    n_series = args.series or (500 if args.quick else 2000)
    per_series = args.samples_per_series or (200 if args.quick else 1000)
    total = n_series * per_series
    t0_us = (int(time.time()) - per_series - 3600) * 1_000_000

    with tempfile.TemporaryDirectory() as tmp, run_victoriametrics(Path(tmp)) as vm:
        # -- bare client -----------------------------------------------------------------------------
        bodies = bare_bodies(n_series, per_series, t0_us // 1000, series_per_request=max(1, 50_000 // per_series))
        with httpx.Client(timeout=30) as client:
            started = time.perf_counter()
            for body in bodies:
                r = client.post(f"{vm.url}/api/v1/write", content=body, headers=HEADERS)
                r.raise_for_status()
            bare_s = time.perf_counter() - started

        # -- through the exporter --------------------------------------------------------------------
        batches = rows(n_series, per_series, t0_us, args.batch_rows)
        cfg = VictoriaMetricsExporterConfig(
            endpoint=vm.url, flush_interval=0.05, max_batches_per_flush=10,
            sending_queue=QueueConfig(directory=str(Path(tmp) / "queue"), fsync=False, max_bytes=2 << 30),
        )  # fmt: skip
        ex = VictoriaMetricsExporter(cfg)
        ex.start()
        started = time.perf_counter()
        for cols in batches:
            ex.export("metric_points", cols)
        enqueue_s = time.perf_counter() - started
        drained = ex.flush(600)
        hub_s = time.perf_counter() - started
        ex.shutdown(10)

        vm.flush()
        with PromReader(vm.url) as reader:
            deadline = time.monotonic() + 20
            counted = 0.0
            while time.monotonic() < deadline:
                df = reader.query(f"sum(count_over_time(bench_queue_depth[{per_series + 7200}s]))")
                counted = float(df["value"].sum()) if not df.empty else 0.0
                if counted >= total:
                    break
                time.sleep(0.5)

    result = {
        "benchmark": "export_vm",
        "quick": args.quick,
        "series": n_series,
        "samples": total,
        "bare_remote_write_samples_per_s": round(total / bare_s),
        "hub_exporter_samples_per_s": round(total / hub_s),
        "hub_export_call_samples_per_s": round(total / enqueue_s),
        "hub_vs_bare": round(bare_s / hub_s, 3),
        "requests": ex.delivery.stats.requests,
        "drained": drained,
        "samples_counted_by_promql": int(counted),
        "complete": drained and int(counted) == total,
    }
    print(f"bare remote write: {result['bare_remote_write_samples_per_s']:,} samples/s; "
          f"hub exporter end to end: {result['hub_exporter_samples_per_s']:,} samples/s", file=sys.stderr)  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
