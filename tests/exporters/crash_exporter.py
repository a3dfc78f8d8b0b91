"""A child process for the kill -9 test: export cost events to VictoriaMetrics, one line per ``export``.

    python -m tests.exporters.crash_exporter <vm_url> <queue_dir> export <n>   # prints "ok <i>" per batch
    python -m tests.exporters.crash_exporter <vm_url> <queue_dir> drain        # starts, flushes, exits

Each batch is one cost event of 1 USD, so ``llm_cost_usd_total`` must end at the number of batches
``export`` returned from (or one more: the batch being written when the process was killed).
"""

from __future__ import annotations

import sys

import msgspec

from exporters.queue import QueueConfig, RetryConfig
from exporters.victoriametrics import VictoriaMetricsExporter, VictoriaMetricsExporterConfig
from hubcore.config import NativeEventsConfig
from processors.native_events import NativeEventsProcessor
from tests.helpers.events import make_event


def main(url: str, queue_dir: str, mode: str, n: int = 0) -> None:
    cfg = VictoriaMetricsExporterConfig(
        endpoint=url,
        flush_interval=0.05,
        sending_queue=QueueConfig(directory=queue_dir, fsync=False),
        retry_on_failure=RetryConfig(initial_interval=0.05, max_interval=0.2),
    )
    ex = VictoriaMetricsExporter(cfg)
    ex.start()
    if mode == "drain":
        ok = ex.flush(30)
        ex.shutdown(5)
        print("drained" if ok else "not drained", flush=True)
        return
    processor = NativeEventsProcessor(NativeEventsConfig())
    for i in range(n):
        cols = processor.process(
            [msgspec.json.encode(make_event("cost", payload={"amount": 1.0}))], tenant_id="k9"
        ).columns
        ex.export("events", cols)
        print(f"ok {i}", flush=True)
    ex.flush(30)
    ex.shutdown(5)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 0)
