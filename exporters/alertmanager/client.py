"""Post the hub's own analytic alerts to Alertmanager (``POST /api/v2/alerts``), as Prometheus does.

    am = AlertmanagerExporter(AlertmanagerExporterConfig(endpoint="http://127.0.0.1:9093"))
    am.start()
    am.fire([Alert(labels={"alertname": "LLMAnomalyDetected", "tenant_id": "acme", "severity": "warning"},
                   annotations={"summary": "cost anomaly"})])
    ...
    am.resolve([{"alertname": "LLMAnomalyDetected", "tenant_id": "acme", "severity": "warning"}])
    am.shutdown(5.0)

Firing alerts are re-posted every ``resend_interval`` with ``endsAt = now + 4 * resend_interval``
(Alertmanager treats an alert whose ``endsAt`` passed as resolved, so a hub that dies stops paging);
``resolve`` posts ``endsAt = now`` once; ``withdraw`` stops re-posting without a post (Alertmanager lets
the alert expire at the ``endsAt`` it has). Alerts are identified by their label set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec

from exporters.alertmanager.config import AlertmanagerExporterConfig
from exporters.queue.base import stop_worker
from exporters.queue.deadletter import DeadLetterFile
from exporters.queue.sender import Aborted, DeliveryStats, HttpDelivery
from hubcore.errors import PermanentError

log = logging.getLogger(__name__)

LabelSet = tuple[tuple[str, str], ...]


class Alert(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Alertmanager's ``postableAlert``: field names as in its OpenAPI spec."""

    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str = ""

    @property
    def key(self) -> LabelSet:
        return tuple(sorted(self.labels.items()))


def _now() -> datetime:
    return datetime.now(UTC)


