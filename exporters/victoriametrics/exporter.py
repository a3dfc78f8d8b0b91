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
from typing import ClassVar

from exporters._common import EventMapping
from exporters.queue.base import Batch, QueuedExporter
from exporters.victoriametrics.config import VictoriaMetricsExporterConfig
from exporters.victoriametrics.convert import PointsConverter, SeriesKey
from exporters.victoriametrics.remote_write import HEADERS, compress, encode_labels, encode_series
from hubcore.mapping import EVENTS_TO_POINTS_SQL

log = logging.getLogger(__name__)


class VictoriaMetricsExporter(QueuedExporter):
    name: ClassVar[str] = "victoriametrics"
    kinds: ClassVar[frozenset[str]] = frozenset({"metric_points", "events"})
    config: VictoriaMetricsExporterConfig

    def __init__(self, config: VictoriaMetricsExporterConfig, *, default_directory: str = "") -> None:
        super().__init__(config, headers=HEADERS, default_directory=default_directory)
        self.converter = PointsConverter(
            buckets=config.buckets,
            label_attributes=config.label_attributes,
            external_labels=config.external_labels,
        )
        self._labels_cache: dict[SeriesKey, bytes] = {}
        self._events_to_points = EventMapping(EVENTS_TO_POINTS_SQL)
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
                cols = self._events_to_points(cols)
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
        self._events_to_points.close()


def _encode(series: Sequence[bytes]) -> bytes:
    return compress(b"".join(series))


def _tenant(key: SeriesKey) -> str:
    for name, value in key:
        if name == "tenant_id":
            return value
    return ""
