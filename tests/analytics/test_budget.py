"""Budget math: spend forecast to the period end and the exhaustion time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.budget import forecast_budget, to_per_period


def _daily(values: np.ndarray, start: str = "2024-01-01") -> pd.DataFrame:
    return pd.DataFrame({"ds": pd.date_range(start, periods=len(values), freq="D"), "y": values})


def test_linear_spend_exhaustion_date() -> None:
    # 10 per day on Jan 1 .. Feb 9 (40 days, 400 spent by Feb 10 00:00, the end of the Feb 9 bucket); 600
    # is reached 20 days later, at the end of Feb 29 (Mar 1 00:00); the period ends Apr 1 (51 days left)
    result = forecast_budget(_daily(np.full(40, 10.0)), budget=600.0, period_end="2024-04-01")
    assert result.spent_to_date == pytest.approx(400.0)
    assert result.exhaustion == pd.Timestamp("2024-03-01")
    assert result.forecast_total == pytest.approx(400.0 + 10.0 * 51)
    assert result.probability_exhausted == pytest.approx(1.0)
    assert result.path["cumulative"].iloc[-1] == pytest.approx(result.forecast_total)


def test_cumulative_input_gives_the_same_answer() -> None:
    cumulative = np.cumsum(np.full(40, 10.0))
    result = forecast_budget(_daily(cumulative), budget=600.0, period_end="2024-04-01", cumulative=True)
    assert result.spent_to_date == pytest.approx(400.0)
    assert result.exhaustion == pd.Timestamp("2024-03-01")


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
    # the Jan 10 bucket (Jan 10 00:00 .. Jan 11 00:00) brings the total to 100: spent at its end
    result = forecast_budget(_daily(np.full(40, 10.0)), budget=100.0, period_end="2024-03-31")
    assert result.exhaustion == pd.Timestamp("2024-01-11")
    assert result.exhaustion_earliest == result.exhaustion_latest == result.exhaustion
    assert result.probability_exhausted == 1.0
    assert result.forecast_total == pytest.approx(400.0 + 10.0 * 50)  # the overrun is still forecast


def test_hourly_buckets_are_labelled_by_their_start() -> None:
    # 240 hours of 1.0 from Nov 1 00:00: 240 spent by Nov 11 00:00; 250 is reached 10 h later. The forecast
    # covers the 480 hours to the (exclusive) period end, its last bucket the one of Nov 30 23:00.
    ds = pd.date_range("2026-11-01", periods=240, freq="h")
    df = pd.DataFrame({"ds": ds, "y": 1.0})
    result = forecast_budget(df, 250.0, "2026-12-01", period_start="2026-11-01", n_paths=500)
    assert result.exhaustion == pd.Timestamp("2026-11-11 10:00")
    assert result.exhaustion_earliest == result.exhaustion_latest == result.exhaustion
    assert len(result.path) == 480
    assert result.path["ds"].iloc[0] == pd.Timestamp("2026-11-11 00:00")
    assert result.path["ds"].iloc[-1] == pd.Timestamp("2026-11-30 23:00")
    assert result.forecast_total == pytest.approx(720.0)
    # interpolated inside the crossing bucket, from its start
    assert forecast_budget(df, 250.5, "2026-12-01", n_paths=500).exhaustion == pd.Timestamp("2026-11-11 10:30")
    # a budget spent in the past: when the total crossed it (the end of the 11-09 07:00 bucket)
    spent = forecast_budget(df, 200.0, "2026-12-01", period_start="2026-11-01", n_paths=500)
    assert spent.exhaustion == pd.Timestamp("2026-11-09 08:00")
    assert spent.forecast_total == pytest.approx(720.0)


def test_the_current_hour_is_counted_once() -> None:
    # 1.0 per hour, the last bucket 00:00 (25 in the period by 01:00); at 01:15, 0.25 of the current hour
    # is spent: 0.75 h of it and 8 h after it are left before the 10:00 period end, not 10 whole buckets
    # on top of the 0.25
    ds = pd.date_range(end="2026-11-27 00:00", periods=72, freq="h")
    df = pd.DataFrame({"ds": ds, "y": 1.0})
    result = forecast_budget(df, 1e6, "2026-11-27 10:00", period_start="2026-11-26", n_paths=500,
                             as_of="2026-11-27 01:15", partial_spend=0.25)  # fmt: skip
    assert result.spent_to_date == pytest.approx(25.0 + 0.25)
    assert result.forecast_total == pytest.approx(25.0 + 0.25 + 0.75 + 8.0)
    assert len(result.path) == 9 and result.path["ds"].iloc[-1] == pd.Timestamp("2026-11-27 09:00")
    # a budget of 27 is reached 1.75 h after as_of, at 03:00
    assert forecast_budget(df, 27.0, "2026-11-27 10:00", period_start="2026-11-26", n_paths=500,
                           as_of="2026-11-27 01:15", partial_spend=0.25).exhaustion == pd.Timestamp("2026-11-27 03:00")
    # a period end inside the current hour: only up to it
    short = forecast_budget(df, 1e6, "2026-11-27 01:45", period_start="2026-11-26", n_paths=500,
                            as_of="2026-11-27 01:15", partial_spend=0.25)  # fmt: skip
    assert short.forecast_total == pytest.approx(25.25 + 0.5)
    with pytest.raises(ValueError, match="as_of"):
        forecast_budget(df, 10.0, "2026-11-28", as_of="2026-11-27 03:00")


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
        r = forecast_budget(past, 1e9, ds[-1] + pd.Timedelta(hours=1), n_paths=1000, forecaster=fc)
        hits += r.forecast_total_lower <= y.sum() <= r.forecast_total_upper
    assert hits >= 14


@pytest.mark.parametrize(("hours", "at"), [(24, 21), (48, 24), (48, 45), (72, 69)])
def test_a_one_hour_spike_does_not_move_the_level(hours: int, at: int) -> None:
    # A day to three of hourly spend at 26.4 USD/h, with an incident at 10x across two buckets (132, 68).
    # Too short for a season (or with only two cycles of it), the outlier step did not run (or took half
    # the spike for "season"): the next day came out at 34-37 USD/h, its 95 % interval above 633.6.
    from analytics.forecast import EnsembleConfig, EnsembleForecaster

    rng = np.random.default_rng(3)
    y = 26.4 + rng.normal(0, 1.5, hours)
    y[at], y[at + 1] = 132.0, 68.0
    ds = pd.date_range("2026-11-26 10:00", periods=hours, freq="h")
    fc = EnsembleForecaster(freq="h", config=EnsembleConfig.totals(95))
    end = ds[-1] + pd.Timedelta(hours=25)
    r = forecast_budget(pd.DataFrame({"ds": ds, "y": y}), 1e9, end, period_start=ds[-1] + pd.Timedelta(hours=1),
                        n_paths=1000, forecaster=fc)  # fmt: skip
    steady = 26.4 * 24
    assert abs(r.forecast_total - steady) < 0.08 * steady, r.forecast_total
    assert r.forecast_total_lower <= steady <= r.forecast_total_upper


def test_a_period_that_has_not_begun_counts_only_its_own_spend() -> None:
    # 10 per day up to Feb 10; a March budget of 100: 310 USD in March, spent by Mar 11 00:00. The spend
    # from Feb 10 to Mar 1 was counted too (500 USD, exhausted on Feb 19), before March had begun.
    result = forecast_budget(_daily(np.full(40, 10.0)), budget=100.0, period_end="2024-04-01",
                             period_start="2024-03-01")  # fmt: skip
    assert result.spent_to_date == 0.0
    assert result.forecast_total == pytest.approx(310.0)
    assert result.exhaustion == pd.Timestamp("2024-03-11")
