"""Configuration of the Loki exporter: ``exporters.loki``.

exporters:
  loki:
    endpoint: http://loki:3100           # POST {endpoint}/loki/api/v1/push
    encoding: protobuf                   # or json
    flush_interval: 1.0

>>> LokiExporterConfig(endpoint="http://loki:3100").push_url
'http://loki:3100/loki/api/v1/push'
"""

from __future__ import annotations

from typing import ClassVar, Literal

from exporters.queue.config import QueuedExporterConfig

EVENT_STREAM_LABELS = ("tenant_id", "source_module", "event_type", "severity", "environment")
LOG_STREAM_LABELS = ("tenant_id", "service_name", "severity", "environment")


class LokiExporterConfig(QueuedExporterConfig, frozen=True):
    """Keys:

    * ``endpoint``: Loki's base URL (``http://loki:3100``; the distributor or gateway). Required.
    * ``encoding``: ``protobuf`` (snappy-compressed ``logproto.PushRequest``, Loki's native format) or ``json``.
    * ``tenant_header``: send ``X-Scope-OrgID: <tenant_id>``, one request per tenant (Loki multi-tenancy).
    * ``org_id``: a fixed ``X-Scope-OrgID`` for every request instead (single-tenant Loki behind a gateway).
    * ``flush_interval`` (s), ``max_batches_per_flush``, ``max_request_bytes`` (encoded body; larger
      requests are split in halves, as on a 413), ``timeout`` (s), ``headers``.
    * ``sending_queue`` / ``retry_on_failure``: :mod:`exporters.queue.config`.
      ``endpoint`` and the flush, HTTP and queue keys come from :class:`exporters.queue.config.QueuedExporterConfig`.

    Stream labels are fixed (low cardinality): native events ``tenant_id, source_module, event_type,
    severity, environment``; OTLP logs ``tenant_id, service_name, severity, environment``.
    """

    section: ClassVar[str] = "exporters.loki"

    encoding: Literal["protobuf", "json"] = "protobuf"
    tenant_header: bool = True
    org_id: str = ""

    @property
    def push_url(self) -> str:
        return self.endpoint.rstrip("/") + "/loki/api/v1/push"
