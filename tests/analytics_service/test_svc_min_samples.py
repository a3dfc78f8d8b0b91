"""min_samples: a bucket with too few events is missing for the models; a busy series' spike still pages.

The quick start's walkthrough (one day of `hub simulate` history) had found 14 of 16 "high" latency
anomalies on staging/development series with a few requests per 5-minute bucket (a p95 of 2 requests is
their maximum), while the injected 5x spike on the busiest production series never paged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analytics.service import AnalyticsService
from analytics.service.config import AnalyticsConfig, ModelSpec, QuerySpec, SchedulerSpec, config_from_dict
from analytics.service.models import run_anomaly
from analytics.service.series import load_series
from hubcore.errors import ConfigError
from hubcore.storage.embedded import EmbeddedStore
from tests.alerting.conftest import add_events

STEP = 300
NOW = 1_800_000_000.0  # a bucket boundary
BUSY_H, THIN_H = 20, 36  # the busy series starts 20 h ago (its first day: warm-up), the thin one 36 h ago
SPIKE = 6  # the last 6 buckets (30 minutes)


def _events() -> list[dict[str, Any]]:
    """``busy``: 30 requests per bucket around 1 s, 5x for the last 30 minutes; ``thin``: 2 requests per
    bucket around 1 s, 10x for the last 30 minutes."""
    rng = np.random.default_rng(21)
    rows = []
    for model, hours, per_bucket, factor in (("busy", BUSY_H, 30, 5.0), ("thin", THIN_H, 2, 10.0)):
        buckets = hours * 3600 // STEP
        for b in range(buckets):
            t0 = NOW - (buckets - b) * STEP
            mult = factor if b >= buckets - SPIKE else 1.0
            for k in range(per_bucket):
                value = float(rng.lognormal(np.log(1000.0), 0.25)) * mult
                rows.append({"tenant_id": "t", "ts": t0 + (k + 0.5) * STEP / per_bucket, "value": value, "model": model})
    return rows


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    st = EmbeddedStore(tmp_path_factory.mktemp("min_samples"), wal_fsync=False)
    st.start()
    add_events(st, _events())
    yield st
    st.shutdown()


def _config(min_samples: int | None = None, bulk_threshold: int = 200, alias: str = "anomaly") -> AnalyticsConfig:
    return AnalyticsConfig(
        queries={"latency": QuerySpec(event_type="telemetry", name="gen_ai.client.operation.duration", field="value",
                                      aggregation="p95", group_by=["model"], step="5m", alert_on="high",
                                      min_samples=min_samples, prom_labels=False)},
        models={alias: ModelSpec(model_class="anomaly", params={"detectors": ["robust", "seasonal"],
                                                                 "min_periods": 30})},
        schedulers={"periodic": SchedulerSpec(fit_every="1h", infer_every="1m", fit_window="2d")},
        bulk_threshold=bulk_threshold, warm_up=False,
    ).validate()  # fmt: skip


def test_a_thin_bucket_is_missing_and_its_count_is_read_in_the_same_query(store: EmbeddedStore, monkeypatch: Any) -> None:
    from hubcore.query import executor

    runs: list[list[str]] = []
    real = executor.EmbeddedBackend.run

    def counting(self: Any, query: Any, **kw: Any) -> Any:
        runs.append(list(query.value_columns))
        return real(self, query, **kw)

    monkeypatch.setattr(executor.EmbeddedBackend, "run", counting)
    spec = _config().queries["latency"]
    assert spec.sample_floor() == 20  # the default of a p95
    series = {s.labels["model"]: s for s in load_series(store, spec, "t", NOW - 2 * 86_400, NOW)}
    assert runs == [["p95", "count"]]  # one query: the count is a second function of the same scan
    busy, thin = series["busy"], series["thin"]
    assert busy.counts is not None and thin.counts is not None
    assert set(thin.counts[np.isfinite(thin.counts) & (thin.counts > 0)]) == {2.0}
    assert np.isnan(thin.values).all()  # 2 events < 20: no value, as an empty bucket
    assert busy.counts.max() == 30 and np.isfinite(busy.values[busy.counts >= 20]).all()
    # min_samples 0: no floor, and no count read
    runs.clear()
    raw = {s.labels["model"]: s for s in load_series(store, _config(0).queries["latency"], "t", NOW - 2 * 86_400, NOW)}
    assert runs == [["p95"]] and raw["thin"].counts is None and np.isfinite(raw["thin"].values).sum() == THIN_H * 12


# (the tests share one store: each runs its own model alias, and reads back only that alias' rows)
def _anomalies(store: EmbeddedStore, alias: str, model: str) -> list[tuple[float, float, str, bool]]:
    rows = store.read(
        "SELECT epoch(ts), anomaly_score, severity, is_alert FROM analytics_anomalies WHERE tenant_id = 't' "
        "AND model_alias = ? AND json_extract_string(labels, '$.model') = ? ORDER BY ts", [alias, model]
    ).fetchall()
    return [(float(t), float(sc), str(sev), bool(a)) for t, sc, sev, a in rows]


def _derived(store: EmbeddedStore, alias: str, name: str, model: str) -> list[tuple[float, float]]:
    rows = store.read(
        "SELECT epoch(ts), value FROM derived_series WHERE tenant_id = 't' AND name = ? "
        "AND json_extract_string(labels, '$.model_alias') = ? AND json_extract_string(labels, '$.model') = ? "
        "ORDER BY ts", [name, alias, model]
    ).fetchall()
    return [(float(t), float(v)) for t, v in rows]


def test_the_busy_series_spike_pages_and_the_thin_series_cannot(store: EmbeddedStore, tmp_path: Path) -> None:
    """End to end through the service: anomaly records, is_alert and the anomaly_alert series."""
    svc = AnalyticsService(_config(alias="floor"), store, data_dir=str(tmp_path))
    try:
        svc.run_once(NOW + 30, force=True, tenants=["t"])
        busy = _anomalies(store, "floor", "busy")
        assert busy and all(t >= NOW - SPIKE * STEP for t, *_ in busy)  # the spike's points, nothing else
        assert [t for t, _, _, alert in busy if alert] == [NOW - (SPIKE - 2) * STEP]  # its 3rd point, in warm-up
        assert _derived(store, "floor", "anomaly_alert", "busy")[-1][1] > 1.5  # LLMAnomalyDetected fires on it
        # the thin series: a 10x "spike" of 2 requests per bucket is no anomaly, no alert, no score
        assert _anomalies(store, "floor", "thin") == []
        assert [v for _, v in _derived(store, "floor", "anomaly_alert", "thin")] in ([], [0.0])
        assert _derived(store, "floor", "anomaly_score", "thin") == []  # not a 0 ("normal") either
    finally:
        svc.shutdown()


def test_without_a_floor_the_thin_series_pages(store: EmbeddedStore, tmp_path: Path) -> None:
    """min_samples 0 gives the old behaviour: the 2-request buckets' spike is announced."""
    svc = AnalyticsService(_config(0, alias="nofloor"), store, data_dir=str(tmp_path))
    try:
        svc.run_once(NOW + 30, force=True, tenants=["t"])
        assert any(alert for *_, alert in _anomalies(store, "nofloor", "thin"))
        assert _derived(store, "nofloor", "anomaly_alert", "thin")[-1][1] > 1
    finally:
        svc.shutdown()


