"""A running hub loaded (through ``POST /api/v1/events``) with a small known data set for two tenants.

Tenant ``acme`` (times are minutes before a fixed "base" a little in the past):

| kind | model | team (tags) | value | status | tokens in/out |
|---|---|---|---|---|---|
| duration | gpt-4o | search | 100, 200, 300 ms | ok | 10/5 each |
| duration | gpt-4o | search | 400 ms | error | 10/5 |
| duration | claude | ads | 1000, 2000 ms | ok, error | 100/50 each |
| cost | gpt-4o | search | 0.01, 0.02 USD | | |
| cost | claude | ads | 0.5 USD | | |
| security | | search | prompt_injection x2 | | |

Tenant ``globex`` has the same shape with other values (gpt-4o 9999 ms, team "secret-team", cost 77 USD),
so any leak shows up in the numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.helpers.events import make_event

DUR = "gen_ai.client.operation.duration"
BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)


def at(minutes_ago: float) -> str:
    return (BASE - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def _duration(model: str, team: str, ms: float, status: str, tin: int, tout: int, ago: float) -> dict[str, Any]:
    return make_event(
        "telemetry",
        timestamp=at(ago),
        tags={"team": team, "project": "assistant"},
        payload={
            "metric_name": DUR, "value": ms, "unit": "ms", "model": model, "status": status,
            "input_tokens": tin, "output_tokens": tout, "dimensions": {"model": model, "endpoint": "/v1/chat"},
        },
    )  # fmt: skip


def _cost(model: str, team: str, usd: float, ago: float) -> dict[str, Any]:
    return make_event(
        "cost", timestamp=at(ago), tags={"team": team}, payload={"cost_type": "token", "amount": usd, "model": model}
    )


def acme_events() -> list[dict[str, Any]]:
    return [
        _duration("gpt-4o", "search", 100, "ok", 10, 5, 10),
        _duration("gpt-4o", "search", 200, "ok", 10, 5, 20),
        _duration("gpt-4o", "search", 300, "ok", 10, 5, 70),
        _duration("gpt-4o", "search", 400, "error", 10, 5, 80),
        _duration("claude", "ads", 1000, "ok", 100, 50, 15),
        _duration("claude", "ads", 2000, "error", 100, 50, 75),
        _cost("gpt-4o", "search", 0.01, 12),
        _cost("gpt-4o", "search", 0.02, 72),
        _cost("claude", "ads", 0.5, 16),
        make_event("security", timestamp=at(30), tags={"team": "search"}),
        make_event("security", timestamp=at(31), tags={"team": "search"}),
    ]


def globex_events() -> list[dict[str, Any]]:
    return [
        _duration("gpt-4o", "secret-team", 9999, "error", 1000, 1000, 10),
        _duration("gpt-4o", "secret-team", 9999, "ok", 1000, 1000, 20),
        _cost("gpt-4o", "secret-team", 77.0, 12),
        make_event("security", timestamp=at(30), tags={"team": "secret-team", "globex_only": "x"}),
    ]


def query(client: httpx.Client, body: dict[str, Any], tenant: str = "acme", **kw: Any) -> httpx.Response:
    return client.post("/api/v1/query", json=body, headers={"X-Scope-OrgID": tenant}, **kw)


def rows(client: httpx.Client, body: dict[str, Any], tenant: str = "acme") -> list[dict[str, Any]]:
    r = query(client, {"time_range": {"last": "3h"}, **body}, tenant)
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data
