"""Configuration of the Alertmanager client: ``exporters.alertmanager``.

exporters:
  alertmanager:
    endpoint: http://alertmanager:9093     # POST {endpoint}/api/v2/alerts
    resend_interval: 60

>>> AlertmanagerExporterConfig(endpoint="http://am:9093").alerts_url
'http://am:9093/api/v2/alerts'
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from exporters.queue.config import RetryConfig, require_http_url


class AlertmanagerExporterConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """Keys:

    * ``endpoint``: Alertmanager's base URL. Required. (Several Alertmanagers of one cluster: run one
      exporter per instance, as Prometheus does.)
    * ``resend_interval`` (s): firing alerts are posted again this often; each post says
      ``endsAt = now + 4 * resend_interval`` so Alertmanager resolves them itself if the hub stops.
    * ``org_id``: ``X-Scope-OrgID`` for a multi-tenant Alertmanager (Mimir/Cortex); empty: none.
    * ``timeout`` (s), ``headers``, ``max_alerts_per_request``.
    * ``dead_letter_directory``: where ``dead_letter.jsonl`` goes (alerts refused with a 4xx).
    * ``retry_on_failure``: :mod:`exporters.queue.config` (``max_elapsed_time`` defaults to 300 s here:
      an alert older than that is superseded by the next resend anyway).
    """

    endpoint: str = ""
    resend_interval: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    org_id: str = ""
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    headers: dict[str, str] = {}
    max_alerts_per_request: Annotated[int, msgspec.Meta(gt=0)] = 500
    dead_letter_directory: str = "./data/queue/alertmanager"
    retry_on_failure: RetryConfig = msgspec.field(default_factory=lambda: RetryConfig(max_elapsed_time=300.0))

    def validate(self, key: str = "exporters.alertmanager") -> AlertmanagerExporterConfig:
        require_http_url(f"{key}.endpoint", self.endpoint)
        return self

    @property
    def alerts_url(self) -> str:
        return self.endpoint.rstrip("/") + "/api/v2/alerts"
