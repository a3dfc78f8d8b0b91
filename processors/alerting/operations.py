"""The API's operations on :class:`processors.alerting.AlertingService`'s alerts: list, count, read,
acknowledge, resolve, and the Alertmanager webhook.

:class:`AlertOperationsMixin` holds them; each takes the service's lock and creates the tables first::

    svc.list_alerts("acme", state="firing")
    svc.acknowledge("acme", alert_id, by="alice", comment="looking")
    svc.resolve("acme", alert_id, by="alice")
    svc.receive_webhook(body)               # an Alertmanager webhook body (version 4) → hub alerts
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from processors.alerting.errors import AlertConflict, AlertNotFound
from processors.alerting.repository import STATES, AlertRepository, to_api
from processors.alerting.webhook import decode_payload, ingest

if TYPE_CHECKING:
    from processors.alerting.service import _Metrics


class AlertOperationsMixin:
    """The API's operations on alerts (see the module docstring)."""

    repo: AlertRepository
    metrics: _Metrics
    clock: Callable[[], float]
    default_tenant: str
    webhook_totals: dict[str, int]
    _lock: threading.RLock

    if TYPE_CHECKING:

        def _ensure_ready(self) -> None: ...
        def _resolve(self, alert: dict[str, Any], now: float, by: str) -> None: ...
        def _inhibit(self, now: float) -> None: ...

    def list_alerts(
        self, tenant_id: str, *, state: str | None = None, severity: str | None = None, limit: int = 1000,
        inhibited: bool | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Newest first. ``inhibited``: False only the alerts not inhibited, True only the inhibited ones,
        None (the default here; the API's default is False) all."""
        if state is not None and state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, got {state!r}")
        with self._lock:
            self._ensure_ready()
            rows = self.repo.list_alerts(tenant_id, state=state, severity=severity, limit=limit, inhibited=inhibited)
            return [to_api(a) for a in rows]

    def count_inhibited(self, tenant_id: str, *, state: str | None = None, severity: str | None = None) -> int:
        """How many alerts matching ``state``/``severity`` are inhibited (what ``inhibited=False`` leaves out)."""
        if state is not None and state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, got {state!r}")
        with self._lock:
            self._ensure_ready()
            return self.repo.count_inhibited(tenant_id, state=state, severity=severity)

    def get_alert(self, tenant_id: str, alert_id: str) -> dict[str, Any]:
        with self._lock:
            self._ensure_ready()
            alert = self.repo.get(tenant_id, alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert {alert_id!r} for tenant {tenant_id!r}")
        return to_api(alert)

    def acknowledge(
        self, tenant_id: str, alert_id: str, by: str | None = None, comment: str | None = None
    ) -> dict[str, Any]:
        """firing → acknowledged (idempotent); a resolved alert: :class:`AlertConflict`."""
        with self._lock:
            self._ensure_ready()
            alert = self.repo.get(tenant_id, alert_id)
            if alert is None:
                raise AlertNotFound(f"no alert {alert_id!r} for tenant {tenant_id!r}")
            if alert["state"] == "resolved":
                raise AlertConflict(f"alert {alert_id} is already resolved")
            if alert["state"] == "firing":
                now = self.clock()
                self.repo.update(alert_id, state="acknowledged", acknowledged_at=now, acknowledged_by=by,
                                 ack_comment=comment, updated_at=now)  # fmt: skip
                self.metrics.transitions.labels(to="acknowledged").inc()
            return to_api(self.repo.get(tenant_id, alert_id) or alert)

    def resolve(self, tenant_id: str, alert_id: str, by: str | None = None) -> dict[str, Any]:
        """firing/acknowledged → resolved now (idempotent for a resolved alert)."""
        with self._lock:
            self._ensure_ready()
            alert = self.repo.get(tenant_id, alert_id)
            if alert is None:
                raise AlertNotFound(f"no alert {alert_id!r} for tenant {tenant_id!r}")
            if alert["state"] != "resolved":
                now = self.clock()
                self._resolve(alert, now, by or "api")
                self._inhibit(now)  # a resolved critical releases its warnings at once
            return to_api(self.repo.get(tenant_id, alert_id) or alert)

    def receive_webhook(
        self, body: bytes, allowed: Callable[[str], bool] | None = None,
        allowed_team: Callable[[str, str], bool] | None = None,
    ) -> dict[str, int]:  # fmt: skip
        """An Alertmanager webhook body (version 4) → hub alerts. Raises RuleError (→ 422) when malformed.
        ``allowed(tenant)`` / ``allowed_team(tenant, team)``: which alerts the caller may record (the others
        are counted ``skipped_forbidden``)."""
        payload = decode_payload(body)
        with self._lock:
            self._ensure_ready()
            now = self.clock()
            counts = ingest(self.repo, payload, default_tenant=self.default_tenant,
                            allowed=allowed or (lambda _t: True), now=now, allowed_team=allowed_team)  # fmt: skip
            self._inhibit(now)  # Alertmanager's alerts inhibit (and are inhibited) in the hub's list too
        for outcome, n in counts.items():
            self.webhook_totals[outcome] = self.webhook_totals.get(outcome, 0) + n
            if n and outcome != "received":
                self.metrics.webhook.labels(outcome=outcome).inc(n)
        return counts
