"""Configuration of the Tempo exporter: ``exporters.tempo``.

exporters:
  tempo:
    endpoint: http://tempo:4318           # OTLP/HTTP: POST {endpoint}/v1/traces

>>> TempoExporterConfig(endpoint="http://tempo:4318").traces_url
'http://tempo:4318/v1/traces'
"""

from __future__ import annotations

from typing import ClassVar

from exporters.queue.config import QueuedExporterConfig


class TempoExporterConfig(QueuedExporterConfig, frozen=True):
    """Keys:

    * ``endpoint``: Tempo's OTLP/HTTP receiver base URL (``http://tempo:4318``), or any OTLP/HTTP
      endpoint (a Collector). Required.
    * ``tenant_header``: send ``X-Scope-OrgID: <tenant_id>`` (Tempo multi-tenancy), one request per tenant.
    * ``org_id``: a fixed ``X-Scope-OrgID`` instead.
    * ``gzip``: compress request bodies (``Content-Encoding: gzip``).
    * ``flush_interval`` (s), ``max_batches_per_flush``, ``max_request_bytes``, ``timeout`` (s), ``headers``.
    * ``sending_queue`` / ``retry_on_failure``: :mod:`exporters.queue.config`.
      ``endpoint`` and the flush, HTTP and queue keys come from :class:`exporters.queue.config.QueuedExporterConfig`.
    """

    section: ClassVar[str] = "exporters.tempo"

    tenant_header: bool = True
    org_id: str = ""
    gzip: bool = False

    @property
    def traces_url(self) -> str:
        base = self.endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else base + "/v1/traces"