class AlertmanagerExporter:
    """Thread-safe. ``fire``/``resolve`` return at once; a worker posts (with retries) and re-posts."""

    def __init__(self, config: AlertmanagerExporterConfig) -> None:
        self.config = config.validate()
        self._firing: dict[LabelSet, Alert] = {}
        self._outbox: list[Alert] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drain = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None
        self._delivery: HttpDelivery | None = None
        self._started = False
        self._closed = False
        self.dead_letter = DeadLetterFile(Path(config.dead_letter_directory) / "dead_letter.jsonl", "alertmanager")
        self.posted = 0

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            if self._closed:
                raise RuntimeError("alertmanager exporter was shut down; create a new one")
            self._client = httpx.Client(timeout=self.config.timeout)
            self._delivery = HttpDelivery(
                self._client, self.config.retry_on_failure, self.dead_letter, self._stop, exporter="alertmanager"
            )
            self._thread = threading.Thread(target=self._run, name="hub-export-alertmanager", daemon=True)
            self._started = True
            self._thread.start()

    @property
    def delivery_stats(self) -> DeliveryStats | None:
        """Delivery counters (``hub_export_*_total``); None until the exporter has started."""
        return self._delivery.stats if self._delivery is not None else None

    def shutdown(self, timeout: float = 30.0) -> None:
        """Post what is waiting (bounded by ``timeout``) and stop. Idempotent; safe without start.

        Firing alerts are not resolved on shutdown: their ``endsAt`` lets Alertmanager expire them, and
        a restarted hub re-fires what still holds.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        stop_worker(self._thread, self._drain, self._stop, timeout, wake=self._wake)
        if self._client is not None:
            self._client.close()

    # -- API --------------------------------------------------------------------------------------
    def fire(self, alerts: Iterable[Alert]) -> None:
        """Start (or keep) these alerts firing; new ones are posted at once."""
        now = _now()
        with self._lock:
            for a in alerts:
                known = self._firing.get(a.key)
                starts = a.startsAt or (known.startsAt if known else None) or now
                alert = msgspec.structs.replace(a, startsAt=starts, endsAt=None)
                self._firing[a.key] = alert
                if known is None or known.annotations != a.annotations:
                    self._outbox.append(alert)
        self._wake.set()

    def resolve(self, labels: Iterable[Mapping[str, str] | Alert]) -> None:
        """Resolve alerts by label set: one post with ``endsAt = now``."""
        now = _now()
        with self._lock:
            for item in labels:
                key = item.key if isinstance(item, Alert) else tuple(sorted(item.items()))
                known = self._firing.pop(key, None)
                base = known or (item if isinstance(item, Alert) else Alert(labels=dict(key)))
                self._outbox.append(msgspec.structs.replace(base, endsAt=now, startsAt=base.startsAt or now))
        self._wake.set()

    def withdraw(self, labels: Iterable[Mapping[str, str] | Alert]) -> None:
        """Stop (re-)posting these alerts, posting nothing: not a resolve. Alertmanager keeps an alert it has
        until the ``endsAt`` of its last post (``now + 4 * resend_interval``); one not yet posted never goes.
        The hub withdraws an alert while it is inhibited (and :meth:`fire` s it again afterwards)."""
        with self._lock:
            keys = {item.key if isinstance(item, Alert) else tuple(sorted(item.items())) for item in labels}
            for key in keys:
                self._firing.pop(key, None)
            self._outbox = [a for a in self._outbox if a.key not in keys or a.endsAt is not None]

    def export(self, kind: str, columns: dict[str, list[Any]]) -> None:
        """The exporter contract for ``kind == "alerts"``: columns ``labels`` (dicts), ``annotations``,
        ``starts_at`` / ``ends_at`` (µs or None; an ``ends_at`` in the past resolves), ``generator_url``."""
        if kind != "alerts":
            raise PermanentError(f"the alertmanager exporter takes 'alerts', not {kind!r}")
        n = len(columns.get("labels") or [])
        none: list[Any] = [None] * n
        now_us = _now().timestamp() * 1e6
        fire: list[Alert] = []
        resolve: list[Alert] = []
        for labels, ann, starts, ends, url in zip(
            columns["labels"], columns.get("annotations") or none, columns.get("starts_at") or none,
            columns.get("ends_at") or none, columns.get("generator_url") or none, strict=True,
        ):  # fmt: skip
            alert = Alert(
                labels=dict(labels),
                annotations=dict(ann or {}),
                generatorURL=url or "",
                startsAt=datetime.fromtimestamp(starts / 1e6, UTC) if starts else None,
            )
            (resolve if ends is not None and ends <= now_us else fire).append(alert)
        if fire:
            self.fire(fire)
        if resolve:
            self.resolve(resolve)

    @property
    def firing(self) -> list[Alert]:
        with self._lock:
            return list(self._firing.values())

    # -- worker -----------------------------------------------------------------------------------
    def _run(self) -> None:
        next_resend = 0.0
        while not self._stop.is_set():
            now = _now()
            with self._lock:
                batch, self._outbox = self._outbox, []
                if now.timestamp() >= next_resend:
                    batch += [a for a in self._firing.values() if all(a.key != b.key for b in batch)]
                    next_resend = now.timestamp() + self.config.resend_interval
            if batch:
                try:
                    self._post(batch, now)
                except Aborted:
                    return
            if self._drain.is_set():
                with self._lock:
                    if not self._outbox:
                        return
                continue
            self._wake.wait(max(0.0, min(self.config.resend_interval, next_resend - _now().timestamp())))
            self._wake.clear()

    def _post(self, alerts: Sequence[Alert], now: datetime) -> None:
        valid_until = now + timedelta(seconds=4 * self.config.resend_interval)
        wire = [a if a.endsAt is not None else msgspec.structs.replace(a, endsAt=valid_until) for a in alerts]
        headers = {"Content-Type": "application/json", **self.config.headers}
        if self.config.org_id:
            headers["X-Scope-OrgID"] = self.config.org_id
        assert self._delivery is not None
        step = self.config.max_alerts_per_request
        for i in range(0, len(wire), step):
            part = wire[i : i + step]
            self._delivery.deliver(part, msgspec.json.encode, url=self.config.alerts_url, headers=headers)
            self.posted += len(part)
