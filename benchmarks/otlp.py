"""OTLP/gRPC metrics ingest: end-to-end points/s into the embedded store, next to two reference rates.

    .venv/bin/python benchmarks/otlp.py            # 10 s of load
    .venv/bin/python benchmarks/otlp.py --quick    # 3 s

Measured in one run, on one request (``--points`` data points, default 1,000: half monotonic sums of
``gen_ai.client.token.usage``, half 15-bucket histograms of ``gen_ai.client.operation.duration``, with
realistic GenAI attributes):

* ``decode_points_per_s``: bare protobuf decode (``ParseFromString``, count only);
* ``touch_points_per_s``: decode + every point's attributes into a dict in Python;
* ``translate_points_per_s``: decode + :func:`receivers.otlp.translate.metrics_to_rows`;
* ``stored_points_per_s``: a client process sends the serialized request over gRPC (``--concurrency``
  requests in flight) for the load time to the receiver (this process: grpc.aio server, IngestPipeline,
  EmbeddedStore with its WAL and DuckDB writer); rows counted in DuckDB after a flush, divided by the
  load time plus the flush time. ``accepted_points_per_s`` counts acknowledged points over the load time.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from hub.pipeline import IngestPipeline
from hubcore.config import NativeEventsConfig
from hubcore.dlq import DeadLetterQueue
from hubcore.storage.embedded import EmbeddedStore
from hubcore.telemetry import HubMetrics
from receivers.otlp.grpc_service import add_otlp_servicers
from receivers.otlp.translate import metrics_to_rows

METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3-70b", "gemini-1.5-pro", "mistral-large", "o1"]
PROVIDERS = ["openai", "openai", "anthropic", "aws.bedrock", "gcp.vertex_ai", "mistral_ai", "openai"]
BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def build_request(points: int) -> ExportMetricsServiceRequest:
    """``points`` data points in 10 metrics (5 sums, 5 histograms), 7 attributes each, timestamps now."""
    now = time.time_ns()
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend([
        _kv("service.name", "llm-observatory"), _kv("service.version", "2.3.1"), _kv("host.name", "gw-7"),
        _kv("deployment.environment.name", "prod"), _kv("team", "ml-platform"),
    ])  # fmt: skip
    sm = rm.scope_metrics.add()
    sm.scope.name = "opentelemetry.instrumentation.openai"
    per_metric = max(1, points // 10)
    made = 0
    for mi in range(10):
        n = per_metric if mi < 9 else points - made
        if mi % 2 == 0:
            m = sm.metrics.add(name="gen_ai.client.token.usage", unit="{token}")
            m.sum.aggregation_temporality = 2
            m.sum.is_monotonic = True
            dps: Any = m.sum.data_points
        else:
            m = sm.metrics.add(name="gen_ai.client.operation.duration", unit="s")
            m.histogram.aggregation_temporality = 2
            dps = m.histogram.data_points
        for i in range(n):
            k = (mi * 131 + i) % len(MODELS)
            attrs = [
                _kv("gen_ai.request.model", MODELS[k]), _kv("gen_ai.provider.name", PROVIDERS[k]),
                _kv("gen_ai.operation.name", "chat" if i % 3 else "embeddings"),
                _kv("server.address", f"api-{k}.example.com"), _kv("project", f"project-{i % 17}"),
                _kv("user.tier", "enterprise" if i % 5 else "free"),
            ]  # fmt: skip
            if mi % 2 == 0:
                attrs.append(_kv("gen_ai.token.type", "input" if i % 2 else "output"))
                dps.add(time_unix_nano=now, start_time_unix_nano=now - 60 * 10**9, as_int=1000 + i, attributes=attrs)
            else:
                attrs.append(_kv("error.type", "timeout") if i % 50 == 0 else _kv("http.response.status_code", "200"))
                counts = [(i + j) % 7 for j in range(len(BOUNDS) + 1)]
                dps.add(time_unix_nano=now, start_time_unix_nano=now - 60 * 10**9, count=sum(counts),
                        sum=sum(counts) * 0.5, min=0.01, max=50.0, explicit_bounds=BOUNDS, bucket_counts=counts,
                        attributes=attrs)  # fmt: skip
        made += n
    return req


def _rate(seconds: float, fn: Any, points: int) -> float:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        n += 1
    return n * points / elapsed


def reference_rates(data: bytes, points: int, seconds: float) -> dict[str, float]:
    def decode() -> None:
        ExportMetricsServiceRequest.FromString(data)

    def touch() -> None:
        req = ExportMetricsServiceRequest.FromString(data)
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    for dp in getattr(m, m.WhichOneof("data")).data_points:
                        {kv.key: kv.value.string_value for kv in dp.attributes}

    def translate() -> None:
        metrics_to_rows(ExportMetricsServiceRequest.FromString(data), "bench")

    return {
        "decode_points_per_s": _rate(seconds, decode, points),
        "touch_points_per_s": _rate(seconds, touch, points),
        "translate_points_per_s": _rate(seconds, translate, points),
    }


def client_main(target: str, data: bytes, seconds: float, concurrency: int, out: Any) -> None:
    """The load generator (its own process): keeps ``concurrency`` Export calls in flight."""
    ok = throttled = failed = 0
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        deadline = time.monotonic() + seconds
        inflight: list[Any] = []
        while time.monotonic() < deadline or inflight:
            while len(inflight) < concurrency and time.monotonic() < deadline:
                inflight.append(call.future(data, timeout=60))
            fut = inflight.pop(0)
            try:
                fut.result()
                ok += 1
            except grpc.RpcError as exc:
                if exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                    throttled += 1
                    time.sleep(0.05)
                else:
                    failed += 1
    out.put({"ok": ok, "throttled": throttled, "failed": failed})


class NullConsumer:
    """Counts rows and drops them: the receiver alone (gRPC + decode + translate)."""

    def __init__(self) -> None:
        self.rows = 0

    def consume_rows(self, kind: Any, columns: dict[str, list[Any]], *, receiver: str) -> None:
        self.rows += len(columns["tenant_id"])


def end_to_end(
    data: bytes, points: int, seconds: float, concurrency: int, fsync: bool, data_dir: Path, *, null: bool = False
) -> dict[str, Any]:
    store = EmbeddedStore(data_dir, wal_fsync=fsync)
    store.start()
    pipeline = IngestPipeline(NativeEventsConfig(), store, DeadLetterQueue(data_dir, fsync=False), HubMetrics())
    consumer: Any = NullConsumer() if null else pipeline
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
        add_otlp_servicers(server, consumer, default_tenant="bench")
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=client_main, args=(f"127.0.0.1:{port}", data, seconds, concurrency, out))
    started = time.perf_counter()
    proc.start()
    result = out.get(timeout=seconds + 120)
    sent_at = time.perf_counter()
    proc.join(30)
    flushed = store.flush(300.0)
    done = time.perf_counter()
    row = store.read("SELECT count(*) FROM metric_points").fetchone()
    stored = consumer.rows if null else (int(row[0]) if row else 0)
    asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    store.shutdown()
    load_s, flush_s = sent_at - started, done - sent_at
    return {
        **result,
        "flushed": flushed,
        "load_seconds": round(load_s, 3),
        "flush_seconds": round(flush_s, 3),
        "accepted_points": result["ok"] * points,
        "stored_rows": stored,
        "accepted_points_per_s": result["ok"] * points / load_s,
        "stored_points_per_s": stored / (load_s + flush_s),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load time (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 s of load, shorter reference loops")
    parser.add_argument("--points", type=int, default=1000, help="data points per request (default 1000)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument("--fsync", action="store_true", help="fsync the WAL on every batch (production default)")
    parser.add_argument("--receiver-only", action="store_true", help="also measure with a consumer that drops rows")
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    ref_seconds = 1.0 if args.quick else 2.0
    req = build_request(args.points)
    data = req.SerializeToString()
    points = args.points
    refs = reference_rates(data, points, ref_seconds)
    for key, value in refs.items():
        print(f"{key:>26}: {value:>12,.0f}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="otlp-bench-") as tmp:
        e2e = end_to_end(data, points, seconds, args.concurrency, args.fsync, Path(tmp))
        if args.receiver_only:
            alone = end_to_end(data, points, seconds, args.concurrency, False, Path(tmp) / "null", null=True)
            refs["receiver_only_points_per_s"] = alone["stored_points_per_s"]
    print(f"{'stored_points_per_s':>26}: {e2e['stored_points_per_s']:>12,.0f}  "
          f"(accepted {e2e['accepted_points_per_s']:,.0f}/s, throttled {e2e['throttled']}, "
          f"failed {e2e['failed']})", file=sys.stderr)  # fmt: skip
    summary = {
        "benchmark": "otlp_grpc_metrics",
        "points_per_request": points,
        "request_bytes": len(data),
        "concurrency": args.concurrency,
        "wal_fsync": args.fsync,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **{k: round(v) for k, v in refs.items()},
        **{k: round(v) if isinstance(v, float) and k.endswith("_per_s") else v for k, v in e2e.items()},
    }
    print(json.dumps(summary))
    return 0 if e2e["failed"] == 0 and e2e["stored_rows"] == e2e["accepted_points"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
