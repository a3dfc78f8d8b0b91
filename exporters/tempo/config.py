"""Configuration of the Tempo exporter: ``exporters.tempo``.

exporters:
  tempo:
    endpoint: http://tempo:4318           # OTLP/HTTP: POST {endpoint}/v1/traces

>>> TempoExporterConfig(endpoint="http://tempo:4318").traces_url
'http://tempo:4318/v1/traces'
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from exporters.queue.config import QueueConfig, RetryConfig
from hubcore.errors import ConfigError


class TempoExporterConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """Keys:

    * ``endpoint``: Tempo's OTLP/HTTP receiver base URL (``http://tempo:4318``), or any OTLP/HTTP
      endpoint (a Collector). Required.
    * ``tenant_header``: send ``X-Scope-OrgID: <tenant_id>`` (Tempo multi-tenancy), one request per tenant.
    * ``org_id``: a fixed ``X-Scope-OrgID`` instead.
    * ``gzip``: compress request bodies (``Content-Encoding: gzip``).
    * ``flush_interval`` (s), ``max_batches_per_flush``, ``max_request_bytes``, ``timeout`` (s), ``headers``.
    * ``sending_queue`` / ``retry_on_failure``: :mod:`exporters.queue.config`.
    """

    endpoint: str = ""
    tenant_header: bool = True
    org_id: str = ""
    gzip: bool = False
    flush_interval: Annotated[float, msgspec.Meta(gt=0, le=300)] = 1.0
    max_batches_per_flush: Annotated[int, msgspec.Meta(gt=0)] = 1000
    max_request_bytes: Annotated[int, msgspec.Meta(gt=1024)] = 4 << 20
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    headers: dict[str, str] = {}
    sending_queue: QueueConfig = msgspec.field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = msgspec.field(default_factory=RetryConfig)

    def validate(self, key: str = "exporters.tempo") -> TempoExporterConfig:
        if not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"{key}.endpoint", f"must be an http(s) URL, got {self.endpoint!r}")
        return self

    @property
    def traces_url(self) -> str:
        base = self.endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else base + "/v1/traces"
