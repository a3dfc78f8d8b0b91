"""What :class:`processors.alerting.AlertingService` does to open alerts after an evaluation, and what it tells
Alertmanager: resolve, escalate, inhibit and release, send.

:class:`TransitionsMixin` holds these steps (see ``service.py``'s docstring for the lifecycle); the state
they use (``config``, ``repo``, ``metrics``, the ``alertmanager`` client) is created by
``AlertingService.__init__``. An evaluation round ends with them::

    self._inhibit(now)                      # mark (and release) the warnings an open critical inhibits
    if self._escalate(now):                 # a new severity: a new source or target of inhibition
        self._inhibit(now)
    self._send(self.repo.open_alerts(SOURCE))
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from exporters.alertmanager.client import Alert
from processors.alerting.config import AlertingConfig
from processors.alerting.repository import AlertRepository
from processors.alerting.rules import SEVERITIES

if TYPE_CHECKING:
    from processors.alerting.service import _Metrics

#: the logger of :mod:`processors.alerting.service`, where this code was first: its records keep their logger name
log = logging.getLogger("processors.alerting.service")
SOURCE = "rule"


class AlertmanagerLike(Protocol):
    """What the service needs from :class:`exporters.alertmanager.AlertmanagerExporter`."""

    def start(self) -> None: ...
    def shutdown(self, timeout: float = 30.0) -> None: ...
    def fire(self, alerts: Iterable[Alert]) -> None: ...
    def resolve(self, labels: Iterable[Mapping[str, str] | Alert]) -> None: ...
    def withdraw(self, labels: Iterable[Mapping[str, str] | Alert]) -> None: ...


def _identity(alert: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What inhibition compares: the tenant and every label but ``severity`` and ``escalated``."""
    labels = alert["labels"] or {}
    return alert["tenant_id"], tuple(sorted((k, v) for k, v in labels.items() if k not in ("severity", "escalated")))


def _severity(alert: Mapping[str, Any]) -> str | None:
    """The ``severity`` label (Alertmanager's matchers look at labels; the column defaults to warning)."""
    labels = alert["labels"] or {}
    severity = labels.get("severity")
    return severity if isinstance(severity, str) else None


