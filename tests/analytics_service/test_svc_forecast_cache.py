"""GET /forecast and POST /whatif asked again of the same data: the service's forecast cache answers,
with the same answer (analytics.service.handlers with AnalyticsService.forecasts)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analytics.service import AnalyticsService
from analytics.service.config import AnalyticsConfig, ModelSpec, QuerySpec, SchedulerSpec
from analytics.service.handlers import _iso, _iso_many, forecast, what_if
from analytics.service.models import run_forecast
from analytics.service.series import load_series
from hubcore.errors import InvalidParameter
from hubcore.storage.embedded import EmbeddedStore

NOW = 1_764_000_000.0  # a whole hour
HOURS = 48


def _rows(now: float) -> dict[str, list[Any]]:
    """Two days of requests every 5 minutes for two models (a daily swing) and hourly cost per model."""
    rng = np.random.default_rng(3)
    cols: dict[str, list[Any]] = {k: [] for k in ("tenant_id", "ts", "event_type", "name", "value", "status", "model",
                                                   "team", "payload", "event_id")}  # fmt: skip

    def add(ts: float, event_type: str, name: str | None, value: float, model: str, team: str) -> None:
        for k, v in (("tenant_id", "acme"), ("ts", int(ts * 1e6)), ("event_type", event_type), ("name", name),
                     ("value", value), ("status", "ok"), ("model", model), ("team", team), ("payload", "{}"),
                     ("event_id", f"e{len(cols['ts'])}")):  # fmt: skip
            cols[k].append(v)

    start = now - HOURS * 3600
    for i in range(HOURS * 12):
        t = start + i * 300 + 30
        for model, team, base, extra in (("gpt-4o", "search", 800.0, 0), ("llama-3-70b", "chat", 300.0, i % 2)):
            for _ in range(1 + extra + int(2 + 2 * math.sin(2 * math.pi * t / 86_400))):
                add(t, "telemetry", "gen_ai.client.operation.duration", base + rng.normal(0, 20), model, team)
    for hour in range(HOURS):
        for model, team, usd in (("gpt-4o", "search", 1.0), ("llama-3-70b", "chat", 0.25)):
            add(start + hour * 3600 + 1800, "cost", None, usd * (1 + 0.3 * math.sin(hour / 3.8)), model, team)
    return cols


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnalyticsService]:
    store = EmbeddedStore(Path(tmp_path_factory.mktemp("fcache")), wal_fsync=False, flush_interval=0.01)
    store.start()
    store.append("events", _rows(NOW))
    assert store.flush(10.0)
    config = AnalyticsConfig(
        queries={"cost": QuerySpec(event_type="cost", field="value", aggregation="sum", group_by=["team"], step="1h")},
        models={"forecast": ModelSpec(model_class="forecast", params={"horizon": "6h"})},
        schedulers={"periodic": SchedulerSpec(fit_every="1h", infer_every="1m", fit_window="3d")},
    )  # fmt: skip
    service = AnalyticsService(config, store, clock=lambda: NOW)
    yield service
    service.shutdown()
    store.shutdown()


def _counts(service: AnalyticsService) -> tuple[int, int]:
    return service.forecasts.hits, service.forecasts.misses


def test_a_forecast_asked_again_is_answered_from_the_cache_unchanged(svc: AnalyticsService) -> None:
    svc.forecasts.clear()
    hits, misses = _counts(svc)
    first = forecast(svc, "acme", "cost", horizon="1d")
    assert len(first["series"]) == 2
    assert _counts(svc) == (hits, misses + 2)
    again = forecast(svc, "acme", "cost", horizon="1d")
    assert _counts(svc) == (hits + 2, misses + 2)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)
    # another horizon (or level) is another forecast
    forecast(svc, "acme", "cost", horizon="2d")
    forecast(svc, "acme", "cost", horizon="1d", level=80)
    assert _counts(svc) == (hits + 2, misses + 6)


def test_a_sum_that_reads_back_with_other_last_bits_is_still_a_hit(
    svc: AnalyticsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB adds a bucket's values in parallel, in no fixed order: the same hourly spend read twice can
    differ in its last bits. The service's cache keys values by their leading bits, so such a read finds
    the forecast of the one before."""
    import analytics.service.handlers as handlers

    reads = []
    real = handlers.load_series

    def load(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        reads.append(len(out))
        if len(reads) % 2 == 0:  # every second read: one unit in the last place up
            out = [type(s)(s.labels, s.ts, np.nextafter(s.values, np.inf), s.step) for s in out]
        return out

    monkeypatch.setattr(handlers, "load_series", load)
    svc.forecasts.clear()
    hits, misses = _counts(svc)
    first = forecast(svc, "acme", "cost", horizon="12h")
    again = forecast(svc, "acme", "cost", horizon="12h")
    assert len(reads) == 2 and _counts(svc) == (hits + 2, misses + 2)
    assert [s["points"] for s in again["series"]] == [s["points"] for s in first["series"]]


def test_what_if_scenarios_on_one_history_forecast_its_traffic_once(svc: AnalyticsService) -> None:
    svc.forecasts.clear()
    hits, misses = _counts(svc)
    body: dict[str, Any] = {"scenario": [{"type": "scale_traffic", "factor": 2}], "horizon": "1d", "history": "2d"}
    first = what_if(svc, "acme", body)
    assert _counts(svc) == (hits, misses + 2)  # one forecast per model, shared by the baseline and the scenario
    again = what_if(svc, "acme", body)
    other = what_if(svc, "acme", {**body, "scenario": [{"type": "price_change", "percent": -50}]})
    assert _counts(svc) == (hits + 4, misses + 2)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)

    def baseline(answer: dict[str, Any]) -> list[Any]:
        return [(r["model"], r["metric"], r["baseline"], r["baseline_lower"], r["baseline_upper"]) for r in answer["summary"]]

    assert baseline(other) == baseline(first)
    total = {(r["model"], r["metric"]): r for r in other["summary"]}[("*", "cost")]
    assert total["scenario"] == pytest.approx(total["baseline"] / 2)


