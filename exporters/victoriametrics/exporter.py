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
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from exporters._common import EventMapping
from exporters.queue.base import Batch, QueuedExporter
from exporters.victoriametrics import forgotten
from exporters.victoriametrics.config import VictoriaMetricsExporterConfig
from exporters.victoriametrics.convert import PointsConverter, SeriesKey, SeriesStats
from exporters.victoriametrics.remote_write import HEADERS, compress, encode_labels, encode_series
from hubcore.files import write_atomic
from hubcore.mapping import EVENTS_TO_POINTS_SQL

log = logging.getLogger(__name__)

#: the whole state is rewritten (a new base file) once more than this many series, or a quarter of all
#: series, changed since the last base; every acknowledgement carries only the series changed since
REBASE_MIN_SERIES = 1024
_BASE_GLOB = "state-*.msgpack"


class VictoriaMetricsExporter(QueuedExporter):
    name: ClassVar[str] = "victoriametrics"
    kinds: ClassVar[frozenset[str]] = frozenset({"metric_points", "events"})
    config: VictoriaMetricsExporterConfig

    def __init__(self, config: VictoriaMetricsExporterConfig, *, default_directory: str = "") -> None:
        super().__init__(config, headers=HEADERS, default_directory=default_directory)
        self.converter = self._new_converter()
        self._labels_cache: dict[SeriesKey, bytes] = {}
        self._events_to_points = EventMapping(EVENTS_TO_POINTS_SQL)
        self.samples_sent = 0
        self._base_id = 0  # the state file the acknowledgement builds on (0: none, the empty state)
        self._forgotten_saved = 0  # ``converter.forgotten_changes`` when ``forgotten.bin`` was last written

    # -- state (running totals of delta counters and event histograms) -----------------------------
    # The acknowledgement carries {"base": id, "delta": the series changed since base id} and the whole
    # state lives in ``state-<id>.msgpack`` beside the queue, written (atomically, fsynced like the queue)
    # before the acknowledgement that names it; the base before it is kept until the next one. So an
    # acknowledgement costs what changed since the base, not every series ever seen, and a restart
    # (kill -9 included) restores exactly the totals of the last acknowledgement. Series idle longer
    # than ``series_ttl`` (or beyond ``max_series``) are forgotten, and the acknowledgement carries their
    # removal; one that comes back restarts from 0 after a 0 sample (a counter reset for PromQL, which
    # ``increase``/``rate`` count right; see ``PointsConverter.finish``). To tell such a series from a new
    # one (which gets no 0 sample) after a restart too, the digests of the forgotten series are saved in
    # ``forgotten.bin`` with each new base and read at start; those forgotten since the base come back from
    # the acknowledgement's removals (``PointsConverter.merge``).
    def start(self) -> None:
        if not self._started and not self._closed:
            self.converter.remember(forgotten.load(self.directory / forgotten.FILE_NAME))
            self._forgotten_saved = self.converter.forgotten_changes
        super().start()

    def snapshot_state(self) -> bytes | None:
        conv = self.converter
        if len(conv.dirty) + len(conv.removed) > max(REBASE_MIN_SERIES, conv.series_count // 4):
            self._write_base(self._base_id + 1)
        delta = conv.snapshot(conv.dirty, removed=conv.removed)  # forgotten series: removed from the base
        return msgspec.msgpack.encode({"base": self._base_id, "delta": delta})

    def restore_state(self, state: bytes) -> None:
        data = msgspec.msgpack.decode(state)
        if not (isinstance(data, dict) and "base" in data):  # a whole snapshot (older versions)
            self.converter.reset()
            self.converter.merge(state)  # all dirty: the next acknowledgement writes them again
            self._base_id = 0
            return
        base_id = int(data["base"])
        if base_id:
            path = self._base_path(base_id)
            try:
                blob = path.read_bytes()
            except FileNotFoundError:
                raise RuntimeError(
                    f"{path} is missing: the counter state of the last acknowledgement is lost"
                ) from None
            self.converter.restore(blob)
        else:
            self.converter.reset()
        self.converter.merge(data["delta"])
        self._base_id = base_id

    def reset_state(self) -> None:
        self.converter.reset()
        self._base_id = 0

    def _base_path(self, base_id: int) -> Path:
        return self.directory / f"state-{base_id:012d}.msgpack"

    def _write_base(self, base_id: int) -> None:
        """The whole state as base ``base_id``; bases before the previous one are deleted. The forgotten
        series are saved first (the acknowledgement naming the new base no longer carries their removal)."""
        self._save_forgotten()
        write_atomic(self._base_path(base_id), self.converter.snapshot(), fsync=self.queue_config.fsync)
        previous, self._base_id = self._base_id, base_id
        self.converter.clear_dirty()
        for old in self.directory.glob(_BASE_GLOB):
            try:
                old_id = int(old.stem.removeprefix("state-"))
            except ValueError:
                continue
            if old_id not in (previous, base_id):
                old.unlink(missing_ok=True)

    def _save_forgotten(self) -> None:
        conv = self.converter
        if conv.forgotten_changes == self._forgotten_saved:
            return
        try:
            forgotten.save(self.directory / forgotten.FILE_NAME, conv.forgotten, fsync=self.queue_config.fsync)
        except OSError as exc:  # costs only the 0 samples of series that come back after a restart
            log.warning("victoriametrics: cannot save the forgotten series in %s: %s", self.directory, exc)
            return
        self._forgotten_saved = conv.forgotten_changes

    # -- worker -----------------------------------------------------------------------------------
    def process(self, batches: list[Batch]) -> None:
        by_url: dict[str, list[bytes]] = {}
        n_samples = 0
        conv = self.converter
        forgotten = conv.expired_total + conv.evicted_total
        converted = self._convert(conv, [body for _seq, body in batches])
        if conv.expired_total + conv.evicted_total != forgotten:
            self._labels_cache.clear()  # (it holds the encoded labels of series that are gone)
        for key, samples in converted.items():
            n_samples += len(samples)
            url = self.config.write_url(_tenant(key))
            by_url.setdefault(url, []).append(encode_series(self._label_bytes(key), samples))
        for url, series in by_url.items():
            self.delivery.deliver(series, _encode, url=url, headers=self.headers)
        self.samples_sent += n_samples

    def check_batch(self, body: Any) -> None:
        """Convert ``body`` on a scratch converter (the running totals are not touched) and encode it."""
        for key, samples in self._convert(self._new_converter(scratch=True), [body]).items():
            encode_series(encode_labels(key), samples)

    def _new_converter(self, *, scratch: bool = False) -> PointsConverter:
        cfg = self.config
        return PointsConverter(
            buckets=cfg.buckets,
            label_attributes=cfg.label_attributes,
            external_labels=cfg.external_labels,
            series_ttl=0.0 if scratch else cfg.series_ttl_s,
            max_series=0 if scratch else cfg.max_series,
        )

    @property
    def series_stats(self) -> SeriesStats:
        """Accumulated series kept in memory, and forgotten since start (``hub_export_tracked_series``,
        ``hub_export_series_forgotten_total``)."""
        return self.converter.stats

    def _convert(self, conv: PointsConverter, bodies: list[Any]) -> dict[SeriesKey, list[tuple[int, float]]]:
        conv.begin()
        out: dict[SeriesKey, list[tuple[int, float]]] = {}
        for body in bodies:
            cols = body["cols"]
            if body["kind"] == "events":
                cols = self._events_to_points(cols)
            conv.convert_into(cols, out)
        conv.finish(out)
        for samples in out.values():
            samples.sort()
        return out

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
