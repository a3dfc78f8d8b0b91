"""The live summary numbers pushed by ``/console/stream``: the same unified queries the pages run.

>>> bodies = summary_queries("24h", [{"field": "model", "operator": "eq", "value": "gpt-4o"}])
>>> sorted(bodies)
['compliance', 'cost', 'cost_per_request', 'requests', 'threats']
>>> bodies["requests"]["aggregation"]["functions"]
['count', 'p95']
"""

from __future__ import annotations

import time
from typing import Any

from hubcore.query.executor import QueryExecutor
from hubcore.query.model import parse_query

DURATION = {"event_type": "telemetry", "name": "gen_ai.client.operation.duration"}
Body = dict[str, Any]


def summary_queries(last: str, filters: list[Body]) -> dict[str, Body]:
    """One unified-query body per summary figure (docs/query.md)."""

    def body(extra: list[Body] | None = None, **kw: Any) -> Body:
        return {"time_range": {"last": last}, "filters": [*filters, *(extra or [])], **kw}

    def of_type(t: str) -> list[Body]:
        return [{"field": "event_type", "operator": "eq", "value": t}]

    return {
        "requests": body(metric=DURATION, aggregation={"functions": ["count", "p95"]}),
        "cost": body(metric={"event_type": "cost"}, aggregation={"functions": ["sum"]}),
        "cost_per_request": body(metric="cost_per_request"),
        "threats": body(of_type("security"), aggregation={"functions": ["count"]}),
        "compliance": body(of_type("governance"), aggregation={"functions": ["count"], "group_by": ["payload.compliant"]}),
    }  # fmt: skip


def compute_summary(executor: QueryExecutor, tenant: str, last: str, filters: list[Body]) -> Body:
    """Run :func:`summary_queries` for ``tenant`` → ``{requests, p95_ms, cost_usd, ...}`` (None when empty)."""
    now_us = time.time_ns() // 1000
    rows: dict[str, list[Body]] = {}
    for name, body in summary_queries(last, filters).items():
        answer = executor.execute(parse_query(body, tenant=tenant, now_us=now_us))
        rows[name] = list(answer["data"])
    req = rows["requests"][0] if rows["requests"] else {}
    comp = {str(r.get("payload.compliant")): int(r.get("count") or 0) for r in rows["compliance"]}
    total = sum(comp.values())
    return {
        "last": last,
        "requests": int(req.get("count") or 0),
        "p95_ms": req.get("p95"),
        "cost_usd": (rows["cost"][0].get("sum") if rows["cost"] else None) or 0.0,
        "cost_per_request": rows["cost_per_request"][0].get("cost_per_request") if rows["cost_per_request"] else None,
        "threats": int(rows["threats"][0].get("count") or 0) if rows["threats"] else 0,
        "compliance_rate": comp.get("true", 0) / total if total else None,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_us / 1e6)),
    }