class TransitionsMixin:
    """Resolution, escalation, inhibition and delivery to Alertmanager (see the module docstring)."""

    config: AlertingConfig
    repo: AlertRepository
    metrics: _Metrics
    alertmanager: AlertmanagerLike | None

    def _resolve(self, alert: dict[str, Any], now: float, by: str) -> None:
        self.repo.update(alert["id"], state="resolved", ends_at=now, updated_at=now, resolved_by=by)
        self.metrics.transitions.labels(to="resolved").inc()
        log.info("alert resolved", extra={"alertname": alert["alertname"], "tenant_id": alert["tenant_id"],
                                          "severity": alert["severity"], "resolved_by": by,
                                          "fingerprint": alert["fingerprint"], "labels": alert["labels"]})  # fmt: skip
        # an alert inhibited from its first evaluation on was never posted: nothing to resolve there either
        never_sent = alert["inhibited_by"] is not None and alert["released_at"] is None and (
            alert["inhibited_at"] == alert["starts_at"])  # fmt: skip
        if self.alertmanager is not None and alert["source"] == SOURCE and not never_sent:
            self.alertmanager.resolve([self._am_alert(alert, ends=now)])

    def _escalate(self, now: float) -> bool:
        """Escalate what is due; True if any. An inhibited alert is not (its critical is open); after its
        inhibition ends, ``escalate_after`` counts from then (not from its start: that would page again at
        once, just after the critical resolved)."""
        after = self.config.escalate_after_s
        if after <= 0:
            return False
        escalated = False
        for alert in self.repo.open_alerts(SOURCE):
            since = max(alert["starts_at"], alert["released_at"] or 0.0)
            if alert["state"] != "firing" or alert["escalated"] or alert["inhibited_by"] or now - since < after:
                continue
            level = SEVERITIES.index(alert["severity"]) if alert["severity"] in SEVERITIES else 1
            severity = SEVERITIES[min(level + 1, len(SEVERITIES) - 1)]
            labels = {**alert["labels"], "severity": severity, "escalated": "true"}
            self.repo.update(alert["id"], severity=severity, labels=labels, escalated=True, escalated_at=now,
                             updated_at=now)  # fmt: skip
            self.metrics.transitions.labels(to="escalated").inc()
            escalated = True
            # a new label set: the old one ends; the escalated one is fired by the round's _send (unless inhibited)
            if self.alertmanager is not None:
                self.alertmanager.resolve([self._am_alert(alert, ends=now)])
        return escalated

    def _inhibit(self, now: float) -> None:
        """Mark (and release) the open warnings inhibited by an open critical of the same labels.

        Alertmanager: withdraw newly inhibited rule alerts (no post; the one it has expires, and its own
        inhibit rule mutes it meanwhile); fire released ones again (original ``startsAt``)."""
        open_alerts = self.repo.open_alerts(None)
        sources: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
        if self.config.inhibit:
            for alert in open_alerts:  # oldest first: the oldest open critical is named
                if _severity(alert) == "critical":
                    sources.setdefault(_identity(alert), alert)
        withdrawn: list[dict[str, Any]] = []
        released: list[dict[str, Any]] = []
        count = 0
        for alert in open_alerts:
            source = sources.get(_identity(alert)) if _severity(alert) == "warning" else None
            if source is None:
                if alert["inhibited_by"] is not None:
                    self.repo.update(alert["id"], inhibited_by=None, inhibited_by_id=None, inhibited_at=None,
                                     released_at=now)  # fmt: skip
                    self.metrics.transitions.labels(to="released").inc()
                    released.append(alert)
                    log.info("alert released from inhibition", extra={
                        "alertname": alert["alertname"], "tenant_id": alert["tenant_id"], "id": alert["id"],
                        "fingerprint": alert["fingerprint"], "labels": alert["labels"]})  # fmt: skip
                continue
            count += 1
            if alert["inhibited_by_id"] == source["id"]:
                continue
            first = alert["inhibited_by"] is None
            self.repo.update(alert["id"], inhibited_by=source["fingerprint"], inhibited_by_id=source["id"],
                             inhibited_at=now if first else alert["inhibited_at"])  # fmt: skip
            if first:
                self.metrics.transitions.labels(to="inhibited").inc()
                withdrawn.append(alert)
                log.info("alert inhibited", extra={
                    "alertname": alert["alertname"], "tenant_id": alert["tenant_id"], "id": alert["id"],
                    "fingerprint": alert["fingerprint"], "labels": alert["labels"],
                    "inhibited_by": source["fingerprint"], "inhibited_by_id": source["id"]})  # fmt: skip
        self.metrics.inhibited.set(count)
        if self.alertmanager is not None:
            if gone := [self._am_alert(a) for a in withdrawn if a["source"] == SOURCE]:
                self.alertmanager.withdraw(gone)
            if back := [self._am_alert(a) for a in released if a["source"] == SOURCE]:
                self.alertmanager.fire(back)

    def _am_alert(self, alert: dict[str, Any], ends: float | None = None) -> Alert:
        from datetime import UTC, datetime

        return Alert(
            labels=dict(alert["labels"]),
            annotations={**alert["annotations"], "hub_alert_id": alert["id"]},
            startsAt=datetime.fromtimestamp(alert["starts_at"], UTC),
            endsAt=datetime.fromtimestamp(ends, UTC) if ends is not None else None,
            generatorURL=alert["generator_url"] or "",
        )

    def _send(self, open_alerts: list[dict[str, Any]]) -> None:
        """Every open alert not inhibited is (re)asserted; the client posts new ones at once and re-posts
        periodically."""
        active = [a for a in open_alerts if a["inhibited_by"] is None]
        if self.alertmanager is not None and active:
            self.alertmanager.fire([self._am_alert(a) for a in active])
