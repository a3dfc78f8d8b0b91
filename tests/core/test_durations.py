"""One duration grammar for config files, query parameters and CLIs (hubcore.durations)."""

from __future__ import annotations

import math

import pytest

from hubcore.durations import UNITS, DurationError, parse_duration, relative_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1.5h", 5400.0),
        ("7d", 604_800.0),
        ("2w", 1_209_600.0),
        ("1y", 31_536_000.0),
        (" 12H ", 43_200.0),
        ("90", 90.0),
        (45, 45.0),
        (2.5, 2.5),
    ],
)
def test_durations_in_every_unit_and_plain_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "abc", "5 minutes", "-5m", "5x", "m", "1e3s", "nan", "inf", "5m30s"])
def test_text_that_is_not_a_duration_is_refused(bad: str) -> None:
    with pytest.raises(DurationError, match="must be a duration such as"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", [True, None, [1], {"s": 1}])
def test_values_of_other_types_are_refused(bad: object) -> None:
    with pytest.raises(DurationError):
        parse_duration(bad)  # type: ignore[arg-type]


def test_zero_negative_nan_infinite_and_too_long() -> None:
    with pytest.raises(DurationError, match="positive"):
        parse_duration("0s")
    assert parse_duration("0s", allow_zero=True) == 0.0
    for bad in (-1, math.nan, math.inf, 10**400):
        with pytest.raises(DurationError):
            parse_duration(bad)
    with pytest.raises(DurationError, match="at most 7d"):
        parse_duration("8d", maximum=7 * 86_400)
    assert parse_duration("7d", maximum=7 * 86_400) == 604_800.0


def test_a_unit_can_be_required() -> None:
    assert parse_duration("30d", allow_number=False) == 30 * UNITS["d"]
    for bad in ("30", 30):
        with pytest.raises(DurationError, match="unit"):
            parse_duration(bad, allow_number=False)


def test_relative_times() -> None:
    assert relative_seconds("now", now=1000.0) == 1000.0
    assert relative_seconds("NOW", now=1000.0) == 1000.0
    assert relative_seconds("-90m", now=10_000.0) == 10_000.0 - 5400.0
    assert relative_seconds("-1d", now=100_000.0) == 100_000.0 - 86_400.0
    # Not relative: absolute times and (negative) epoch numbers are the caller's to parse.
    for absolute in ("2026-01-01T00:00:00Z", "1700000000", "-5", "-5.5"):
        assert relative_seconds(absolute, now=1.0) is None
    for bad in ("-", "-abc", "-5x", "-0h"):
        with pytest.raises(DurationError):
            relative_seconds(bad, now=1.0)
