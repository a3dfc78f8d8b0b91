"""min_samples on ratio composites: an error rate's bucket with too few requests is missing for the models.

The default config's ``error_rate`` (errors / requests per environment and model, 5-minute buckets) had
no floor: a staging series with 2 requests per bucket is 0 %, 50 % or 100 %, and a run of 1-in-2 errors
paged like a production outage. Its samples are its denominator's events (the requests), read in the
same scan as the rate; by default 20 of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analytics.service import AnalyticsService
from analytics.service.config import (
    AnalyticsConfig,
    ModelSpec,
    QuerySpec,
    SchedulerSpec,
    config_from_dict,
    default_config,
)
from analytics.service.models import run_anomaly
from analytics.service.series import load_series
from hubcore.errors import ConfigError
from hubcore.storage.embedded import EmbeddedStore

STEP = 300
NOW = 1_800_000_000.0  # a bucket boundary
BUSY_H, THIN_H = 20, 36  # production starts 20 h ago (its first day: warm-up), staging 36 h ago
BURST = 6  # the last 6 buckets (30 minutes)
MODEL = "$.gen_ai_request_model"  # the default query's Prometheus label names


def _events() -> dict[str, list[Any]]:
    """production/busy: 40 requests per bucket, about 2 % errors, 40 % for the last 30 minutes;
    staging/thin: 2 requests per bucket, about 0.5 % errors, 1 of the 2 failing for the last 30 minutes."""
    rng = np.random.default_rng(5)
    cols: dict[str, list[Any]] = {k: [] for k in ("tenant_id", "ts", "event_type", "name", "value", "status",
                                                  "model", "environment", "event_id")}  # fmt: skip
    for env, model, hours, per_bucket, p, burst in (("production", "busy", BUSY_H, 40, 0.02, 16),
                                                    ("staging", "thin", THIN_H, 2, 0.0, 1)):  # fmt: skip
        buckets = hours * 3600 // STEP
        for b in range(buckets):
            t0 = NOW - (buckets - b) * STEP
            errors = burst if b >= buckets - BURST else int(rng.binomial(per_bucket, p))
            for k in range(per_bucket):
                ts = t0 + (k + 0.5) * STEP / per_bucket
                cols["tenant_id"].append("t")
                cols["ts"].append(int(ts * 1e6))
                cols["event_type"].append("telemetry")
                cols["name"].append("gen_ai.client.operation.duration")
                cols["value"].append(800.0)
                cols["status"].append("error" if k < errors else "ok")
                cols["model"].append(model)
                cols["environment"].append(env)
                cols["event_id"].append(f"{model}-{b}-{k}")
    return cols


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    st = EmbeddedStore(tmp_path_factory.mktemp("composite_floor"), wal_fsync=False)
    st.start()
    st.append("events", _events())
    assert st.flush(10.0)
    yield st
    st.shutdown()


def _spec(**kw: Any) -> QuerySpec:
    """The default config's error_rate query (``min_samples`` and the like in ``kw``)."""
    base = default_config().queries["error_rate"]
    return QuerySpec(**{**{f: getattr(base, f) for f in base.__struct_fields__}, **kw})


def _config(spec: QuerySpec, *, bulk_threshold: int = 200) -> AnalyticsConfig:
    return AnalyticsConfig(
        queries={"error_rate": spec},
        models={"anomaly": ModelSpec(model_class="anomaly", params={"detectors": ["robust", "seasonal"],
                                                                     "min_periods": 30})},
        schedulers={"periodic": SchedulerSpec(fit_every="1h", infer_every="1m", fit_window="2d")},
        bulk_threshold=bulk_threshold, warm_up=False,
    ).validate()  # fmt: skip


def _by_model(series: list[Any]) -> dict[str, Any]:
    return {s.labels["gen_ai_request_model"]: s for s in series}


def test_the_requests_are_read_in_the_same_scan_and_a_thin_bucket_is_missing(
    store: EmbeddedStore, monkeypatch: Any
) -> None:
    from hubcore.query import executor

    runs: list[list[str]] = []
    real = executor.EmbeddedBackend.run

    def counting(self: Any, query: Any, **kw: Any) -> Any:
        runs.append(list(query.value_columns))
        return real(self, query, **kw)

    monkeypatch.setattr(executor.EmbeddedBackend, "run", counting)
    spec = _spec()
    assert spec.sample_floor() == 20  # the default of an error rate: 20 requests
    series = _by_model(load_series(store, spec, "t", NOW - 2 * 86_400, NOW))
    assert runs == [["error_rate", "samples"]]  # one query: the requests are a second column of the same scan
    busy, thin = series["busy"], series["thin"]
    assert busy.counts is not None and thin.counts is not None
    assert set(thin.counts[thin.counts > 0]) == {2.0} and set(busy.counts[busy.counts > 0]) == {40.0}
    assert np.isnan(thin.values).all()  # 2 requests < 20: no value, as an empty bucket
    assert np.isfinite(busy.values[busy.counts >= 20]).all()
    assert busy.values[-1] == pytest.approx(16 / 40)  # the rate itself is unchanged
    # min_samples 0: no floor, and no count read
    runs.clear()
    raw = _by_model(load_series(store, _spec(min_samples=0), "t", NOW - 2 * 86_400, NOW))
    assert runs == [["error_rate"]] and raw["thin"].counts is None
    assert np.isfinite(raw["thin"].values).sum() == THIN_H * 12 and raw["thin"].values[-1] == 0.5