def test_the_bulk_path_masks_thin_buckets_the_same_way(store: EmbeddedStore) -> None:
    config = _config(bulk_threshold=1)
    series = load_series(store, config.queries["latency"], "t", NOW - 2 * 86_400, NOW)
    spec = config.models["anomaly"]
    _, records, _ = run_anomaly("t", "latency", "anomaly", spec, series, None, bulk_threshold=1, alert_on="high")
    assert {r.labels["model"] for r in records} == {"busy"}  # the thin series has no usable points
    _, raw, _ = run_anomaly("t", "latency", "anomaly", spec, load_series(store, _config(0).queries["latency"], "t",
                            NOW - 2 * 86_400, NOW), None, bulk_threshold=1, alert_on="high")  # fmt: skip
    assert "thin" in {r.labels["model"] for r in raw}


def test_defaults_by_aggregation_and_the_query_body_form() -> None:
    assert [QuerySpec(aggregation=a).sample_floor() for a in ("p99", "p95", "p50", "avg", "max", "count", "sum")] == [
        100, 20, 5, 5, 5, 0, 0]  # fmt: skip
    assert QuerySpec(composite="error_rate").sample_floor() == 20  # its requests (test_svc_composite_floor.py)
    assert QuerySpec(composite="error_adjusted_throughput").sample_floor() == 0  # a rate: no floor
    assert QuerySpec(aggregation="count", per_second=True).sample_floor() == 0  # a rate: no floor
    body_spec = QuerySpec(query={"metric": {"name": "gen_ai.client.operation.duration", "field": "value"},
                                 "aggregation": {"functions": ["p95"], "group_by": ["model"]}}, min_samples=8)
    assert body_spec.sample_floor() == 8
    assert body_spec.body(0, 600, with_count=True)["aggregation"]["functions"] == ["p95", "count"]
    assert body_spec.body(0, 600)["aggregation"]["functions"] == ["p95"]
    cfg = config_from_dict({"queries": {"q": {"event_type": "telemetry", "field": "value", "aggregation": "max",
                                              "min_samples": 3}}})  # fmt: skip
    assert cfg.queries["q"].sample_floor() == 3
    assert config_from_dict({}).queries["latency_p95"].sample_floor() == 20


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ({"aggregation": "p95", "min_samples": -1}, "must be a whole number of events, 0 or more; got -1"),
        ({"aggregation": "p95", "min_samples": 2.5}, "min_samples"),
        ({"aggregation": "p95", "min_samples": "many"}, "min_samples"),
        ({"aggregation": "p95", "min_samples": True}, "min_samples"),
        ({"composite": "error_adjusted_throughput", "min_samples": 5}, "rate per second of the bucket"),
        ({"query": {"metric": {"name": "gen_ai.client.operation.duration", "field": "value"},
                    "aggregation": {"functions": ["p95", "p99"]}}, "min_samples": 5},
         "needs a query of one aggregation function"),
    ],
)
def test_bad_min_samples_is_a_config_error_naming_the_key(query: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"queries": {"q": query}, "models": {}})
    assert "min_samples" in f"{err.value.key} {err.value}" and needle in str(err.value), str(err.value)


def test_a_min_samples_set_in_python_is_checked_too() -> None:
    for bad in (-3, 1.5, False):
        spec = QuerySpec(aggregation="p95", min_samples=bad)  # type: ignore[arg-type]  # (msgspec does not check here)
        with pytest.raises(ConfigError) as err:
            AnalyticsConfig(queries={"q": spec}, models={}).validate()
        assert err.value.key == "processors.analytics.queries.q.min_samples"
