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