def _anomalies(store: EmbeddedStore, alias: str, model: str) -> list[tuple[float, bool]]:
    rows = store.read(
        "SELECT epoch(ts), is_alert FROM analytics_anomalies WHERE tenant_id = 't' AND query = 'error_rate' "
        "AND model_alias = ? AND json_extract_string(labels, ?) = ? ORDER BY ts",
        [alias, MODEL, model],
    ).fetchall()
    return [(float(t), bool(a)) for t, a in rows]


def _derived(store: EmbeddedStore, alias: str, name: str, model: str) -> list[float]:
    rows = store.read(
        "SELECT value FROM derived_series WHERE tenant_id = 't' AND name = ? "
        "AND json_extract_string(labels, '$.model_alias') = ? AND json_extract_string(labels, ?) = ? "
        "ORDER BY ts",
        [name, alias, MODEL, model],
    ).fetchall()
    return [float(v) for (v,) in rows]


def _run(store: EmbeddedStore, tmp_path: Path, spec: QuerySpec, alias: str) -> None:
    config = _config(spec)
    config.models[alias] = config.models.pop("anomaly")
    svc = AnalyticsService(config, store, data_dir=str(tmp_path))
    try:
        svc.run_once(NOW + 30, force=True, tenants=["t"])
    finally:
        svc.shutdown()


def test_a_thin_error_rate_cannot_alert_and_a_busy_burst_still_does(store: EmbeddedStore, tmp_path: Path) -> None:
    """End to end through the service with the default error_rate query."""
    _run(store, tmp_path, _spec(), "floor")
    busy = _anomalies(store, "floor", "busy")
    assert any(alert for t, alert in busy if t >= NOW - BURST * STEP)  # the 40 % burst pages
    assert _derived(store, "floor", "anomaly_alert", "busy")[-1] > 1.5  # LLMAnomalyDetected fires on it
    # staging: 1 of its 2 requests failing for 30 minutes is no anomaly, no alert, no score
    assert _anomalies(store, "floor", "thin") == []
    assert _derived(store, "floor", "anomaly_alert", "thin") in ([], [0.0])
    assert _derived(store, "floor", "anomaly_score", "thin") == []


def test_without_a_floor_the_thin_error_rate_pages(store: EmbeddedStore, tmp_path: Path) -> None:
    """min_samples 0 gives the old behaviour: the 2-request buckets' 50 % pages (critical)."""
    _run(store, tmp_path, _spec(min_samples=0), "nofloor")
    assert any(alert for _, alert in _anomalies(store, "nofloor", "thin"))
    assert _derived(store, "nofloor", "anomaly_alert", "thin")[-1] > 1


def test_the_bulk_path_masks_thin_error_rates_the_same_way(store: EmbeddedStore) -> None:
    spec = _config(_spec(), bulk_threshold=1).models["anomaly"]

    def scored(query: QuerySpec) -> set[str]:
        series = load_series(store, query, "t", NOW - 2 * 86_400, NOW)
        _, records, _ = run_anomaly("t", "error_rate", "anomaly", spec, series, None, bulk_threshold=1,
                                    alert_on="high")  # fmt: skip
        return {r.labels["gen_ai_request_model"] for r in records}

    assert scored(_spec()) == {"busy"}  # the thin series has no usable points
    assert "thin" in scored(_spec(min_samples=0))


def test_floors_per_composite() -> None:
    floors = {c: QuerySpec(composite=c).sample_floor()
              for c in ("error_rate", "cost_per_request", "cost_per_1k_tokens", "error_adjusted_throughput")}  # fmt: skip
    assert floors == {"error_rate": 20, "cost_per_request": 5, "cost_per_1k_tokens": 5, "error_adjusted_throughput": 0}
    assert default_config().queries["error_rate"].sample_floor() == 20
    cfg = config_from_dict({"queries": {
        "a": {"composite": "error_rate", "min_samples": 50},
        "b": {"query": {"metric": "error_rate", "aggregation": {"group_by": ["model"]}}},
        "c": {"query": {"metric": {"composite": "cost_per_request"}}, "min_samples": 0},
        "d": {"query": {"metric": "error_adjusted_throughput"}},
    }, "models": {}})  # fmt: skip
    assert [cfg.queries[k].sample_floor() for k in "abcd"] == [50, 20, 0, 0]


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ({"composite": "error_adjusted_throughput", "min_samples": 5}, "rate per second of the bucket"),
        ({"query": {"metric": "error_adjusted_throughput"}, "min_samples": 5}, "rate per second of the bucket"),
        ({"query": {"metric": {"composite": "error_adjusted_throughput"}}, "min_samples": 1}, "remove min_samples"),
        ({"composite": "error_rate", "min_samples": -1}, "must be a whole number of events, 0 or more; got -1"),
        ({"composite": "error_rate", "min_samples": 2.5}, "min_samples"),
        ({"query": {"metric": "error_rate"}, "min_samples": "many"}, "min_samples"),
    ],
)
def test_bad_min_samples_on_a_composite_is_a_config_error_naming_the_key(query: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"queries": {"q": query}, "models": {}})
    assert "min_samples" in f"{err.value.key} {err.value}" and needle in str(err.value), str(err.value)


def test_min_samples_zero_on_error_adjusted_throughput_is_accepted() -> None:
    cfg = config_from_dict({"queries": {"q": {"composite": "error_adjusted_throughput", "min_samples": 0}},
                            "models": {}})  # fmt: skip
    assert cfg.queries["q"].sample_floor() == 0
