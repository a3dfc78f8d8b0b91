"""Shared data for the analytics-service tests: a small config and simulated events spanning two days."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from analytics.service.config import AnalyticsConfig, ModelSpec, QuerySpec, SchedulerSpec
from tests.helpers.events import make_event

if TYPE_CHECKING:
    from analytics.service import AnalyticsService
    from tests.helpers.hub import RunningHub

HOURS = 48
STEP_S = 300
SPIKE_AGO_S = 6 * 3600 + 150  # a latency spike six hours ago (mid-bucket)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def svc_config() -> AnalyticsConfig:
    """Latency p95 per model every 5 minutes (anomaly + forecast) and hourly cost (forecast)."""
    return AnalyticsConfig(
        queries={
            # one request per bucket (below a p95's default min_samples of 20): scored without a floor
            "latency": QuerySpec(event_type="telemetry", name="gen_ai.client.operation.duration", field="value",
                                 aggregation="p95", group_by=["model"], step="5m", min_samples=0),
            "cost_usd_hourly": QuerySpec(event_type="cost", field="value", aggregation="sum", group_by=["team"],
                                         step="1h"),
        },
        models={
            "anomaly": ModelSpec(model_class="anomaly", queries=["latency"],
                                 params={"detectors": ["robust"], "min_periods": 30}),
            "forecast": ModelSpec(model_class="forecast", params={"horizon": "6h"}),
        },
        schedulers={"periodic": SchedulerSpec(fit_every="1h", infer_every="1m", fit_window="3d")},
    ).validate()  # fmt: skip


def events(now: float, *, spike: bool = True, cost_per_hour: float = 1.0) -> list[dict[str, Any]]:
    """One gpt-4o request every 5 minutes for 48 h (~800 ms with a daily swing), a spike of 20 s, and
    ``cost_per_hour`` USD of cost for team search every hour (a linear spend)."""
    rng = np.random.default_rng(7)
    out = []
    start = now - HOURS * 3600
    for i in range(HOURS * 3600 // STEP_S):
        t = start + i * STEP_S + 60
        value = 800 + 100 * math.sin(2 * math.pi * t / 86_400) + rng.normal(0, 15)
        if spike and abs((now - t) - SPIKE_AGO_S) < STEP_S / 2:
            value = 20_000.0
        out.append(make_event("telemetry", timestamp=iso(t), payload={"value": float(value), "model": "gpt-4o"}))
    for hour in range(HOURS):
        t = start + hour * 3600 + 1800
        out.append(make_event("cost", timestamp=iso(t), payload={"amount": cost_per_hour, "model": "gpt-4o"},
                              tags={"team": "search", "project": "assistant"}))  # fmt: skip
    return out


def ingest(api: str, evs: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
    for i in range(0, len(evs), 1000):
        r = httpx.post(f"{api}/api/v1/events", json=evs[i : i + 1000], headers=headers or {}, timeout=30)
        assert r.status_code in (200, 202), r.text


def now_s() -> float:
    return time.time()


COST_HOURS = 72  # 1 USD per hour per team, up to now: enough history for a forecast of hourly cost


@contextlib.contextmanager
def two_team_cost_hub(data_dir: Path) -> Iterator[tuple[RunningHub, AnalyticsService]]:
    """A running hub with ``COST_HOURS`` of hourly cost for teams search and ads (1 USD an hour each), and
    an analytics service of its own (no models, no warm-up, its scheduler not started: a test runs its
    passes) behind the hub's API."""
    from analytics.service import AnalyticsService
    from tests.alerting.conftest import add_events
    from tests.helpers.hub import running_hub

    with running_hub(data_dir, grpc=False, otlp_http=False, processors__analytics={"enabled": False}) as h:
        now = time.time()
        add_events(h.service.store, [
            {"tenant_id": "default", "ts": now - k * 3600 + 60, "event_type": "cost", "name": "usage", "value": 1.0,
             "team": team} for k in range(1, COST_HOURS + 1) for team in ("search", "ads")
        ])  # fmt: skip
        svc = AnalyticsService(AnalyticsConfig(models={}, warm_up=False), h.service.store, None)
        h.service.app.state.analytics = svc
        yield h, svc
