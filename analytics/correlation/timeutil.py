"""Time helpers: microseconds since the epoch (the store's unit) <-> ISO-8601 / epoch seconds.

>>> iso(0)
'1970-01-01T00:00:00.000000Z'
>>> parse_time("1970-01-01T00:00:01Z", "start")
1000000
"""

from __future__ import annotations

from datetime import UTC, datetime

from hubcore.times import BadTimeError, parse_time_s

__all__ = ["BadTimeError", "iso", "parse_time", "parse_time_s"]


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None, name: str) -> int | None:
    """:func:`parse_time_s` in microseconds (the store's unit)."""
    seconds = parse_time_s(value, name)
    return None if seconds is None else int(seconds * 1e6)
