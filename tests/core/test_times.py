"""Time parameters: only ASCII text is read as a time (float() and fromisoformat() read other scripts' digits)."""

from __future__ import annotations

import pytest

from hubcore.times import BadTimeError, parse_time_s


@pytest.mark.parametrize(
    "value", ["\u0661\u0662\u0663", "\uff11\uff12\uff13", "2026-01-0\u0661T00:00:00Z", "-\u0661h", "1e3\u200b"]
)
def test_non_ascii_digits_are_a_bad_time(value: str) -> None:
    with pytest.raises(BadTimeError, match="start must be ISO-8601"):
        parse_time_s(value, "start")


@pytest.mark.parametrize(
    ("value", "seconds"), [("123", 123.0), (" 123.5 ", 123.5), ("1970-01-01T00:02:03Z", 123.0), ("now", 50.0)]
)
def test_ascii_times_still_parse(value: str, seconds: float) -> None:
    assert parse_time_s(value, "start", now=50.0) == seconds
