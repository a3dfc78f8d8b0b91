"""Configuration of the VictoriaMetrics (Prometheus remote write) exporter: ``exporters.victoriametrics``.

exporters:
  victoriametrics:
    endpoint: http://victoriametrics:8428        # single node: POST {endpoint}/api/v1/write
    # cluster: POST {endpoint}/insert/<accountID>/prometheus/api/v1/write (endpoint = vminsert:8480)
    cluster: {enabled: false, tenant_account_ids: {acme: "1"}, default_account_id: "0"}
    flush_interval: 1.0
    series_ttl: 24h          # forget delta counters/histograms idle this long (they restart from 0)
    max_series: 1000000      # at most this many running totals in memory
    sending_queue: {directory: ./data/queue/victoriametrics, max_bytes: 268435456}
    retry_on_failure: {initial_interval: 0.5, max_interval: 30}

>>> VictoriaMetricsExporterConfig(endpoint="http://vm:8428").write_url("acme")
'http://vm:8428/api/v1/write'
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Self

import msgspec

from exporters.queue.config import QueuedExporterConfig
from exporters.victoriametrics.convert import DEFAULT_LABEL_ATTRIBUTES
from hubcore.durations import DurationError, parse_duration
from hubcore.errors import ConfigError


class ClusterConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """VictoriaMetrics cluster (vminsert) multi-tenancy.

    * ``enabled``: write to ``/insert/<accountID>/prometheus/api/v1/write``.
    * ``tenant_account_ids``: hub ``tenant_id`` → VictoriaMetrics ``accountID`` (or ``accountID:projectID``).
    * ``default_account_id``: for tenants not in the map.
    The ``tenant_id`` label is written either way.
    """

    enabled: bool = False
    tenant_account_ids: dict[str, str] = {}
    default_account_id: str = "0"


class _RemoteWriteQueueDefaults(QueuedExporterConfig, kw_only=True, frozen=True):
    # here, not below, so that the override stays keyword-only (a field redefined in a class with
    # positional fields would become positional, before ``write_path``)
    max_request_bytes: Annotated[int, msgspec.Meta(gt=1024)] = 8 << 20


class VictoriaMetricsExporterConfig(_RemoteWriteQueueDefaults, frozen=True):
    """Keys:

    * ``endpoint``: base URL (``http://host:8428``; a vminsert URL in cluster mode). Required.
    * ``write_path``: single-node path (``/api/v1/write``; Prometheus/Mimir: ``/api/v1/push`` etc.).
    * ``cluster``: see :class:`ClusterConfig`.
    * ``flush_interval`` (s): how often queued batches are converted and sent; accumulated series
      (delta counters, event histograms) get one sample per series per flush.
    * ``max_batches_per_flush``: queued ``export`` calls taken per flush.
    * ``max_request_bytes``: compressed request size above which a request is split in halves (a 413
      from the server splits too).
    * ``timeout`` (s): per HTTP request.
    * ``headers``: extra HTTP headers (e.g. ``Authorization``).
    * ``external_labels``: labels added to every series.
    * ``label_attributes``: attribute keys that become labels (bounded cardinality; the rest are dropped).
    * ``buckets``: explicit histogram bounds per OTel metric name for event observations (values in the
      metric's base unit, seconds for durations); defaults: GenAI semantic-convention buckets.
    * ``series_ttl``: an accumulated series (a delta counter or histogram, whose running total the
      exporter keeps) not updated for this long is forgotten (``24h``; a duration or seconds; ``0``:
      never). If it comes back it starts again from 0, after a 0 sample, which PromQL reads as a counter
      reset: ``increase``/``rate`` stay right. Non-monotonic delta sums (levels) are never forgotten
      for idleness.
    * ``max_series``: at most this many accumulated series are kept (``0``: no bound); beyond it the
      least recently updated are forgotten, with a warning and ``hub_export_series_forgotten_total
      {reason="limit"}``.
    * ``sending_queue`` / ``retry_on_failure``: :mod:`exporters.queue.config`.
      ``endpoint`` and the flush, HTTP and queue keys come from :class:`exporters.queue.config.QueuedExporterConfig`
      (``max_request_bytes`` defaults to 8 MiB here).
    """

    section: ClassVar[str] = "exporters.victoriametrics"

    write_path: str = "/api/v1/write"
    cluster: ClusterConfig = msgspec.field(default_factory=ClusterConfig)
    external_labels: dict[str, str] = {}
    label_attributes: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_LABEL_ATTRIBUTES))
    buckets: dict[str, list[float]] = {}
    series_ttl: str | float = "24h"
    max_series: Annotated[int, msgspec.Meta(ge=0)] = 1_000_000

    def validate(self, key: str = "") -> Self:
        key = key or self.section
        super().validate(key)
        try:
            parse_duration(self.series_ttl, allow_zero=True)
        except DurationError as exc:
            raise ConfigError(f"{key}.series_ttl", str(exc)) from None
        if not self.write_path.startswith("/"):
            raise ConfigError(f"{key}.write_path", "must start with '/'")
        for name, bounds in self.buckets.items():
            if not bounds or sorted(bounds) != bounds:
                raise ConfigError(f"{key}.buckets.{name}", "must be a non-empty increasing list")
        return self

    @property
    def series_ttl_s(self) -> float:
        """``series_ttl`` in seconds (0: never)."""
        return parse_duration(self.series_ttl, allow_zero=True)

    def write_url(self, tenant_id: str) -> str:
        base = self.endpoint.rstrip("/")
        if not self.cluster.enabled:
            return base + self.write_path
        account = self.cluster.tenant_account_ids.get(tenant_id, self.cluster.default_account_id)
        return f"{base}/insert/{account}/prometheus/api/v1/write"
