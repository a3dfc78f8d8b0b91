"""A hub seeded with two days of simulated traffic, two injected incidents and one hostile event.

Shared (session scope) by the console's HTTP and browser tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from analytics.correlation.scenarios import SCENARIOS, Dims
from hub.simulate import GeneratorState, encode_batch, generate_batch, synthetic_traces
from tests.helpers.events import make_event, now_iso
from tests.helpers.hub import RunningHub, running_hub

#: A tag value that would run script if the console rendered data as HTML.
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
SEED_DAYS = 2.0
SEED_EVENTS = 4000


@dataclass
class Seeded:
    hub: RunningHub
    events: int

    @property
    def api(self) -> str:
        return self.hub.api


def post(api: str, body: bytes | list[dict[str, object]], headers: dict[str, str] | None = None) -> None:
    content = body if isinstance(body, bytes) else encode_batch(body)
    r = httpx.post(f"{api}/api/v1/events", content=content,
                   headers={"content-type": "application/json", **(headers or {})}, timeout=30)  # fmt: skip
    assert r.status_code == 202, r.text


def seed(
    api: str,
    *,
    days: float = SEED_DAYS,
    events: int = SEED_EVENTS,
    seed: int = 1,
    headers: dict[str, str] | None = None,
) -> int:
    """Simulated traffic over the last ``days``, two incidents in the last hours, one hostile event."""
    now = time.time()
    state = GeneratorState.create(synthetic_traces(), rate=events / (days * 86_400), t0=now - days * 86_400)
    rng = np.random.default_rng(seed)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    sent = 0
    while True:
        batch = [e for e in generate_batch(1000, rng, state) if e["timestamp"] < stamp]
        if batch:
            post(api, batch, headers)
            sent += len(batch)
        if len(batch) < 1000:
            break
    injected: list[dict[str, object]] = []
    for k, name in enumerate(("security_chain", "provider_outage")):
        injected += SCENARIOS[name](rng, now - 3600 * (k + 2), Dims.pick(rng, k)).events
    hostile = make_event("telemetry", timestamp=now_iso(-60), tags={"team": XSS, "project": "xss"})
    post(api, [*injected, hostile], headers)
    return sent + len(injected) + 1


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with running_hub(tmp_path_factory.mktemp("console") / "data", grpc=False, otlp_http=False) as hub:
        n = seed(hub.api)
        hub.flush()
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86_400))
        r = httpx.post(f"{hub.api}/api/v1/correlations/analyze", params={"start": start}, timeout=60)
        assert r.status_code == 200, r.text
        seed_alerts_and_budgets(hub.api)
        yield Seeded(hub, n)


def seed_alerts_and_budgets(api: str) -> None:
    """Two firing alerts (through the Alertmanager webhook) and a budget, where the hub has those APIs."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    alerts = [
        {"status": "firing", "labels": {"alertname": "HighLatencyP95", "severity": "warning", "model": "gpt-4o"},
         "annotations": {"summary": "p95 latency of gpt-4o above 8 s"}, "startsAt": now, "fingerprint": "console-1"},
        {"status": "firing", "labels": {"alertname": "CostSpike", "severity": "critical"},
         "annotations": {"summary": "hourly cost 3x the usual"}, "startsAt": now, "fingerprint": "console-2"},
    ]  # fmt: skip
    hook = {"version": "4", "status": "firing", "receiver": "hub", "groupKey": "console", "alerts": alerts}
    r = httpx.post(f"{api}/api/v1/alerts/alertmanager", json=hook, timeout=30)
    assert r.status_code in (200, 404), r.text
    r = httpx.post(f"{api}/api/v1/budgets", json={"name": "research monthly", "amount": 50.0, "team": "research"},
                   timeout=60)  # fmt: skip
    assert r.status_code in (201, 404, 405), r.text


@pytest.fixture(scope="session")
def artifacts() -> Path:
    out = Path(__file__).resolve().parents[2] / "artifacts" / "console"
    out.mkdir(parents=True, exist_ok=True)
    return out


DAY_S = 86_400


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class Periods:
    """A hub whose top models differ between two disjoint days, with 25 days of steady spend before today."""

    hub: RunningHub
    a: tuple[str, str]  # [start, end) of the day 20 days ago: alpha-model leads, gamma-model second
    b: tuple[str, str]  # [start, end) of the day 10 days ago: beta-model leads, gamma-model second
    steady_days: int

    @property
    def api(self) -> str:
        return self.hub.api


#: (model, which day, requests = cost events of 1 USD each)
PERIOD_MODELS = (("alpha-model", "a", 6), ("gamma-model", "a", 2), ("beta-model", "b", 6), ("gamma-model", "b", 3))


@pytest.fixture(scope="session")
def periods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Periods]:
    today = time.time() // DAY_S * DAY_S
    starts = {"a": today - 20 * DAY_S, "b": today - 10 * DAY_S}
    events: list[dict[str, object]] = []
    for model, day, n in PERIOD_MODELS:
        for i in range(n):
            ts = iso(starts[day] + 3600 * (i + 1) + 60 * len(events))
            events.append(make_event("telemetry", timestamp=ts, payload={"model": model}))
            events.append(make_event("cost", timestamp=ts, payload={"model": model, "amount": 1.0}))
    steady = 25  # days of spend up to yesterday: enough for the cost page's daily-step forecast
    for d in range(1, steady + 1):
        for h in range(0, 24, 3):
            events.append(make_event("cost", timestamp=iso(today - d * DAY_S + h * 3600 + 120),
                                     payload={"model": "steady-model", "amount": 0.5 + 0.1 * (d % 7)},
                                     tags={"team": "steady", "project": "p"}))  # fmt: skip
    # events up to 26 days old: past the default 7-day ingest bound (processors.native_events.max_age)
    with running_hub(tmp_path_factory.mktemp("periods") / "data", grpc=False, otlp_http=False,
                     processors__native_events__max_age=40 * DAY_S) as hub:  # fmt: skip
        post(hub.api, events)
        hub.flush()
        span = {k: (iso(t), iso(t + DAY_S)) for k, t in starts.items()}
        yield Periods(hub, span["a"], span["b"], steady)
