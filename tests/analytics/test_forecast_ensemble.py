"""Ensemble forecaster: weights, fallback, coverage, breaches and exceedance probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from statsforecast.models import MSTL, Naive, SeasonalNaive

from analytics.forecast import (
    EnsembleForecaster,
    breach_series,
    profile_series,
    select_models,
)
from analytics.forecast.calibration import Calibration
from analytics.forecast.profile import clean_outliers


def _seasonal(n: int = 24 * 21, seed: int = 0, uid: str = "a") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 100 + 30 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 5, n)
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2024-01-01", periods=n, freq="h"), "y": y})


class Exploding:
    """A configured model that always raises, to exercise the fallback."""

    def __init__(self, alias: str = "exploding") -> None:
        self.alias = alias
        self.season_length = 1

    def forecast(self, y: np.ndarray, h: int, **_: Any) -> dict[str, np.ndarray]:
        raise RuntimeError("boom")


FAST = [SeasonalNaive(season_length=24, alias="snaive24"), MSTL(season_length=24, alias="mstl")]


def test_output_shape_and_weights_sum_to_one() -> None:
    fc = EnsembleForecaster(models=FAST, freq="h")
    out = fc.forecast(_seasonal(), h=48)
    assert list(out.columns) == ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model"]
    assert len(out) == 48 and out["ds"].iloc[0] == pd.Timestamp("2024-01-22 00:00")
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    weights = fc.results_["a"].weights
    assert sum(weights.values()) == pytest.approx(1.0)
    assert all(w > 0 for w in weights.values())


def test_failing_model_gets_no_weight() -> None:
    fc = EnsembleForecaster(models=[Exploding(), *FAST], freq="h")
    fc.forecast(_seasonal(), h=24)
    result = fc.results_["a"]
    assert "exploding" not in result.weights and "exploding" in result.failures
    assert sum(result.weights.values()) == pytest.approx(1.0)


def test_fallback_when_every_model_fails() -> None:
    fc = EnsembleForecaster(models=[Exploding("a1"), Exploding("a2")], freq="h")
    out = fc.forecast(_seasonal(), h=24)
    assert out["model"].iloc[0].startswith("fallback")
    assert np.isfinite(out[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()


def test_aliases_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        EnsembleForecaster(models=[Naive(alias="x"), SeasonalNaive(24, alias="x")])


def test_interval_coverage_on_synthetic_seasonal_series() -> None:
    hits = []
    for seed in range(6):
        df = _seasonal(24 * 21 + 48, seed=seed)
        history, actual = df.iloc[:-48], df["y"].to_numpy()[-48:]
        out = EnsembleForecaster(models=FAST, freq="h", level=95).forecast(history, h=48)
        hits.append((actual >= out["yhat_lower"].to_numpy()) & (actual <= out["yhat_upper"].to_numpy()))
    coverage = float(np.mean(hits))
    assert 0.85 <= coverage <= 1.0, coverage


def test_multiple_series_and_inferred_frequency() -> None:
    df = pd.concat([_seasonal(seed=1, uid="a"), _seasonal(seed=2, uid="b")])
    out = EnsembleForecaster(models=FAST).forecast(df, h=12)
    assert out.groupby("unique_id").size().to_dict() == {"a": 12, "b": 12}


def test_custom_column_names() -> None:
    df = _seasonal().rename(columns={"unique_id": "series", "ds": "time", "y": "value"})
    out = EnsembleForecaster(models=FAST).forecast(df, h=6, id_col="series", time_col="time", target_col="value")
    assert {"series", "time", "yhat"} <= set(out.columns)


def test_daily_series_with_automatic_models() -> None:
    n = 120
    t = np.arange(n)
    y = 50 + 10 * (t % 7 == 5) + 0.1 * t + np.random.default_rng(3).normal(0, 1, n)
    df = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=n, freq="D"), "y": y})
    fc = EnsembleForecaster()
    out = fc.forecast(df, h=14)
    assert len(out) == 14 and sum(fc.results_["series"].weights.values()) == pytest.approx(1.0)


def test_selection_follows_characteristics() -> None:
    y = _seasonal(24 * 28)["y"].to_numpy()
    aliases = {m.alias for m in select_models(profile_series(y, [24, 168]))}
    assert "mstl" in aliases and "snaive24" in aliases
    intermittent = np.where(np.arange(200) % 5 == 0, 3.0, 0.0)
    aliases = {m.alias for m in select_models(profile_series(intermittent, [24, 168]))}
    assert "croston" in aliases
    assert [m.alias for m in select_models(profile_series(np.full(50, 2.0), [7]))] == ["naive"]


def test_autoets_is_not_given_a_season_longer_than_a_day_of_hours() -> None:
    # 5-minute data: AutoETS on its daily season of 288 took about a minute per fit, and `hub forecast`
    # ran for minutes on 2,000 points; statsforecast's ETS does not forecast seasons over 24 either
    t = np.arange(2000)
    y = 100 + 10 * np.sin(2 * np.pi * t / 288) + np.random.default_rng(0).normal(0, 1, t.size)
    aliases = [m.alias for m in select_models(profile_series(y, [288, 2016]))]
    assert "ets" not in aliases and {"mstl", "theta", "snaive288"} <= set(aliases)
    daily = 50 + 10 * (np.arange(120) % 7 == 5) + np.random.default_rng(1).normal(0, 1, 120)
    assert "ets" in [m.alias for m in select_models(profile_series(daily, [7]))]


def test_outliers_are_replaced() -> None:
    y = _seasonal(24 * 14)["y"].to_numpy()
    spiked = y.copy()
    spiked[100] += 500
    cleaned, count = clean_outliers(spiked, 24, k=6)
    assert count >= 1 and abs(cleaned[100] - y[100]) < 30


def test_level_shift_is_detected() -> None:
    y = np.concatenate([np.full(300, 10.0), np.full(200, 40.0)]) + np.random.default_rng(0).normal(0, 1, 500)
    shift = profile_series(y, [24]).level_shift_at
    assert shift is not None and abs(shift - 300) <= 30


def test_breach_series_flags_values_outside_the_interval() -> None:
    fc = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=4, freq="h"), "yhat_lower": 0.0,
                       "yhat_upper": 10.0})
    actual = fc[["ds"]].assign(y=[5.0, 11.0, -1.0, 10.0])
    out = breach_series(actual, fc)
    assert out["breach"].tolist() == [0, 1, 1, 0]
    assert out["direction"].tolist() == [0, 1, -1, 0]


def test_exceedance_probability_is_consistent() -> None:
    rng = np.random.default_rng(0)
    cal = Calibration.from_errors(rng.normal(0, 1, (3, 48)))
    yhat = np.zeros(48)
    far, near = cal.exceedance_probability(yhat, 100.0), cal.exceedance_probability(yhat, 1.0)
    assert far == 0.0 and 0.5 < near <= 1.0
    one_step = cal.exceedance_probability(yhat, 1.0, start=0, stop=1)
    assert one_step == pytest.approx(float(cal.step_exceedance(yhat, 1.0)[0]), abs=0.05)
    assert one_step < near
    lower, upper = cal.interval(yhat, 95)
    assert upper[0] == pytest.approx(1.96, rel=0.25) and (upper >= -lower - 1e-9).all()


def test_a_level_error_shared_by_a_window_is_shared_by_the_paths() -> None:
    rng = np.random.default_rng(0)
    offsets = np.array([[2.0], [-2.0], [3.0]])  # each validation window is off by its own level
    cal = Calibration.from_errors(offsets + rng.normal(0, 1, (3, 48)))
    plain = Calibration.from_errors(rng.normal(0, 1, (3, 48)))
    assert cal.shared > 0.5 and plain.shared < 0.1
    independent = Calibration(cal.bucket_scale, cal.bucket_len, cal.h_val, cal.z, cal.rho, shared=0.0)
    yhat = np.zeros(48)
    with_level, without = cal.sample_paths(yhat, 4000), independent.sample_paths(yhat, 4000)
    # the same marginal law at every step (the per-step intervals do not change) ...
    assert np.quantile(with_level[:, 10], [0.05, 0.5, 0.95]) == pytest.approx(
        np.quantile(without[:, 10], [0.05, 0.5, 0.95]), abs=0.25 * float(cal.scale(48)[10])
    )
    # ... but sums over the horizon spread as the level error says, not as independent steps
    assert with_level.sum(axis=1).std() > 3 * without.sum(axis=1).std()


def test_series_forecast_exceedance_by_timestamps() -> None:
    fc = EnsembleForecaster(models=FAST, freq="h")
    out = fc.forecast(_seasonal(), h=24)
    result = fc.results_["a"]
    peak = float(out["yhat"].max())
    p_all = result.exceedance_probability(peak, start=out["ds"].iloc[0], end=out["ds"].iloc[-1])
    p_none = result.exceedance_probability(peak + 1e6)
    assert 0.3 < p_all <= 1.0 and p_none == 0.0


def test_bulk_config_with_worker_processes() -> None:
    from analytics.forecast import EnsembleConfig

    df = pd.concat([_seasonal(24 * 15, seed=i, uid=f"s{i}") for i in range(4)])
    fc = EnsembleForecaster(config=EnsembleConfig.bulk(), n_jobs=2)
    out = fc.forecast(df, h=24)
    assert sorted(fc.results_) == ["s0", "s1", "s2", "s3"] and len(out) == 96
    assert out[["yhat", "yhat_lower", "yhat_upper"]].notna().all().all()


def test_gaps_are_filled_and_config_level_is_kept() -> None:
    from analytics.forecast import EnsembleConfig

    df = _seasonal().drop(index=[100, 101, 250])
    fc = EnsembleForecaster(models=FAST, config=EnsembleConfig(level=80.0))
    assert fc.config.level == 80.0
    out = fc.forecast(df, h=24)
    assert out["ds"].iloc[0] == pd.Timestamp("2024-01-22 00:00")
    narrow = (out["yhat_upper"] - out["yhat_lower"]).mean()
    wide = EnsembleForecaster(models=FAST, level=99).forecast(df, h=24)
    assert (wide["yhat_upper"] - wide["yhat_lower"]).mean() > narrow


def test_the_totals_configuration_scores_the_error_of_each_windows_sum() -> None:
    # Step by step, naive (the last value repeated) is within the cutoff of SES on noise and took ~45 %
    # of the weight; its level rests on one observation, so a 7-day total was off by ~10 % more often.
    from analytics.forecast import EnsembleConfig

    rng = np.random.default_rng(3)
    ds = pd.date_range("2026-01-01", periods=504, freq="h")
    step_naive, total_naive = [], []
    for _ in range(6):
        df = pd.DataFrame({"ds": ds, "y": np.maximum(0, 5 + rng.normal(0, 1.5, ds.size))})
        for cfg, out in ((EnsembleConfig.bulk(), step_naive), (EnsembleConfig.totals(), total_naive)):
            fc = EnsembleForecaster(freq="h", config=cfg)
            fc.forecast(df, h=168)
            out.append(next(iter(fc.results_.values())).weights.get("naive", 0.0))
    assert EnsembleConfig.totals().objective == "total" and EnsembleConfig().objective == "step"
    assert max(total_naive) < 0.1 < np.mean(step_naive)


@pytest.mark.parametrize("ties", [False, True])
def test_exceedance_probability_is_that_of_the_sampled_paths(ties: bool) -> None:
    """It is decided in the copula's space (the threshold mapped once per step) rather than on sampled
    values: the same paths, so the same answer, for any threshold and window (ties in the errors too)."""
    from analytics.forecast.calibration import Calibration

    rng = np.random.default_rng(1)
    errs = rng.normal(0, 1, (5, 48)).cumsum(axis=1) * 0.3 + rng.standard_t(3, (5, 48))
    cal = Calibration.from_errors(np.round(errs) if ties else errs)
    assert cal.rho > 0 and cal.shared > 0
    y = np.linspace(0, 3, 200)
    for threshold in (-50.0, 0.5, 2.0, 4.0, 50.0):
        for start, stop in ((0, 200), (100, 200), (10, 11)):
            sampled = cal.sample_paths(y[:stop], 500)[:, start:stop]
            expected = float(np.mean(np.any(sampled > threshold, axis=1)))
            assert cal.exceedance_probability(y, threshold, start, stop, n_paths=500) == expected
