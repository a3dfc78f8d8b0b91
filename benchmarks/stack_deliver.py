#!/usr/bin/env python3
"""Stack mode's hand-off of one accepted batch to its destinations (the embedded store and the
VictoriaMetrics, Loki and Tempo queues), the pipeline's ``_deliver``, next to the way it was done before
in the same run: the batch encoded once for the queues' room check, then again by the store and by each
queue (``before``), against encoded once and the bytes handed to every destination (``pipeline``).

    .venv/bin/python benchmarks/stack_deliver.py            # 300 rounds of 200 native events
    .venv/bin/python benchmarks/stack_deliver.py --quick    # CI: a few seconds

The exporters' workers are stopped (no network, no conversion in the background: only the hand-off is
timed); the queues do not fsync (``--fsync`` turns it on: then the disk dominates). Rounds alternate
between the two ways; the figures are medians per batch. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporters.loki import LokiExporter, LokiExporterConfig
from exporters.queue import QueueConfig
from exporters.tempo import TempoExporter, TempoExporterConfig
from exporters.victoriametrics import VictoriaMetricsExporter, VictoriaMetricsExporterConfig
from hub.pipeline import IngestPipeline
from hubcore.config import NativeEventsConfig
from hubcore.dlq import DeadLetterQueue
from hubcore.storage.embedded import EmbeddedStore
from hubcore.telemetry import HubMetrics
from processors.native_events import NativeEventsProcessor
from tests.helpers.events import make_event

_enc = msgspec.msgpack.Encoder()
TYPES = ("telemetry", "cost", "security", "governance", "policy", "metadata")


def batch(n: int) -> dict[str, list[Any]]:
    raw = [msgspec.json.encode(make_event(TYPES[i % len(TYPES)])) for i in range(n)]
    result = NativeEventsProcessor(NativeEventsConfig()).process(raw, tenant_id="bench")
    assert not result.rejected
    return result.columns


def exporters(root: Path, fsync: bool) -> list[tuple[str, Any]]:
    def queue(name: str) -> QueueConfig:
        return QueueConfig(directory=str(root / name), fsync=fsync, max_bytes=8 << 30, max_batches=10_000_000)

    url = "http://127.0.0.1:9"  # never contacted: the workers are stopped
    built = [
        ("victoriametrics", VictoriaMetricsExporter(VictoriaMetricsExporterConfig(url, sending_queue=queue("vm")))),
        ("loki", LokiExporter(LokiExporterConfig(url, sending_queue=queue("loki")))),
        ("tempo", TempoExporter(TempoExporterConfig(url, sending_queue=queue("tempo")))),
    ]
    for _name, ex in built:
        ex.start()
        ex._stop.set()  # only the queue is timed
        ex._thread.join(5)
    return built


def before(pipe: IngestPipeline, kind: str, cols: dict[str, list[Any]], keep: bool) -> None:
    """The hand-off as it was: encoded for the room check, then by the store and by every queue."""
    targets = pipe.exporters["events"]
    with pipe._deliver_lock:
        nbytes = len(_enc.encode({"kind": kind, "cols": cols}))
        for _name, ex in targets:
            assert ex.has_room(nbytes)
        if keep:
            pipe.store.append(kind, cols)
        for _name, ex in targets:
            ex.export(kind, cols)  # without the encoded bytes: the queue encodes the batch itself


def trim(targets: list[tuple[str, Any]]) -> None:
    for _name, ex in targets:
        q = ex._queue
        if q.depth:
            q.ack(q.peek(1)[0][0] + q.depth - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--events", type=int, default=200, help="native events per batch")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--fsync", action="store_true")
    args = ap.parse_args()
    rounds = args.rounds or (40 if args.quick else 300)
    cols = batch(args.events)
    encoded_bytes = len(_enc.encode({"kind": "events", "cols": cols}))
    result: dict[str, Any] = {"benchmark": "stack_deliver", "events_per_batch": args.events, "rounds": rounds,
                              "batch_bytes": encoded_bytes, "fsync": args.fsync}  # fmt: skip
    for label, keep in (("stack_only", False), ("store_and_stack", True)):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            store = EmbeddedStore(root / "store", wal_fsync=args.fsync, flush_interval=0.5)
            store.start()
            targets = exporters(root / "queue", args.fsync)
            sources = frozenset({"events"}) if keep else frozenset()
            pipe = IngestPipeline(NativeEventsConfig(), store, DeadLetterQueue(root, fsync=False), HubMetrics(),
                                  exporters={"events": targets}, store_sources=sources)  # fmt: skip
            old: list[float] = []
            new: list[float] = []
            for i in range(rounds + 5):
                t = time.perf_counter()
                before(pipe, "events", cols, keep)
                t_old = time.perf_counter() - t
                t = time.perf_counter()
                pipe._deliver("events", "events", cols)
                t_new = time.perf_counter() - t
                if i >= 5:  # warm-up
                    old.append(t_old)
                    new.append(t_new)
                if i % 20 == 19:
                    trim(targets)
                    if keep:
                        store.flush(60)
            for _name, ex in targets:
                ex.shutdown(1)
            store.shutdown()
        b, p = statistics.median(old), statistics.median(new)
        result[label] = {"before_ms": round(b * 1e3, 3), "pipeline_ms": round(p * 1e3, 3),
                         "saved_pct": round(100 * (b - p) / b, 1)}  # fmt: skip
        print(f"{label}: before {b * 1e3:.3f} ms, pipeline {p * 1e3:.3f} ms per batch of {args.events} events "
              f"({encoded_bytes:,} bytes encoded)", file=sys.stderr)  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
