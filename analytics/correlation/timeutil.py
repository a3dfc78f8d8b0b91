"""Time helpers: microseconds since the epoch (the store's unit) <-> ISO-8601 / epoch seconds.

>>> iso(0)
'1970-01-01T00:00:00Z'
>>> iso(1_795_770_000_250_000)
'2026-11-27T09:00:00.250000Z'
>>> parse_time("1970-01-01T00:00:01Z", "start")
1000000
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hubcore.times import BadTimeError, parse_time_s

__all__ = ["BadTimeError", "iso", "parse_time", "parse_time_s"]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(us: int) -> str:
    """Microseconds as the API answers times (:func:`hubcore.times.iso_s`: ISO-8601 UTC with ``Z``, a zero
    fraction left out), exact to the microsecond (no detour through a float)."""
    return (_EPOCH + timedelta(microseconds=int(us))).isoformat().replace("+00:00", "Z")


def parse_time(value: str | None, name: str) -> int | None:
    """:func:`parse_time_s` in microseconds (the store's unit)."""
    seconds = parse_time_s(value, name)
    return None if seconds is None else int(seconds * 1e6)
