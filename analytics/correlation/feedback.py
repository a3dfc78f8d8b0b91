"""Feedback to the platform: the policy compliance report (and its push), threat intelligence, and the
service dependency graph — all read from the store with parameterised, tenant-scoped SQL.

    report = compliance_report(store, "tenant-a", start_us, end_us)
    push_compliance_report(PushConfig(url="https://policy.example/api/compliance"), report)
    push_recent_compliance(store, "tenant-a", PushConfig(url=..., interval_s=3600))  # on a timer
    intel = threat_intel(store, "tenant-a", start_us, end_us)
    graph = dependency_graph(store, "tenant-a", start_us, end_us)
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from analytics.correlation.persist import StoreLike
from analytics.correlation.timeutil import iso
from hubcore.times import iso_s

_COMPLIANCE_SQL = """
SELECT name, epoch_us(time_bucket(INTERVAL 1 HOUR, ts)) AS hour, count(*) AS evaluations,
       count(*) FILTER (WHERE status = 'pass'), count(*) FILTER (WHERE status = 'fail'),
       count(*) FILTER (WHERE status = 'warn')
FROM events
WHERE tenant_id = ? AND event_type = 'policy' AND ts >= make_timestamp(?) AND ts < make_timestamp(?)
GROUP BY 1, 2 ORDER BY 2, 1
"""


def compliance_report(store: StoreLike, tenant: str, start_us: int, end_us: int) -> dict[str, Any]:
    """Hourly compliance per policy: evaluations, pass/fail/warn, compliance rate (pass / evaluations). ``hour``,
    ``start`` and ``end`` are ISO-8601 UTC as the API gives times (:func:`hubcore.times.iso_s`: an hour is
    ``2026-11-27T09:00:00Z``; it had six zero decimals before, a response-format change)."""
    rows = store.read(_COMPLIANCE_SQL, [tenant, start_us, end_us]).fetchall()
    hourly = []
    totals: dict[str, list[int]] = {}
    for policy, hour, n, ok, fail, warn in rows:
        hourly.append({"policy_id": policy, "hour": iso_s(int(hour) / 1e6), "evaluations": n, "pass": ok, "fail": fail,
                       "warn": warn, "compliance_rate": round(ok / n, 6) if n else None})  # fmt: skip
        t = totals.setdefault(policy, [0, 0, 0, 0])
        for i, v in enumerate((n, ok, fail, warn)):
            t[i] += v
    policies = [{"policy_id": p, "evaluations": t[0], "pass": t[1], "fail": t[2], "warn": t[3],
                 "compliance_rate": round(t[1] / t[0], 6) if t[0] else None} for p, t in sorted(totals.items())]  # fmt: skip
    start, end = iso_s(start_us / 1e6), iso_s(end_us / 1e6)
    return {"tenant_id": tenant, "start": start, "end": end, "hourly": hourly, "policies": policies}


@dataclass(frozen=True)
class PushConfig:
    """Where and how to push the compliance report (``url`` empty disables the push)."""

    url: str = ""
    interval_s: float = 3600.0
    timeout_s: float = 10.0
    max_attempts: int = 4
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if self.interval_s <= 0 or self.timeout_s <= 0:
            raise ValueError("interval_s and timeout_s must be positive")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")


def push_compliance_report(config: PushConfig, report: dict[str, Any], client: httpx.Client | None = None,
                           sleep: Any = time.sleep) -> int:  # fmt: skip
    """POST the report as JSON; retries 429/5xx/transport errors with jittered exponential backoff
    (honouring ``Retry-After``). Returns the final HTTP status (0 if it was never answered)."""
    if not config.url:
        return 0
    own = client is None
    http = client or httpx.Client(timeout=config.timeout_s)
    status = 0
    try:
        for attempt in range(config.max_attempts):
            delay = min(30.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2)
            try:
                resp = http.post(config.url, json=report, headers=config.headers)
                status = resp.status_code
                if status < 500 and status != 429:
                    return status
                hint = resp.headers.get("retry-after", "")
                if hint.replace(".", "", 1).isdigit():
                    delay = min(60.0, float(hint))
            except httpx.TransportError:
                status = 0
            if attempt + 1 < config.max_attempts:
                sleep(delay)
        return status
    finally:
        if own:
            http.close()


def push_recent_compliance(store: StoreLike, tenant: str, config: PushConfig, now_us: int | None = None,
                           client: httpx.Client | None = None) -> int:  # fmt: skip
    """Build the report for the last ``config.interval_s`` and push it (call every ``interval_s``)."""
    end = now_us if now_us is not None else int(time.time() * 1e6)
    report = compliance_report(store, tenant, end - int(config.interval_s * 1e6), end)
    return push_compliance_report(config, report, client)


_INTEL_SQL = """
WITH ind AS (
  SELECT 'source_ip' AS kind, json_extract_string(payload, '$.source_ip') AS value, ts, source_module, name
  FROM events WHERE tenant_id = ? AND event_type = 'security' AND ts >= make_timestamp(?) AND ts < make_timestamp(?)
  UNION ALL
  SELECT 'api_key_id', json_extract_string(payload, '$.api_key_id'), ts, source_module, name
  FROM events WHERE tenant_id = ? AND event_type = 'security' AND ts >= make_timestamp(?) AND ts < make_timestamp(?)
  UNION ALL
  SELECT 'user_id', user_id, ts, source_module, name
  FROM events WHERE tenant_id = ? AND event_type = 'security' AND ts >= make_timestamp(?) AND ts < make_timestamp(?)
  UNION ALL
  SELECT 'model', model, ts, source_module, name
  FROM events WHERE tenant_id = ? AND event_type = 'security' AND ts >= make_timestamp(?) AND ts < make_timestamp(?)
)
SELECT kind, value, count(*) AS findings, epoch_us(min(ts)), epoch_us(max(ts)), list(DISTINCT name ORDER BY name)
FROM ind WHERE value IS NOT NULL GROUP BY 1, 2 HAVING count(*) >= ? ORDER BY findings DESC, kind, value LIMIT ?
"""
_SEEN_SQL = """
SELECT {col}, list(DISTINCT source_module ORDER BY source_module), count(*) FROM events
WHERE tenant_id = ? AND ts >= make_timestamp(?) AND ts < make_timestamp(?) AND list_contains(?, {col})
GROUP BY 1
"""


def threat_intel(store: StoreLike, tenant: str, start_us: int, end_us: int, *, min_count: int = 1,
                 limit: int = 200) -> dict[str, Any]:  # fmt: skip
    """Indicators (IP, API key, user, model) from security findings, with where else they were seen."""
    span = [tenant, start_us, end_us]
    rows = store.read(_INTEL_SQL, span * 4 + [min_count, limit]).fetchall()
    seen: dict[tuple[str, str], tuple[list[str], int]] = {}
    for kind in ("user_id", "model"):
        values = [r[1] for r in rows if r[0] == kind]
        if values:
            for v, mods, n in store.read(_SEEN_SQL.format(col=kind), [*span, values]).fetchall():
                seen[(kind, v)] = (list(mods), int(n))
    out = []
    for kind, value, n, first, last, threats in rows:
        mods, events = seen.get((kind, value), (["llm-sentinel"], int(n)))
        out.append({"indicator": kind, "value": value, "findings": int(n), "events": events,
                    "first_seen": iso(int(first)), "last_seen": iso(int(last)), "modules": mods,
                    "threat_types": list(threats)})  # fmt: skip
    return {"tenant_id": tenant, "start": iso(start_us), "end": iso(end_us), "indicators": out}


_TRACE_DEPS_SQL = """
SELECT p.service_name, c.service_name, count(*) FROM spans c
JOIN spans p ON c.tenant_id = p.tenant_id AND c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
WHERE c.tenant_id = ? AND c.start_ts >= make_timestamp(?) AND c.start_ts < make_timestamp(?)
  AND c.service_name IS NOT NULL AND p.service_name IS NOT NULL AND c.service_name <> p.service_name
  AND coalesce(c.source, '') <> 'correlation'