@pytest.mark.parametrize(("call", "field"), [
    (lambda s: forecast(s, "acme", "cost", horizon="soon"), "horizon"),
    (lambda s: forecast(s, "acme", "cost", window_start="+2h", window_end="+1h"), "window_end"),
    (lambda s: what_if(s, "acme", {"scenario": [{"type": "teleport"}]}), "scenario[0].type"),
    (lambda s: what_if(s, "acme", {"scenario": [{"type": "scale_traffic", "factor": 2}], "horizon": "0"}), "horizon"),
])  # fmt: skip
def test_a_bad_request_is_refused_before_anything_is_forecast(svc: AnalyticsService, call: Any, field: str) -> None:
    svc.forecasts.clear()
    before = _counts(svc)
    with pytest.raises(InvalidParameter) as err:
        call(svc)
    assert err.value.status == 422 and str(err.value).startswith(field), str(err.value)
    assert _counts(svc) == before and len(svc.forecasts) == 0


def test_run_forecast_without_rows_returns_the_same_forecasts(svc: AnalyticsService) -> None:
    spec = svc.config.queries["cost"]
    series = load_series(svc.store, spec, "acme", NOW - 3 * 86_400, NOW)
    model = svc.config.models["forecast"]
    rows, with_rows = run_forecast("acme", "cost", "forecast", model, series, horizon="6h")
    none, without = run_forecast("acme", "cost", "forecast", model, series, horizon="6h", rows=False)
    assert len(rows) == 2 * 6 * 3 and none == []
    assert with_rows.keys() == without.keys()
    for key, r in with_rows.items():
        for name in ("ds", "yhat", "yhat_lower", "yhat_upper"):
            assert np.array_equal(r[name], without[key][name])


def test_timestamps_are_formatted_as_one_at_a_time() -> None:
    whole = np.array([0.0, 1_764_000_000.0, 1_764_000_300.0, 4_102_444_800.0])
    assert _iso_many(whole) == [_iso(v) for v in whole]
    odd = np.array([1_764_000_000.5, 1_764_000_001.0])  # a fraction of a second: one at a time, as before
    assert _iso_many(odd) == [_iso(v) for v in odd]
    assert _iso_many(np.array([])) == []
