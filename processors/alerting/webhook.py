"""Alertmanager webhook payloads (``version: "4"``) → hub alerts, so vmalert/Prometheus alerts show in the hub.

Alertmanager's webhook receiver posts ``{"version": "4", "status", "receiver", "groupKey", "alerts": [...]}``
where each alert has ``status`` (firing | resolved), ``labels``, ``annotations``, ``startsAt``, ``endsAt``,
``generatorURL`` and ``fingerprint``. Alerts are keyed by (tenant, fingerprint); the tenant is the alert's
``tenant_id`` label. The hub's own alerts coming back (annotation ``hub_alert_id``) are skipped, and so are
alerts the caller may not record (``skipped_forbidden``): another tenant's (``allowed``), or another team's
(``allowed_team``: the alert's ``team`` label, and the open alert's it would update or resolve).

>>> parse_time("2024-05-01T10:00:00.123456789Z")
1714557600.123456
>>> parse_time("0001-01-01T00:00:00Z") is None
True
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from processors.alerting.repository import AlertRepository
from processors.alerting.rules import RuleError

SOURCE = "alertmanager"
_FRACTION = re.compile(r"(\.\d{6})\d+")


class WebhookAlert(msgspec.Struct, kw_only=True):
    status: str
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: str = ""
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""


class WebhookPayload(msgspec.Struct, kw_only=True):
    version: str
    alerts: list[WebhookAlert]
    status: str = ""
    receiver: str = ""
    groupKey: str = ""


def decode_payload(body: bytes) -> WebhookPayload:
    """Decode and check a webhook body; raises :class:`RuleError` (→ 422) naming the bad key."""
    try:
        payload = msgspec.json.decode(body, type=WebhookPayload)
    except msgspec.ValidationError as exc:
        m = re.search(r" - at `\$\.?(.*)`$", str(exc))
        key = re.sub(r"\[(\d+)\]", r".\1", m.group(1)).lstrip(".") if m else ""
        raise RuleError(key, str(exc)[: m.start()] if m else str(exc)) from None
    except msgspec.DecodeError as exc:
        raise RuleError("", f"body is not JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise RuleError("", f"body is not valid UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise RuleError("", "body is nested too deeply") from None
    if payload.version != "4":
        raise RuleError("version", f"only Alertmanager webhook version 4 is understood, got {payload.version!r}")
    for i, a in enumerate(payload.alerts):
        if a.status not in ("firing", "resolved"):
            raise RuleError(f"alerts.{i}.status", f"must be firing or resolved, got {a.status!r}")
        for key in ("startsAt", "endsAt"):
            try:
                parse_time(getattr(a, key))
            except ValueError:
                raise RuleError(f"alerts.{i}.{key}", f"is not an RFC 3339 time: {getattr(a, key)!r}") from None
    return payload


def parse_time(text: str) -> float | None:
    """Seconds since the epoch; None for empty or Go's zero time (``0001-01-01...``)."""
    if not text or text.startswith("0001-01-01"):
        return None
    dt = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _team(labels: Any) -> str | None:
    team = labels.get("team") if isinstance(labels, dict) else None
    return team if isinstance(team, str) and team else None


def ingest(
    repo: AlertRepository,
    payload: WebhookPayload,
    *,
    default_tenant: str,
    allowed: Callable[[str], bool],
    now: float,
    allowed_team: Callable[[str, str], bool] | None = None,
) -> dict[str, int]:
    """Upsert the payload's alerts; returns counts (created, updated, resolved, skipped...).

    ``allowed(tenant)`` and ``allowed_team(tenant, team)`` (RBAC rule 4 of ``alerts:manage``, asked for
    the alert's ``team`` label and for the team of the open alert it would update or resolve) leave out,
    as ``skipped_forbidden``, what the caller may not record."""
    counts = {"received": len(payload.alerts), "created": 0, "updated": 0, "resolved": 0, "skipped_own": 0,
              "skipped_forbidden": 0, "unchanged": 0}  # fmt: skip
    for a in payload.alerts:
        if "hub_alert_id" in a.annotations:
            counts["skipped_own"] += 1
            continue
        tenant = a.labels.get("tenant_id") or default_tenant
        if not allowed(tenant):
            counts["skipped_forbidden"] += 1
            continue
        fp = a.fingerprint or hashlib.sha256(json.dumps(a.labels, sort_keys=True).encode()).hexdigest()[:16]
        starts = parse_time(a.startsAt) or now
        ends = parse_time(a.endsAt)
        open_ = repo.find_open(tenant, SOURCE, fp)
        if allowed_team is not None:
            teams = (_team(a.labels), _team(open_["labels"]) if open_ is not None else None)
            if not all(allowed_team(tenant, t) for t in teams if t is not None):
                counts["skipped_forbidden"] += 1
                continue
        if a.status == "firing":
            if open_ is not None:
                repo.update(open_["id"], labels=a.labels, annotations=a.annotations, updated_at=now)
                counts["updated"] += 1
                continue
            last = repo.last_resolved(tenant, SOURCE, fp)
            if last is not None and abs((last["starts_at"] or 0) - starts) < 1e-3:
                counts["unchanged"] += 1  # the same incident, already resolved in the hub
                continue
            repo.insert(_row(a, tenant, fp, "firing", starts, None, now))
            counts["created"] += 1
        else:
            if open_ is not None:
                repo.update(open_["id"], state="resolved", ends_at=ends or now, updated_at=now,
                            resolved_by="alertmanager", annotations=a.annotations)  # fmt: skip
                counts["resolved"] += 1
                continue
            last = repo.last_resolved(tenant, SOURCE, fp)
            if last is not None and abs((last["starts_at"] or 0) - starts) < 1e-3:
                counts["unchanged"] += 1
                continue
            repo.insert(_row(a, tenant, fp, "resolved", starts, ends or now, now))
            counts["resolved"] += 1
    return counts


def _row(
    a: WebhookAlert, tenant: str, fp: str, state: str, starts: float, ends: float | None, now: float
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex, "tenant_id": tenant, "source": SOURCE, "rule_id": None,
        "alertname": a.labels.get("alertname", ""), "fingerprint": fp, "state": state,
        "severity": a.labels.get("severity", "warning"), "labels": a.labels, "annotations": a.annotations,
        "value": None, "starts_at": starts, "ends_at": ends, "updated_at": now, "escalated": False,
        "suppressed": 0, "generator_url": a.generatorURL, "resolved_by": "alertmanager" if ends else None,
    }  # fmt: skip