GROUP BY 1, 2
"""
_ORDER_DEPS_SQL = """
WITH f AS (
  SELECT correlation_id, coalesce(json_extract_string(tags, '$.service'), source_module) AS comp, min(ts) AS t
  FROM events WHERE tenant_id = ? AND correlation_id IS NOT NULL AND ts >= make_timestamp(?) AND ts < make_timestamp(?)
  GROUP BY 1, 2
), o AS (
  SELECT comp, t, lead(comp) OVER w AS nxt, lead(t) OVER w AS nt FROM f
  WINDOW w AS (PARTITION BY correlation_id ORDER BY t, comp)
)
SELECT comp, nxt, count(*) FROM o WHERE nxt IS NOT NULL AND nt > t GROUP BY 1, 2
"""


def dependency_graph(store: StoreLike, tenant: str, start_us: int, end_us: int) -> dict[str, Any]:
    """Service graph: ``calls`` edges (parent → child span services) and ``precedes`` edges (component
    order within a correlation id: failures propagate along them)."""
    span = [tenant, start_us, end_us]
    edges = [{"source": a, "target": b, "kind": "calls", "evidence": "traces", "weight": int(n)}
             for a, b, n in store.read(_TRACE_DEPS_SQL, span).fetchall()]  # fmt: skip
    edges += [{"source": a, "target": b, "kind": "precedes", "evidence": "correlation_ids", "weight": int(n)}
              for a, b, n in store.read(_ORDER_DEPS_SQL, span).fetchall()]  # fmt: skip
    edges.sort(key=lambda e: (-e["weight"], e["source"], e["target"]))
    nodes = sorted({e["source"] for e in edges} | {e["target"] for e in edges})
    return {"tenant_id": tenant, "start": iso(start_us), "end": iso(end_us),
            "nodes": [{"id": n} for n in nodes], "edges": edges}  # fmt: skip
