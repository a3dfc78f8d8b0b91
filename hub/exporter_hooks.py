"""How the hub links its parts to the stack exporters: what it feeds them and what it reads from them.

Audit records go to Loki as log rows (:func:`_audit_to_loki`), the analytics service's derived series to
VictoriaMetrics as gauge points (:func:`_derived_to_points`), and the hub's ``/metrics`` read each exporter's
queue depth, delivery counters and series totals (:func:`_depth_reader`, :func:`_stats_reader`,
:func:`_series_reader`).

    >>> _ts_us(1.5)
    1500000
    >>> class Exporter:
    ...     queue_depth = 3
    ...     def export(self, kind, cols):
    ...         print(kind, cols["name"], cols["value"], cols["source"])
    >>> _depth_reader(Exporter())()
    3.0
    >>> from types import SimpleNamespace
    >>> row = SimpleNamespace(tenant_id="acme", ts=1.7e9, name="anomaly_score", value=0.5, labels={})
    >>> _derived_to_points(Exporter())([row])
    metric_points ['anomaly_score'] [0.5] ['derived']
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from hubcore.security.audit import ALL_TENANTS, concerns

log = logging.getLogger("hub")


def _audit_to_loki(exporter: Any) -> Callable[[dict[str, Any]], None]:
    """An audit record as a log row (service ``llm-analytics-hub-audit``) for the Loki exporter.

    The row goes to the acting principal's tenant (``tenant_id``; Loki's ``X-Scope-OrgID``), and a second,
    identical row to the tenant acted upon (``target_tenant_id``) when that is another one and the record
    :func:`concerns <hubcore.security.audit.concerns>` it as ``GET /api/v1/audit`` shows it to that tenant
    (``foreign_denied=False``): what was done to its data (a platform admin's access), so it sees that in its
    own Loki too; another tenant's *refused* attempt names that tenant's user, key and address and stays in
    the actor's tenant (and the local log). Never twice to one Loki tenant: no second row for a same-tenant
    record, a target of ``"*"`` (every tenant) or an old record without a target, nor when the exporter sends
    every request under one ``org_id`` or without ``X-Scope-OrgID`` at all.
    """
    config = getattr(exporter, "config", None)
    one_loki_tenant = bool(getattr(config, "org_id", "")) or not getattr(config, "tenant_header", True)

    def ship(record: dict[str, Any]) -> None:
        actor = record.get("tenant_id") or "_hub"
        tenants = [actor]
        target = record.get("target_tenant_id")
        if (
            not one_loki_tenant and isinstance(target, str) and target and target not in (actor, ALL_TENANTS)
            and concerns(record, target, foreign_denied=False)
        ):  # fmt: skip
            tenants.append(target)
        ts = _ts_us(time.time())
        denied = record.get("outcome") == "denied"
        attributes = msgspec.json.encode({"action": record.get("action"), "outcome": record.get("outcome")}).decode()
        n = len(tenants)
        exporter.export(
            "logs",
            {
                "tenant_id": tenants,
                "ts": [ts] * n,
                "observed_ts": [ts] * n,
                "service_name": ["llm-analytics-hub-audit"] * n,
                "severity_number": [13 if denied else 9] * n,
                "severity_text": ["WARN" if denied else "INFO"] * n,
                "body": [msgspec.json.encode(record).decode()] * n,
                "event_name": ["hub.audit"] * n,
                "attributes": [attributes] * n,
            },
        )

    return ship


def _derived_to_points(exporter: Any) -> Callable[[Sequence[Any]], None]:
    """Derived rows (vmanomaly vocabulary) as gauge points for the VictoriaMetrics exporter."""

    def send(rows: Sequence[Any]) -> None:
        if not rows:
            return
        cols: dict[str, list[Any]] = {k: [] for k in ("tenant_id", "ts", "name", "kind", "temporality", "monotonic",
                                                      "value", "unit", "attributes", "source")}  # fmt: skip
        for r in rows:
            cols["tenant_id"].append(r.tenant_id)
            cols["ts"].append(_ts_us(r.ts))
            cols["name"].append(r.name)
            cols["kind"].append("gauge")
            cols["temporality"].append("")
            cols["monotonic"].append(False)
            cols["value"].append(float(r.value))
            cols["unit"].append("")
            cols["attributes"].append(msgspec.json.encode(r.labels).decode())
            cols["source"].append("derived")
        try:
            exporter.export("metric_points", cols)
        except Exception:  # a full export queue must not stop the analytics scheduler
            log.warning("derived series not exported (VictoriaMetrics queue full)", exc_info=True)

    return send


def _ts_us(ts: Any) -> int:
    """Epoch seconds (DerivedRow.ts) or a datetime → epoch microseconds."""
    if isinstance(ts, int | float):
        return int(ts * 1_000_000)
    return int(ts.timestamp() * 1_000_000)


def _depth_reader(exporter: Any) -> Callable[[], float]:
    return lambda: float(exporter.queue_depth)


def _stats_reader(exporter: Any) -> Callable[[], Any]:
    """The exporter's delivery counters (None until it has started, or for an exporter without any)."""
    return lambda: getattr(exporter, "delivery_stats", None)


def _series_reader(exporter: Any) -> Callable[[], Any]:
    return lambda: exporter.series_stats
