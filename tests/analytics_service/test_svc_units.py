"""Config validation (errors name the YAML key), budget periods, the vectorised bulk paths."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from analytics.service.budgets import Budget, period_bounds
from analytics.service.bulk import bulk_forecast, bulk_score
from analytics.service.config import config_from_dict, default_config
from hubcore.errors import ConfigError, PermanentError


def test_default_config_has_the_aliases_the_rules_expect() -> None:
    cfg = default_config()
    assert {"cost_usd_hourly", "requests_rate", "latency_p95", "error_rate"} <= set(cfg.queries)
    assert {m.model_class for m in cfg.models.values()} == {"anomaly", "forecast"}
    body = cfg.queries["requests_rate"].body(0, 3600)
    assert body["aggregation"]["time_bucket"] == "1m" and body["aggregation"]["group_by"] == ["environment", "model"]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"queries": {"q": {"step": "2h"}}}, "processors.analytics.queries.q.step"),
        ({"queries": {"q": {"aggregation": "median"}}}, "processors.analytics.queries.q.aggregation"),
        ({"queries": {"q": {"query": {}, "event_type": "cost"}}}, "processors.analytics.queries.q"),
        ({"models": {"m": {"class": "anomaly", "queries": ["nope"]}}}, "processors.analytics.models.m.queries.0"),
        ({"models": {"m": {"class": "anomaly", "schedulers": ["x"]}}}, "processors.analytics.models.m.schedulers.0"),
        ({"models": {"m": {"class": "anomaly", "provide_series": ["forecast_breach"]}}},
         "processors.analytics.models.m.provide_series.0"),
        ({"models": {"m": {"class": "anomaly", "params": {"detectors": ["prophet"]}}}},
         "processors.analytics.models.m.params.detectors.0"),
        ({"models": {"m": {"class": "forecast", "params": {"level": 100}}}}, "processors.analytics.models.m.params.level"),
        ({"schedulers": {"s": {"fit_every": "often"}}}, "processors.analytics.schedulers.s.fit_every"),
        ({"schedulers": {}}, "processors.analytics.schedulers"),
        # 400 days of a 1-minute query: 576,000 buckets read at every fit (at most 200,000)
        ({"schedulers": {"periodic": {"fit_window": "400d"}, "forecast": {}}},
         "processors.analytics.schedulers.periodic.fit_window"),
        ({"schedulers": {"periodic": {"min_fit_steps": -1}, "forecast": {}}},
         "processors.analytics.schedulers.periodic.min_fit_steps"),
        ({"schedulers": {"periodic": {"min_fit_steps": 10**7}, "forecast": {}}},
         "processors.analytics.schedulers.periodic.min_fit_steps"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert err.value.key == key, str(err.value)


def test_config_from_yaml_shape() -> None:
    cfg = config_from_dict({
        "queries": {"cost": {"event_type": "cost", "field": "value", "aggregation": "sum", "step": "1h"}},
        "models": {"fc": {"class": "forecast", "queries": ["cost"], "params": {"horizon": "7d"}}},
        "schedulers": {"p": {"fit_every": "1h", "infer_every": "5m", "fit_window": "30d"}},
    })  # fmt: skip
    assert cfg.models["fc"].model_class == "forecast" and cfg.model_queries("fc") == ["cost"]
    assert cfg.schedulers["p"].seconds("p") == (3600.0, 300.0, 30 * 86400.0)


def test_budget_periods_and_validation() -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC).timestamp()
    monthly = Budget.from_body({"amount": 10}, "t")
    assert period_bounds(monthly, now) == (datetime(2026, 11, 1, tzinfo=UTC).timestamp(),
                                           datetime(2026, 12, 1, tzinfo=UTC).timestamp())  # fmt: skip
    quarterly = Budget.from_body({"amount": 10, "period": "quarterly"}, "t")
    assert period_bounds(quarterly, now) == (datetime(2026, 10, 1, tzinfo=UTC).timestamp(),
                                             datetime(2027, 1, 1, tzinfo=UTC).timestamp())  # fmt: skip
    for body, field in (({"amount": 0}, "amount"), ({"amount": 1, "colour": "red"}, "colour"),
                        ({"amount": 1, "period": "custom", "start": "2026-01-02", "end": "2026-01-01"}, "end"),
                        ({"amount": 1, "start": "2026-01-01"}, "start"),
                        ({"amount": 1, "alert_within_days": -1}, "alert_within_days")):  # fmt: skip
        with pytest.raises(PermanentError) as err:
            Budget.from_body(body, "t")
        assert str(err.value).startswith(field), str(err.value)


def test_bulk_score_flags_only_the_spiking_series() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(100, 5, size=(500, 400))
    x[7, -2] = 400
    out = bulk_score(x, new=3)
    flagged = np.argwhere(out.anomaly_score > 1)
    assert [tuple(f) for f in flagged] == [(7, 1)]
    assert (out.yhat_lower < 100).all() and (out.yhat_upper > 100).all()


def test_bulk_score_band_of_a_never_negative_series_stays_at_or_above_zero() -> None:
    rng = np.random.default_rng(3)
    x = rng.lognormal(0, 1.5, size=(50, 300))
    x[0, 10] = -1.0  # this one has been negative: its band may be
    out = bulk_score(x, new=5)
    assert (out.yhat_lower[1:] >= 0).all()
    assert (out.yhat_lower[0] < 0).all()


def test_bulk_forecast_covers_a_seasonal_series() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(60 * 24 + 168)
    x = 50 + 20 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 2, size=(200, t.size))
    train, test = x[:, :-168], x[:, -168:]
    fc = bulk_forecast(train, 168, season=24, level=95)
    coverage = float(np.mean((test >= fc.yhat_lower) & (test <= fc.yhat_upper)))
    assert 0.9 <= coverage <= 1.0
    assert np.abs(fc.yhat - (50 + 20 * np.sin(2 * np.pi * t[-168:] / 24))).mean() < 1.5


def test_bulk_paths_through_the_model_runners() -> None:
    from analytics.service.config import ModelSpec
    from analytics.service.models import run_anomaly, run_forecast
    from analytics.service.series import Series

    rng = np.random.default_rng(3)
    ts = np.arange(0, 600 * 300, 300, dtype=np.int64) + 1_700_000_000
    series = [Series({"model": f"m{i}"}, ts, rng.normal(50, 2, ts.size), 300) for i in range(5)]
    series[2].values[-3] = 500
    spec = ModelSpec(model_class="anomaly")
    rows, records, since = run_anomaly("t", "q", "a", spec, series, None, write_from=None, bulk_threshold=2)
    assert [(r.labels["model"], r.ts) for r in records] == [("m2", float(ts[-3]))]
    assert records[0].detected_by == ("bulk_robust",) and "above the expected range" in records[0].explanation
    assert since == float(ts[-12]) and {r.name for r in rows} == {"anomaly_score", "yhat", "yhat_lower", "yhat_upper"}
    assert len([r for r in rows if r.name == "anomaly_score"]) == 5 * 12
    fc_rows, results = run_forecast("t", "q", "f", ModelSpec(model_class="forecast"), series, horizon="2h",
                                    bulk_threshold=2)  # fmt: skip
    assert len(results) == 5 and all(r["model"].startswith("bulk_swa") for r in results.values())
    assert len(fc_rows) == 5 * 24 * 3 and all(r.ts > ts[-1] for r in fc_rows)


def test_service_lifecycle_and_failing_listener(tmp_path: Any) -> None:
    from analytics.service import AnalyticsService, DerivedRow
    from hubcore.storage.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()
    try:
        AnalyticsService(None, store).shutdown()  # safe without start
        seen: list[DerivedRow] = []

        def broken(rows: Any) -> None:
            raise RuntimeError("exporter down")

        svc = AnalyticsService({"budget_every": "1h"}, store, on_series=broken)
        svc.add_series_listener(seen.extend)
        svc.start()
        svc.start()
        assert svc.running
        # a recent sample: the thread's first pass prunes rows older than retention_days
        svc.emit([DerivedRow("t", time.time() - 60, "anomaly_score", 0.5, {"for": "q", "model_alias": "m"}, "anomaly")])
        assert len(seen) == 1 and svc.repo.read_series("t", "anomaly_score")[0]["value"] == 0.5
        svc.shutdown()
        svc.shutdown()
        assert not svc.running
    finally:
        store.shutdown()


def test_alert_state_rows_carry_announced_anomalies_at_the_run_time() -> None:
    from analytics.service.derived import AnomalyRecord
    from analytics.service.models import ALERT_HOLD_S, alert_state_rows
    from analytics.service.series import Series

    ts = np.arange(0.0, 3600.0, 300.0) + 1_700_000_000
    newest = float(ts[-1])

    def series(model: str) -> Series:
        return Series({"model": model}, ts, np.ones(ts.size), 300)

    def record(model: str, at: float, score: float, alert: bool) -> AnomalyRecord:
        return AnomalyRecord("id", "t", "q", "a", {"model": model}, at, 9.0, score, "high", 1.0, ("robust",),
                             1.0, 0.0, 2.0, "", alert)  # fmt: skip

    records = [
        record("announced", newest - 600, 2.0, True),
        record("announced", newest, 3.5, False),  # still anomalous
        record("recovered", newest - 600, 2.0, True),  # announced, but the newest point is normal again
        record("unannounced", newest, 1.2, False),  # anomalous points that the debounce did not announce
        record("stale", newest - ALERT_HOLD_S - 300, 5.0, True),
        record("stale", newest, 1.5, False),
        record("fresh", newest, 6.0, True),  # announced at the newest point
    ]
    names = ["announced", "recovered", "unannounced", "stale", "fresh", "normal"]
    rows = alert_state_rows("t", "q", "a", [series(m) for m in names], records, now_s=newest + 420)
    assert [r.labels["model"] for r in rows] == names
    assert {r.labels["model"]: r.value for r in rows} == {"announced": 3.5, "recovered": 0.0, "unannounced": 0.0,
                                                          "stale": 0.0, "fresh": 6.0, "normal": 0.0}  # fmt: skip
    assert all(r.name == "anomaly_alert" and r.ts == newest + 420 and r.model == "anomaly" for r in rows)
    assert all(r.labels["for"] == "q" and r.labels["model_alias"] == "a" for r in rows)
    assert alert_state_rows("t", "q", "a", [Series({"model": "x"}, ts[:0], ts[:0], 300)], [], 0.0) == []


def test_bulk_path_announces_only_debounced_anomalies() -> None:
    from analytics.service.config import ModelSpec
    from analytics.service.models import run_anomaly
    from analytics.service.series import Series

    rng = np.random.default_rng(5)
    ts = np.arange(0, 600 * 300, 300, dtype=np.int64) + 1_700_000_000
    series = [Series({"model": f"m{i}"}, ts, rng.normal(50, 2, ts.size), 300) for i in range(4)]
    series[1].values[-2] = 500.0  # one strong spike: an alert
    series[2].values[-6:-3] = 58.5  # three points in a row a little high
    spec = ModelSpec(model_class="anomaly")
    _, records, _ = run_anomaly("t", "q", "a", spec, series, None, write_from=None, bulk_threshold=2)
    by_model: dict[str, list[tuple[float, bool, float]]] = {}
    for r in records:
        by_model.setdefault(r.labels["model"], []).append((r.ts, r.is_alert, r.anomaly_score))
    assert [alert for _, alert, _ in by_model["m1"]] == [True]
    run = by_model["m2"]
    assert len(run) >= 3 and run[-1][1]  # the third anomalous point in a row is announced
    for _, alert, score in run[:2]:  # the first two only if they are strong on their own
        assert alert == (score >= 1.5)
    assert all(alert == (score >= 1.5) for _, alert, score in by_model.get("m0", []) + by_model.get("m3", []))


def test_bulk_debounce_is_the_ensembles_row_by_row() -> None:
    from analytics.anomaly._rolling import persistent
    from analytics.service.models import _debounce

    scores = np.random.default_rng(0).choice([0.5, 1.2, 2.0, np.nan], size=(300, 12), p=[0.45, 0.4, 0.1, 0.05])
    scores = np.nan_to_num(scores)
    expected = np.array([persistent(row > 1.0, row, 3, 1.5) for row in scores])
    np.testing.assert_array_equal(_debounce(scores, 3, 1.5), expected)


def test_quiet_series_store_an_anomaly_alert_row_every_five_minutes_only(tmp_path: Any) -> None:
    from analytics.service import AnalyticsService, DerivedRow
    from analytics.service.series import labels_key
    from analytics.service.service import ALERT_REFRESH_S
    from hubcore.storage.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()
    try:
        svc = AnalyticsService(None, store)
        quiet, busy = {"for": "q", "model_alias": "m", "model": "a"}, {"for": "q", "model_alias": "m", "model": "b"}
        values = [0.0] * 6 + [2.0, 2.5, 0.0, 0.0]  # one run a minute; b is announced at minutes 6 and 7
        kept: list[tuple[str, int, float]] = []
        for minute, v in enumerate(values):
            t = 1_700_000_000.0 + 60 * minute
            rows = [DerivedRow("t", t, "anomaly_alert", 0.0, quiet, "anomaly"),
                    DerivedRow("t", t, "anomaly_alert", v, busy, "anomaly")]  # fmt: skip
            kept += [(r.labels["model"], minute, r.value) for r in svc._alert_rows(rows)]
        assert ALERT_REFRESH_S == 300.0
        assert [(m, v) for name, m, v in kept if name == "a"] == [(0, 0.0), (5, 0.0)]  # a refresh every 5 min
        # b: the first 0, the refresh, every announced run, and the run that ends the announcement
        assert [(m, v) for name, m, v in kept if name == "b"] == [(0, 0.0), (5, 0.0), (6, 2.0), (7, 2.5), (8, 0.0)]
        # the hourly prune forgets series not written for a day
        svc.run_once(1_700_000_000.0 + 5 * 60 + 86_400 - 60, tenants=[])  # a last written at minute 5
        assert len(svc._alert_written) == 2
        svc._last_prune = float("-inf")
        svc.run_once(1_700_000_000.0 + 5 * 60 + 86_400 + 60, tenants=[])  # b last written at minute 8
        assert list(svc._alert_written) == [("t", labels_key(busy))]
        svc.shutdown()
    finally:
        store.shutdown()


def test_the_hourly_prune_forgets_the_last_written_points_of_series_that_are_gone(tmp_path: Any) -> None:
    from analytics.service import AnalyticsService
    from hubcore.storage.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()
    try:
        svc = AnalyticsService(None, store)
        model = next(m for m in svc.config.models if svc.config.models[m].model_class == "anomaly")
        fit_window = svc.fit_window(model, "q")  # (an unknown query: the scheduler's fit_window)
        now = 1_800_000_000.0
        svc._written = {
            ("t", model, "q"): {"live": now - 60, "gone": now - fit_window - 86_400 - 1},
            ("t", model, "q2"): {"gone": now - fit_window - 86_400 - 1},  # every series gone: the key goes
            ("t", "retired-model", "q"): {"recent": now - 3600, "old": now - 86_401},  # a day for unknown models
        }
        svc.run_once(now, tenants=[])
        assert svc._written == {
            ("t", model, "q"): {"live": now - 60},
            ("t", "retired-model", "q"): {"recent": now - 3600},
        }
        svc.shutdown()
    finally:
        store.shutdown()


def test_marking_the_announced_anomaly_a_false_positive_ends_its_anomaly_alert() -> None:
    import pandas as pd

    from analytics.service.config import ModelSpec
    from analytics.service.models import alert_state_rows, build_detector, run_anomaly, score_series
    from analytics.service.series import Series

    rng = np.random.default_rng(11)
    ts = np.arange(0, 2000 * 300, 300, dtype=np.int64) + 1_700_000_000
    values = 100 + 10 * np.sin(2 * np.pi * np.arange(ts.size) / 288) + rng.normal(0, 2, ts.size)
    values[-8:] += 60  # an outage-like jump that is still going on
    series = [Series({"model": "gpt-4o"}, ts, values, 300)]
    spec = ModelSpec(model_class="anomaly")
    _, records, _ = run_anomaly("t", "q", "a", spec, series, None, write_from=None)
    [row] = alert_state_rows("t", "q", "a", series, records, float(ts[-1]) + 400)
    assert row.value > 1  # announced and still anomalous
    detector = build_detector(spec.params)
    scored = score_series(detector, series[0])
    onset = scored.loc[scored["is_anomaly"], "timestamp"].iloc[-1]
    assert onset >= pd.Timestamp(int(ts[-8]), unit="s")
    detector.mark_false_positive(onset)  # what POST /api/v1/anomalies/{id}/feedback does
    _, records, _ = run_anomaly("t", "q", "a", spec, series, detector.feedback, write_from=None)
    [row] = alert_state_rows("t", "q", "a", series, records, float(ts[-1]) + 460)
    assert row.value == 0.0  # the marked event stays silent: its alert resolves


def test_empty_buckets_raise_no_anomaly_on_either_path() -> None:
    # A latency percentile has no value in a bucket without requests. The ensemble carried the last value
    # forward (a flat stretch: "flat line" alerts, then a "burst" when data returned); the bulk path
    # repeated the last point's score over the gap, as anomalies without a value.
    from analytics.service.config import ModelSpec
    from analytics.service.models import run_anomaly
    from analytics.service.series import Series

    rng = np.random.default_rng(11)
    ts = np.arange(0, 3000 * 300, 300, dtype=np.int64) + 1_700_000_000
    t = np.arange(ts.size)

    def sparse(i: int) -> Series:
        v = 800 + 200 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 30, ts.size)
        for start, length in ((1500, 12), (2000, 36), (2600, 144)):
            v[start + i : start + i + length] = np.nan
        v[-8:-4] = np.nan  # and in the bulk path's newest points
        return Series({"model": f"m{i}"}, ts, v, 300)

    spec = ModelSpec(model_class="anomaly")
    gaps = [(float(ts[a]), float(ts[min(a + n + 60, ts.size - 1)])) for a, n in ((1500, 12), (2000, 36), (2600, 144))]
    for bulk_threshold in (1000, 2):  # the ensemble path, then the bulk path
        _, records, _ = run_anomaly("t", "q", "a", spec, [sparse(0), sparse(1)], None, write_from=None,
                                    bulk_threshold=bulk_threshold)  # fmt: skip
        assert all(np.isfinite(r.value) for r in records)
        # nothing during a gap or in the 5 hours after it (before: "high" anomalies as data returned)
        near = [(r.ts, r.anomaly_score, r.detected_by) for r in records if any(a <= r.ts <= b for a, b in gaps)]
        assert near == []
        assert [r for r in records if r.is_alert] == []


def test_the_default_window_lets_the_seasonal_detector_run_on_5_minute_queries() -> None:
    """It waits for three days of a series before choosing a season, then for residuals to scale (with 2
    days, the old default, it never ran on latency_p95 or error_rate)."""
    import numpy as np

    from analytics.anomaly.statistical import SeasonalResidualDetector
    from analytics.service.config import default_config, parse_duration

    cfg = default_config()
    window = parse_duration(cfg.schedulers["periodic"].fit_window, "fit_window")
    n = int(window // 300)
    ts = (np.arange(n) * 300 + 1_767_225_600).astype("datetime64[s]")
    x = 100 + 30 * np.sin(2 * np.pi * np.arange(n) / 288) + np.random.default_rng(0).normal(0, 2, n)
    x[-20] += 60  # a spike on the window's last day
    out = SeasonalResidualDetector(min_periods=30).score(x[:, None], ts)
    assert out.anomaly_score[-20] > 1 and np.isfinite(out.yhat[-1])  # 2 days: 0 and NaN (never started)


def test_anomaly_alert_lasts_as_long_as_the_incident_and_ends_with_it() -> None:
    """A one-hour latency spike: afterwards normal values had scored up to 7 on trailing statistics (a
    6-hour mean) and kept the paging series up; and judged against the expected range alone (which, without
    a season, follows the spike within half an hour) the alert had ended while the spike went on."""
    from analytics.service.config import ModelSpec
    from analytics.service.models import alert_state_rows, run_anomaly
    from analytics.service.series import Series

    rng = np.random.default_rng(3)
    n = 3000
    ts = np.arange(n, dtype=np.int64) * 300 + 1_767_225_600
    v = 100 + 5 * rng.standard_normal(n)
    v[2000:2012] += 80
    spec = ModelSpec(model_class="anomaly", params={"detectors": ["robust", "seasonal"]})

    def paging(end: int) -> tuple[float, list[float]]:
        s = Series({"model": "m"}, ts[:end], v[:end], 300)
        _, records, _ = run_anomaly("t", "latency_p95", "a", spec, [s], None)
        state = alert_state_rows("t", "latency_p95", "a", [s], records, float(ts[end - 1]) + 10)
        return state[0].value, [r.ts for r in records if r.ts >= ts[2012]]

    assert paging(2010)[0] > 1  # mid-spike, with the fast expected range already around it: firing
    value, after = paging(2100)
    assert value == 0.0 and after == []  # the 88 normal points after it: no anomaly, no alert
    # a 3-hour drop to near zero: it had stopped paging after 50 minutes (the bars took it in)
    v[2000:2012] -= 80
    v[2000:2036] = 2.0 + rng.random(36)
    assert all(paging(end)[0] > 1 for end in (2005, 2015, 2025, 2036))
    assert paging(2060)[0] == 0.0


def test_a_run_of_zero_error_rates_is_no_anomaly_when_only_high_values_are_reported() -> None:
    """A sparse error rate (no errors in about half of its buckets) with 14 empty buckets in a row: the
    volatility statistic reads a flat line and scored it 19, "critical"; alert_on: high (the default for
    error_rate and latency_p95) reports only values above their expected value."""
    from analytics.service.config import ModelSpec, default_config
    from analytics.service.models import run_anomaly
    from analytics.service.series import Series

    rng = np.random.default_rng(5)
    n = 4 * 288
    ts = np.arange(n, dtype=np.int64) * 300 + 1_767_225_600
    rate = np.where(rng.random(n) < 0.45, rng.uniform(0.01, 0.08, n), 0.0)
    rate[-30:-16] = 0.0  # an unusually long quiet stretch: good news
    rate[-5] = 0.6  # an error burst: bad news
    spec = ModelSpec(model_class="anomaly", params={"detectors": ["robust", "seasonal"], "min_periods": 30})
    s = [Series({"model": "m"}, ts, rate, 300)]
    _, both, _ = run_anomaly("t", "error_rate", "a", spec, s, None, write_from=None)
    _, high, _ = run_anomaly("t", "error_rate", "a", spec, s, None, write_from=None, alert_on="high")
    assert any(r.value == 0.0 for r in both)  # the flat stretch: flagged two-sided
    assert not any(r.value == 0.0 for r in high)
    assert any(r.ts == float(ts[-5]) for r in high)  # the burst still is
    assert default_config().queries["error_rate"].alert_on == "high"
    assert default_config().queries["requests_rate"].alert_on == "both"  # a drop in traffic is an outage


def test_the_hourly_cost_query_is_read_far_enough_back_for_the_seasonal_detector(tmp_path: Any) -> None:
    """A 4-day window of an hourly query is 96 points: the seasonal detector (three days and 150 points
    first) never ran on cost_usd_hourly, the robust detector alone scored it. Each query is now read for
    at least min_fit_steps (400) of its steps."""
    import numpy as np

    from analytics.anomaly.statistical import SeasonalResidualDetector
    from analytics.service import AnalyticsService

    svc = AnalyticsService(None, None, data_dir=tmp_path)  # type: ignore[arg-type]  # (no store: not run)
    model = next(m for m in svc.config.models if svc.config.models[m].model_class == "anomaly")
    assert svc.fit_window(model, "cost_usd_hourly") == 400 * 3600.0
    assert svc.fit_window(model, "latency_p95") == 4 * 86_400.0  # 5-minute steps: fit_window is longer
    n = int(svc.fit_window(model, "cost_usd_hourly") // 3600)
    ts = (np.arange(n) * 3600 + 1_767_225_600).astype("datetime64[s]")
    x = 100 + 30 * np.sin(2 * np.pi * np.arange(n) / 24) + np.random.default_rng(0).normal(0, 2, n)
    i = n - 24 + (6 - (n - 24)) % 24  # the day's peak hour, on the last day
    x[i] = 100 + 30 * np.sin(2 * np.pi * (i + 12) / 24)  # at the level of the night's trough
    out = SeasonalResidualDetector(min_periods=30).score(x[:, None], ts)
    assert out.anomaly_score[i] > 1 and np.isfinite(out.yhat[-1])
    short = SeasonalResidualDetector(min_periods=30).score(x[-96:, None], ts[-96:])
    assert short.anomaly_score.max() == 0  # 4 days: never started


def test_a_bucket_whose_value_changed_is_rescored_and_its_points_replaced(tmp_path: Any) -> None:
    """A pass that ran while a backfill had sent part of a bucket scored it high; the next pass sees the
    whole bucket: its anomaly_score and yhat* points are written again and read as the new ones (one row
    each), matching its anomaly record, and buckets whose value did not change are not written again."""
    from analytics.service import AnalyticsService
    from analytics.service.series import Series
    from hubcore.storage.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()
    try:
        svc = AnalyticsService(None, store)
        svc.config.bulk_threshold = 2  # the vectorised path: fast, and scores the newest points
        rng = np.random.default_rng(3)
        ts = np.arange(0, 400 * 60, 60, dtype=np.int64) + 1_700_000_000
        base = [rng.normal(50, 2, ts.size) for _ in range(3)]
        bucket = float(ts[-1])
        data: list[list[Series]] = []

        def load(tenant: str, query: str, start_s: float, end_s: float) -> list[Series]:
            return data[-1]

        svc.load = load  # type: ignore[method-assign]
        first = [v.copy() for v in base]
        first[0][-1] = 900.0  # the stale pass: a burst, as far as it could see
        data.append([Series({"model": f"m{i}"}, ts, v, 60) for i, v in enumerate(first)])
        svc.run_model("t", "anomaly_ensemble", "requests_rate", bucket + 30)
        data.append([Series({"model": f"m{i}"}, ts, v, 60) for i, v in enumerate(base)])  # the whole bucket: normal
        rows, _ = svc.run_model("t", "anomaly_ensemble", "requests_rate", bucket + 90)

        def points(name: str, model: str) -> list[float]:
            return [r["value"] for r in svc.repo.read_series("t", name, query="requests_rate", start_s=bucket,
                                                              end_s=bucket + 1) if r["labels"]["model"] == model]  # fmt: skip

        [score] = points("anomaly_score", "m0")
        assert score < 1.0, score  # the rescored value, not the stale pass's
        assert all(len(points(n, "m0")) == 1 for n in ("yhat", "yhat_lower", "yhat_upper"))
        assert not [a for a in svc.repo.list_anomalies("t", start_s=bucket, end_s=bucket + 1)
                    if a["labels"]["model"] == "m0"]  # fmt: skip
        # only m0's changed bucket was written again (4 points), with the 0 that withdraws its announcement
        # (the quiet series' 0 is not stored again within ALERT_REFRESH_S)
        alert = svc.repo.read_series("t", "anomaly_alert", query="requests_rate", start_s=bucket)
        m0 = [(r["ts"] - bucket, r["value"] > 0) for r in alert if r["labels"]["model"] == "m0"]
        assert m0 == [(30, True), (90, False)]
        assert rows == 4 + 1
        again, _ = svc.run_model("t", "anomaly_ensemble", "requests_rate", bucket + 150)
        assert again <= 3  # nothing changed: no point written again
        svc.shutdown()
    finally:
        store.shutdown()


def test_a_run_that_no_longer_finds_an_announced_series_withdraws_its_anomaly_alert(tmp_path: Any) -> None:
    """An announced series that the query no longer yields (or that has too few points to be scored) gets
    its 0 on the next run, so the alert rule (which follows the newest point) resolves then."""
    from analytics.service import AnalyticsService
    from analytics.service.series import Series
    from hubcore.storage.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()
    try:
        svc = AnalyticsService(None, store)
        svc.config.bulk_threshold = 2
        rng = np.random.default_rng(4)
        ts = np.arange(0, 400 * 60, 60, dtype=np.int64) + 1_700_000_000
        values = [rng.normal(50, 2, ts.size) for _ in range(3)]
        values[0][-1] = 900.0
        data = [Series({"model": f"m{i}"}, ts, v, 60) for i, v in enumerate(values)]
        svc.load = lambda *_: data  # type: ignore[method-assign]
        now = float(ts[-1]) + 30
        svc.run_model("t", "anomaly_ensemble", "requests_rate", now)
        data = data[1:]  # m0 is gone
        svc.run_model("t", "anomaly_ensemble", "requests_rate", now + 60)
        data = []  # nothing left to score
        svc.run_model("t", "anomaly_ensemble", "requests_rate", now + 120)
        m0 = [(r["ts"] - now, r["value"] > 0) for r in svc.repo.read_series("t", "anomaly_alert", start_s=now)
              if r["labels"]["model"] == "m0"]  # fmt: skip
        assert m0 == [(0, True), (60, False)]
        svc.shutdown()
    finally:
        store.shutdown()
