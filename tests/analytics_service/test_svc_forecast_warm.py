"""Forecasts asked for through the API are kept warm: when their query's next bucket completes, the
scheduler's warm pass refits them, so the next call is answered from the forecast cache
(analytics.service.warm, AnalyticsService.warm_forecasts, processors.analytics.forecast_warm)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from analytics.forecast.calibration import Calibration
from analytics.service import AnalyticsService
from analytics.service.config import AnalyticsConfig, ForecastWarmSpec, QuerySpec, SchedulerSpec, config_from_dict
from analytics.service.handlers import forecast
from analytics.service.warm import WarmForecasts
from hubcore.errors import ConfigError
from hubcore.storage.embedded import EmbeddedStore

NOW = 1_764_000_000.0  # a whole hour (a bucket boundary)
STEP = 300
HOURS = 48
SETTLE = 30.0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _rows(tenant: str, start: float, end: float, seed: int, base: int) -> dict[str, list[Any]]:
    """Requests of two models every 5 minutes in ``[start, end)`` (a daily swing), for ``tenant``."""
    rng = np.random.default_rng(seed + int(start))
    cols: dict[str, list[Any]] = {k: [] for k in ("tenant_id", "ts", "event_type", "name", "value", "status", "model",
                                                   "team", "payload", "event_id")}  # fmt: skip
    for t in np.arange(start, end, STEP) + 30:
        for model, team, extra in (("gpt-4o", "search", 0), ("llama-3-70b", "chat", 2)):
            n = base + extra + int(3 + 3 * math.sin(2 * math.pi * t / 86_400)) + int(rng.integers(0, 3))
            for _ in range(n):
                for k, v in (("tenant_id", tenant), ("ts", int(t * 1e6)), ("event_type", "telemetry"),
                             ("name", "gen_ai.client.operation.duration"), ("value", 500.0), ("status", "ok"),
                             ("model", model), ("team", team), ("payload", "{}"),
                             ("event_id", f"{tenant}-{t}-{model}-{len(cols['ts'])}")):  # fmt: skip
                    cols[k].append(v)
    return cols


def _config(**warm: Any) -> AnalyticsConfig:
    return AnalyticsConfig(
        queries={"reqs": QuerySpec(event_type="telemetry", name="gen_ai.client.operation.duration",
                                   aggregation="count", group_by=["model"], step="5m")},
        models={},  # no scheduled model: the service's passes do nothing but the warm work
        schedulers={"periodic": SchedulerSpec(fit_every="1h", infer_every="1m", fit_window="2d")},
        forecast_warm=ForecastWarmSpec(**{"settle": "30s", **warm}),
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    st = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.01)
    st.start()
    st.append("events", _rows("acme", NOW - HOURS * 3600, NOW, 1, 0))
    st.append("events", _rows("globex", NOW - HOURS * 3600, NOW, 2, 5))
    assert st.flush(10.0)
    yield st
    st.shutdown()


def _service(store: EmbeddedStore, clock: Clock, **warm: Any) -> AnalyticsService:
    return AnalyticsService(_config(**warm), store, CollectorRegistry(), clock=clock)


def _next_bucket(store: EmbeddedStore, clock: Clock, *tenants: str) -> None:
    """The bucket after ``NOW`` completes (every tenant's events in it), and the clock is past its settle time."""
    for i, tenant in enumerate(tenants or ("acme", "globex")):
        store.append("events", _rows(tenant, NOW, NOW + STEP, 1 + i, 5 * i))
    assert store.flush(10.0)
    clock.t = NOW + STEP + SETTLE


def _fits(svc: AnalyticsService) -> int:
    return svc.forecasts.misses


def _answer(svc: AnalyticsService, tenant: str = "acme") -> dict[str, Any]:
    return forecast(svc, tenant, "reqs", horizon="2h")


def test_after_a_new_bucket_the_warm_pass_refits_and_the_next_call_fits_nothing(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulated: list[float] = []  # exceedance probabilities simulated (not found in their memo)
    real = Calibration._exceedance

    def counted(self: Calibration, *args: Any) -> float:
        simulated.append(args[1])
        return real(self, *args)

    monkeypatch.setattr(Calibration, "_exceedance", counted)
    clock = Clock(NOW + 100)
    svc = _service(store, clock)
    first = _answer(svc)
    assert len(first["series"]) == 2 and _fits(svc) == 2 and len(simulated) == 2
    assert svc.warm.remembered() == [("acme", "reqs", "2h", 95.0, None, None, None, None, None)]
    assert svc.warm_forecasts() == "done" and _fits(svc) == 2  # the same bucket: nothing is due
    _next_bucket(store, clock)
    clock.t -= 1  # the bucket ended, its settle time not yet over: not due
    assert svc.warm_forecasts() == "done" and _fits(svc) == 2
    clock.t += 1
    assert svc.warm_forecasts() == "done" and _fits(svc) == 4  # refitted on the new data
    assert svc.warm_forecasts() == "done" and _fits(svc) == 4  # once per bucket
    hits, n_simulated = svc.forecasts.hits, len(simulated)
    warm = _answer(svc)
    assert _fits(svc) == 4 and svc.forecasts.hits == hits + 2  # answered from the cache
    assert len(simulated) == n_simulated  # and its exceedance probabilities too
    assert warm["series"][0]["points"][0]["timestamp"] != first["series"][0]["points"][0]["timestamp"]
    svc.forecasts.clear()
    cold = _answer(svc)  # what the caller would have got without the warm pass: the same answer
    assert json.dumps(cold, sort_keys=True) == json.dumps(warm, sort_keys=True)
    text = _metrics(svc)
    assert 'hub_analytics_forecast_warm_total{result="ok"} 1.0' in text
    assert "hub_analytics_forecast_warm_entries 1.0" in text
    assert "hub_analytics_forecast_cache_misses_total 6.0" in text and "hub_analytics_forecast_cache_hits_total" in text


def _metrics(svc: AnalyticsService) -> str:
    from prometheus_client import generate_latest

    return generate_latest(svc.registry).decode()


def test_a_warm_entry_computes_its_own_tenants_forecast_only(store: EmbeddedStore) -> None:
    clock = Clock(NOW + 100)
    svc = _service(store, clock)
    _answer(svc, "acme")
    _next_bucket(store, clock)
    svc.warm_forecasts()
    assert [k[0] for k in svc.warm.remembered()] == ["acme"] and _fits(svc) == 4
    _answer(svc, "globex")  # globex asked nothing before: its data was not fitted by acme's entry
    assert _fits(svc) == 6
    _answer(svc, "acme")
    assert _fits(svc) == 6
    assert sorted(k[0] for k in svc.warm.remembered()) == ["acme", "globex"]


def test_entries_expire_and_are_bounded(store: EmbeddedStore) -> None:
    clock = Clock(NOW + 100)
    svc = _service(store, clock, keep="20m", max_entries=2)
    for horizon in ("1h", "2h", "3h"):
        forecast(svc, "acme", "reqs", horizon=horizon)
    assert [k[2] for k in svc.warm.remembered()] == ["2h", "3h"]  # the least recently asked went
    forecast(svc, "acme", "reqs", horizon="2h")  # asked again: the most recent
    assert [k[2] for k in svc.warm.remembered()] == ["3h", "2h"]
    clock.t = NOW + 100 + 20 * 60  # not asked for 20 minutes: forgotten, nothing refitted
    fits = _fits(svc)
    assert svc.warm_forecasts() == "done"
    assert svc.warm.remembered() == [] and _fits(svc) == fits


def test_the_warm_pass_gives_way_to_a_due_model_run(store: EmbeddedStore) -> None:
    from analytics.service.config import ModelSpec

    clock = Clock(NOW + 100)
    svc = _service(store, clock)
    svc.config.models["anomaly"] = ModelSpec(model_class="anomaly", queries=["reqs"], params={"detectors": ["robust"]})
    _answer(svc)
    assert svc.run_once()["runs"] == 2  # both tenants' anomaly runs; due again in infer_every (1m)
    _next_bucket(store, clock)  # 330 s later: the runs are due
    assert svc.warm_forecasts() == "deferred" and _fits(svc) == 2  # nothing recomputed before them
    assert 'hub_analytics_forecast_warm_total{result="deferred"} 1.0' in _metrics(svc)
    assert svc.run_once()["runs"] == 2
    assert svc.warm_forecasts() == "done" and _fits(svc) == 4  # then the warm work
    # a tenant whose data left the window drops out of the work list: nothing stays due for ever
    svc._last_run[("gone", "anomaly", "reqs")] = clock.t - 3600
    svc.run_once()
    assert not svc._runs_due(clock.t)


def test_the_scheduler_thread_runs_the_warm_pass(store: EmbeddedStore) -> None:
    clock = Clock(NOW + 100)
    svc = _service(store, clock)
    _answer(svc)
    _next_bucket(store, clock)
    svc.start()
    try:
        deadline = time.monotonic() + 30
        while svc.m_warm.labels("ok")._value.get() < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        svc.shutdown()
    assert svc.m_warm.labels("ok")._value.get() == 1 and _fits(svc) == 4
    _answer(svc)
    assert _fits(svc) == 4


def test_a_request_that_fails_now_is_forgotten(store: EmbeddedStore) -> None:
    clock = Clock(NOW + 100)
    svc = _service(store, clock)
    _answer(svc)
    svc.config.queries.pop("reqs")  # (as if its data or query were gone: the request would now be a 422)
    _next_bucket(store, clock)
    assert svc.warm_forecasts() == "done" and svc.warm.remembered() == []
    assert 'hub_analytics_forecast_warm_total{result="error"} 1.0' in _metrics(svc)


def test_disabled_remembers_nothing(store: EmbeddedStore) -> None:
    svc = _service(store, Clock(NOW + 100), enabled=False)
    _answer(svc)
    assert len(svc.warm) == 0


@pytest.mark.parametrize(("warm", "key"), [
    ({"max_entries": 0}, "processors.analytics.forecast_warm.max_entries"),
    ({"max_entries": 5000}, "processors.analytics.forecast_warm.max_entries"),
    ({"keep": "0s"}, "processors.analytics.forecast_warm.keep"),
    ({"keep": "30d"}, "processors.analytics.forecast_warm.keep"),
    ({"keep": "soon"}, "processors.analytics.forecast_warm.keep"),
    ({"settle": "2h"}, "processors.analytics.forecast_warm.settle"),
    ({"settle": "-5s"}, "processors.analytics.forecast_warm.settle"),
    ({"max_entris": 3}, "processors.analytics"),
])  # fmt: skip
def test_bad_settings_name_their_key(warm: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"forecast_warm": warm})
    assert err.value.key == key, str(err.value)
    if key.endswith(("max_entries", "keep", "settle")):
        assert key.rsplit(".", 1)[1] in str(err.value)


def test_defaults_and_settings_reach_the_service(store: EmbeddedStore) -> None:
    assert config_from_dict({}).forecast_warm == ForecastWarmSpec(enabled=True, keep="1h", max_entries=16, settle="30s")
    svc = AnalyticsService({"forecast_warm": {"keep": "10m", "max_entries": 3, "settle": "0s"}}, store)
    assert (svc.warm.keep_s, svc.warm.max_entries, svc.warm.settle_s) == (600.0, 3, 0.0)


def test_warm_forecasts_unit_due_and_bounds() -> None:
    warm = WarmForecasts(keep_s=3600, max_entries=2, settle_s=30)
    with pytest.raises(ValueError, match="keep_s"):
        WarmForecasts(keep_s=0, max_entries=1)
    warm.remember(("a", 1), 300, 1000.0, lambda: None)  # (1000 - 30) // 300 = 3
    assert warm.due(1229.0) == [] and [e.key for e in warm.due(1230.0)] == [("a", 1)]
    warm.computed(("a", 1), 1230.0)
    assert warm.due(1529.0) == [] and len(warm.due(1530.0)) == 1
    warm.remember(("b", 1), 3600, 1100.0, lambda: None)
    warm.remember(("c", 1), 60, 1200.0, lambda: None)
    assert warm.remembered() == [("b", 1), ("c", 1)]
    assert len(warm.due(4799.0)) == 1  # ("b" was asked an hour ago: gone; "c" is due)
    assert warm.due(4800.0) == [] and warm.remembered() == []  # an hour after the last ask: all expired
