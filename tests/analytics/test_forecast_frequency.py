"""Frequency inference, regularisation and horizon parsing."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.forecast.frequency import (
    ForecastInputError,
    infer_frequency,
    parse_horizon,
    regularize,
    season_lengths,
)


def _frame(freq: str, n: int = 100) -> pd.DataFrame:
    return pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=n, freq=freq), "y": range(n)})


@pytest.mark.parametrize(("freq", "alias", "seasons"), [("h", "h", [24, 168]), ("D", "D", [7]),
                                                        ("15min", "15min", [96, 672])])
def test_infers_regular_frequency(freq: str, alias: str, seasons: list[int]) -> None:
    inferred = infer_frequency(_frame(freq)["ds"])
    assert inferred.alias == alias
    assert season_lengths(inferred) == seasons


def test_tolerates_a_few_missing_timestamps_and_interpolates() -> None:
    df = _frame("h").drop(index=[10, 50, 51]).reset_index(drop=True)
    freq = infer_frequency(df["ds"])
    assert freq.alias == "h"
    regular, report = regularize(df, freq)
    assert len(regular) == 100 and report.inserted == 3
    assert regular["y"].iloc[50] == pytest.approx(50.0)
    assert "interpolated" in report.describe()


def test_duplicates_are_averaged() -> None:
    df = pd.concat([_frame("D", 20), _frame("D", 1).assign(y=10.0)])
    regular, report = regularize(df, infer_frequency(df["ds"]))
    assert report.duplicates == 1 and regular["y"].iloc[0] == pytest.approx(5.0)


def test_irregular_timestamps_are_rejected() -> None:
    ds = pd.Series(pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 01:37",
                                   "2024-01-01 03:00", "2024-01-01 04:00"]))
    with pytest.raises(ForecastInputError, match="irregular"):
        infer_frequency(ds)


def test_too_many_gaps_are_rejected() -> None:
    df = _frame("h").drop(index=range(10, 40))
    with pytest.raises(ForecastInputError, match="missing"):
        infer_frequency(df["ds"])


@pytest.mark.parametrize(("text", "freq", "steps"), [("48", "h", 48), ("7d", "h", 168), ("168h", "h", 168),
                                                      ("2w", "D", 14), ("30d", "D", 30), (12, "D", 12)])
def test_parse_horizon(text: str | int, freq: str, steps: int) -> None:
    assert parse_horizon(text, infer_frequency(_frame(freq)["ds"])) == steps


@pytest.mark.parametrize("text", ["0", "-3", "abc", "36h", "7x"])
def test_parse_horizon_rejects_bad_values(text: str) -> None:
    with pytest.raises(ForecastInputError):
        parse_horizon(text, infer_frequency(_frame("D")["ds"]))
