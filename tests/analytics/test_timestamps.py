"""Timestamp parsing shared by ``hub detect`` and ``hub forecast``: ISO strings and epoch numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.timestamps import epoch_unit, parse_timestamps

T = pd.Timestamp("2024-01-01 00:00:00")


@pytest.mark.parametrize(("scale", "unit"), [(1, "s"), (10**3, "ms"), (10**6, "us"), (10**9, "ns")])
def test_epoch_numbers_in_every_unit(scale: int, unit: str) -> None:
    seconds = np.array([1704067200, 1704067500])
    assert epoch_unit(seconds * scale) == unit
    assert parse_timestamps(pd.Series(seconds * scale)).tolist() == [T, T + pd.Timedelta("5min")]
    as_float = parse_timestamps(pd.Series((seconds * scale).astype(float)))
    assert as_float.tolist() == [T, T + pd.Timedelta("5min")]


def test_strings_with_and_without_offsets_become_naive_utc() -> None:
    ts = parse_timestamps(pd.Series(["2024-01-01 00:00:00", "2024-01-01T01:05:00+01:00", "2024-01-01T00:10:00Z"]))
    assert ts.dtype == "datetime64[ns]"
    assert ts.tolist() == [T, T + pd.Timedelta("5min"), T + pd.Timedelta("10min")]


def test_aware_datetimes_are_converted_to_utc() -> None:
    col = pd.Series(pd.date_range("2024-01-01 01:00", periods=2, freq="h", tz="Europe/Paris"))
    assert parse_timestamps(col).tolist() == [T, T + pd.Timedelta("1h")]


def test_unparseable_text_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_timestamps(pd.Series(["2024-01-01", "not a date"]))
