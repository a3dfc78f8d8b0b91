"""Budget math: spend forecast to the period end and the exhaustion time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.budget import forecast_budget, to_per_period


def _daily(values: np.ndarray, start: str = "2024-01-01") -> pd.DataFrame:
    return pd.DataFrame({"ds": pd.date_range(start, periods=len(values), freq="D"), "y": values})


def test_linear_spend_exhaustion_date() -> None:
    # 10 per day from Jan 1 to Feb 9 (40 days, 400 spent); 600 is reached 20 days later, on Feb 29
    result = forecast_budget(_daily(np.full(40, 10.0)), budget=600.0, period_end="2024-03-31")
    assert result.spent_to_date == pytest.approx(400.0)
    assert result.exhaustion == pd.Timestamp("2024-02-29")
    assert result.forecast_total == pytest.approx(400.0 + 10.0 * 51)
    assert result.probability_exhausted == pytest.approx(1.0)
    assert result.path["cumulative"].iloc[-1] == pytest.approx(result.forecast_total)


def test_cumulative_input_gives_the_same_answer() -> None:
    cumulative = np.cumsum(np.full(40, 10.0))
    result = forecast_budget(_daily(cumulative), budget=600.0, period_end="2024-03-31", cumulative=True)
    assert result.spent_to_date == pytest.approx(400.0)
    assert result.exhaustion == pd.Timestamp("2024-02-29")


def test_not_exhausted_within_the_period_is_none() -> None:
    result = forecast_budget(_daily(np.full(40, 10.0)), budget=10_000.0, period_end="2024-03-31")
    assert result.exhaustion is None and result.exhaustion_earliest is None
    assert result.probability_exhausted == 0.0
    assert result.remaining == pytest.approx(9_600.0)


def test_noisy_spend_has_an_interval_around_the_exhaustion() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(24 * 14)
    hourly = 5 + 2 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, len(t))
    df = pd.DataFrame({"ds": pd.date_range("2024-03-01", periods=len(t), freq="h"), "y": hourly})
    spent = float(hourly.sum())  # about 1,680 over 14 days; ~120 per day
    result = forecast_budget(df, budget=spent + 120 * 7, period_end="2024-03-31 23:00")
    assert result.exhaustion is not None
    assert abs(result.exhaustion - pd.Timestamp("2024-03-22")) < pd.Timedelta("1D")
    assert result.exhaustion_earliest is not None and result.exhaustion_latest is not None
    assert result.exhaustion_earliest <= result.exhaustion <= result.exhaustion_latest
    assert result.forecast_total_lower <= result.forecast_total <= result.forecast_total_upper


def test_already_overspent() -> None:
    result = forecast_budget(_daily(np.full(40, 10.0)), budget=100.0, period_end="2024-03-31")
    assert result.exhaustion == pd.Timestamp("2024-01-10")
    assert result.probability_exhausted == 1.0


def test_counter_reset_is_handled() -> None:
    values = pd.Series([1.0, 3.0, 6.0, 2.0, 5.0])
    assert to_per_period(values).tolist() == [0.0, 2.0, 3.0, 2.0, 3.0]


def test_bad_budget() -> None:
    with pytest.raises(ValueError, match="budget"):
        forecast_budget(_daily(np.full(40, 10.0)), budget=0.0, period_end="2024-03-31")


@pytest.mark.parametrize("kind", ["skewed", "declining", "intermittent"])
def test_the_central_forecast_lies_inside_its_interval(kind: str) -> None:
    # Clipping each drawn path at 0 used to turn the spread of far steps into spend: the total's interval
    # came out above (skewed: 5,182..6,768 around 2,476) or below (declining: 196..233 around 1,314) it.
    rng = np.random.default_rng(1)
    n = 48 if kind != "intermittent" else 24 * 28
    if kind == "skewed":
        y = rng.exponential(3.0, n)
    elif kind == "declining":
        y = np.maximum(0.0, np.linspace(6, 1, n) + rng.normal(0, 1, n))
    else:
        y = np.where(rng.random(n) < 0.2, rng.exponential(10.0, n), 0.0)
    ds = pd.date_range("2026-01-01", periods=n, freq="h")
    result = forecast_budget(pd.DataFrame({"ds": ds, "y": y}), 1e9, ds[-1] + pd.Timedelta(days=28), n_paths=1000)
    assert result.spent_to_date <= result.forecast_total_lower < result.forecast_total < result.forecast_total_upper
    path = result.path
    assert (path["cumulative_lower"] <= path["cumulative"] + 1e-9).all()
    assert (path["cumulative"] <= path["cumulative_upper"] + 1e-9).all()
    assert (np.diff(path["cumulative_lower"]) >= 0).all()  # spend is never negative


def test_the_interval_of_a_total_covers_it_about_as_often_as_it_says() -> None:
    # 9 days of a stationary hourly spend after 21 days: 95 % intervals of the total. With independent
    # steps they covered it 10 times in these 20 (a level error moves every step; noise averages out).
    from analytics.forecast import EnsembleConfig, EnsembleForecaster

    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(20):
        y = np.maximum(0.0, 5 + rng.normal(0, 1.5, 24 * 30))
        ds = pd.date_range("2026-01-01", periods=len(y), freq="h")
        past = pd.DataFrame({"ds": ds[: 24 * 21], "y": y[: 24 * 21]})
        fc = EnsembleForecaster(freq="h", config=EnsembleConfig.totals(95))
        r = forecast_budget(past, 1e9, ds[-1], n_paths=1000, forecaster=fc)
        hits += r.forecast_total_lower <= y.sum() <= r.forecast_total_upper
    assert hits >= 14
