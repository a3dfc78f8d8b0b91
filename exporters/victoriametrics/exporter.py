"""The VictoriaMetrics exporter: metric points and native events → Prometheus remote write.

    exporter = VictoriaMetricsExporter(VictoriaMetricsExporterConfig(endpoint="http://127.0.0.1:8428"))
    exporter.start()
    exporter.export("metric_points", columns)   # OTLP-derived rows, as appended to the embedded store
    exporter.export("events", event_columns)    # native event rows: mapped with EVENTS_TO_POINTS_SQL
    exporter.shutdown(10.0)

See ``README.md`` for the mapping, naming and delivery guarantees.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import duckdb

from exporters.queue.base import Batch, QueuedExporter
from exporters.victoriametrics.config import VictoriaMetricsExporterConfig
from exporters.victoriametrics.convert import PointsConverter, SeriesKey
from exporters.victoriametrics.remote_write import HEADERS, compress, encode_labels, encode_series
from hubcore.mapping import EVENTS_TO_POINTS_SQL, run_mapping

log = logging.getLogger(__name__)


def events_to_points(con: duckdb.DuckDBPyConnection, cols: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Run the hub's event mapping on a batch of ``events`` rows (timestamps in µs)."""
    return run_mapping(con, EVENTS_TO_POINTS_SQL, cols)


class VictoriaMetricsExporter(QueuedExporter):
    name: ClassVar[str] = "victoriametrics"
    kinds: ClassVar[frozenset[str]] = frozenset({"metric_points", "events"})

    def __init__(self, config: VictoriaMetricsExporterConfig, *, default_directory: str = "") -> None:
        config.validate()
        super().__init__(
            queue=config.sending_queue,
            retry=config.retry_on_failure,
            flush_interval=config.flush_interval,
            max_batches_per_flush=config.max_batches_per_flush,
            max_body_bytes=config.max_request_bytes,
            timeout=config.timeout,
            headers={**HEADERS, **config.headers},
            default_directory=default_directory,
        )
        self.config = config
        self.converter = PointsConverter(
            buckets=config.buckets,
            label_attributes=config.label_attributes,
            external_labels=config.external_labels,
        )
        self._labels_cache: dict[SeriesKey, bytes] = {}
        self._con: duckdb.DuckDBPyConnection | None = None
        self.samples_sent = 0

    # -- state (running totals of delta counters and event histograms) -----------------------------
    def snapshot_state(self) -> bytes | None:
        return self.converter.snapshot()

    def restore_state(self, state: bytes) -> None:
        self.converter.restore(state)

    # -- worker -----------------------------------------------------------------------------------
    def process(self, batches: list[Batch]) -> None:
        conv = self.converter
        conv.begin()
        out: dict[SeriesKey, list[tuple[int, float]]] = {}
        for _seq, body in batches:
            cols = body["cols"]
            if body["kind"] == "events":
                if self._con is None:
                    self._con = duckdb.connect()
                cols = events_to_points(self._con, cols)
            conv.convert_into(cols, out)
        conv.finish(out)
        by_url: dict[str, list[bytes]] = {}
        n_samples = 0
        for key, samples in out.items():
            samples.sort()
            n_samples += len(samples)
            url = self.config.write_url(_tenant(key))
            by_url.setdefault(url, []).append(encode_series(self._label_bytes(key), samples))
        for url, series in by_url.items():
            self.delivery.deliver(series, _encode, url=url, headers=self.headers)
        self.samples_sent += n_samples

    def _label_bytes(self, key: SeriesKey) -> bytes:
        cached = self._labels_cache.get(key)
        if cached is None:
            if len(self._labels_cache) > 500_000:
                self._labels_cache.clear()
            cached = self._labels_cache[key] = encode_labels(key)
        return cached

    def shutdown(self, timeout: float = 30.0) -> None:
        super().shutdown(timeout)
        if self._con is not None:
            self._con.close()
            self._con = None


def _encode(series: Sequence[bytes]) -> bytes:
    return compress(b"".join(series))


def _tenant(key: SeriesKey) -> str:
    for name, value in key:
        if name == "tenant_id":
            return value
    return ""
